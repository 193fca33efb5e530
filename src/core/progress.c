#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mml/progress.h"

double mml_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void mml_progress_start(mml_progress *p, const char *label, int64_t total, const char *unit)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->unit = unit ? unit : "it";
    p->total = total;
    p->t0 = p->last_draw = mml_now();
    p->tty = isatty(STDERR_FILENO);
    p->quiet = getenv("MML_QUIET") != NULL;
    p->last_logged_decile = -1;
}

static void fmt_time(char *buf, size_t cap, double s)
{
    if (s < 0 || s > 1e7) snprintf(buf, cap, "--:--");
    else if (s >= 3600) snprintf(buf, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else snprintf(buf, cap, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void draw(mml_progress *p, const char *extra, bool final)
{
    double now = mml_now(), el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    char eta[32], elapsed[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(p->total - p->done) / rate : -1);
    fmt_time(elapsed, sizeof elapsed, el);
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0.0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %.1f %s/s %s<%s %s", p->label, bar,
                (long long)p->done, (long long)p->total, rate, p->unit, elapsed, eta, extra);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %lld/%lld (%.0f%%) %.1f %s/s elapsed %s eta %s %s\n", p->label,
                (long long)p->done, (long long)p->total, 100.0 * frac, rate, p->unit, elapsed,
                final ? "00:00" : eta, extra);
    }
    fflush(stderr);
    p->last_draw = now;
}

void mml_progress_update(mml_progress *p, int64_t done, const char *fmt, ...)
{
    p->done = done;
    if (p->quiet) return;
    double now = mml_now();
    int64_t decile = p->total > 0 ? done * 10 / p->total : 0;
    bool due = p->tty ? now - p->last_draw >= 0.1
                      : (decile > p->last_logged_decile && decile < 10) || now - p->last_draw >= 10.0;
    if (!due) return;
    if (!p->tty) p->last_logged_decile = decile;
    char extra[160] = "";
    va_list ap;
    va_start(ap, fmt);
    if (fmt) vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    draw(p, extra, false);
}

void mml_progress_finish(mml_progress *p, const char *fmt, ...)
{
    if (p->quiet) return;
    char extra[160] = "";
    va_list ap;
    va_start(ap, fmt);
    if (fmt) vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    p->done = p->total;
    draw(p, extra, true);
}
