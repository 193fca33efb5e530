#!/usr/bin/env bash
# Renders a study's report.html in headless Chromium (installed from Debian if
# missing) and writes a PNG screenshot: the check that the page renders, and
# the picture in docs/. Fails if Chromium reports an error or the page is blank.
# usage: scripts/check_report.sh DIR/report.html OUT.png [WIDTH HEIGHT]
set -euo pipefail
html=$(realpath "$1"); out=$2; w=${3:-1150}; h=${4:-2600}
if ! command -v chromium >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y chromium >/dev/null
fi
grep -q "<svg" "$html" || { echo "check_report: $html has no SVG charts" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
    --window-size="$w,$h" --screenshot="$tmp/shot.png" "file://$html" >"$tmp/log" 2>&1 || {
    cat "$tmp/log" >&2; exit 1; }
# a blank page compresses to almost nothing; a page of charts does not
size=$(stat -c %s "$tmp/shot.png")
[ "$size" -gt 20000 ] || { echo "check_report: screenshot of $html is blank ($size bytes)" >&2; exit 1; }
mv "$tmp/shot.png" "$out"
echo "check_report: $html rendered to $out ($size bytes)"
