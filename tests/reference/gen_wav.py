"""Tiny WAV files in every supported layout, all holding the same 64-sample
signal (stereo files hold it on both channels), and broken WAVs.
Run: /usr/bin/python3 tests/reference/gen_wav.py"""
import os
import struct

import numpy as np

import fixtures

D = os.path.join(fixtures.FIXTURE_DIR, "wav")
os.makedirs(D, exist_ok=True)
sig = (0.6 * np.sin(np.arange(64) * 0.37) + 0.1).astype(np.float32)


def riff(chunks):
    body = b"WAVE" + b"".join(struct.pack("<4sI", k, len(v)) + v + (b"\0" if len(v) % 2 else b"") for k, v in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(tag, ch, rate, bits, extensible=False):
    block = ch * bits // 8
    f = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, ch, rate, rate * block, block, bits)
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        f += struct.pack("<HHI", 22, bits, 3 if ch == 2 else 4) + guid
    return f


def pcm(x, bits):
    if bits == 8:
        return np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    if bits == 16:
        return np.round(x * 32767).astype("<i2").tobytes()
    if bits == 24:
        v = np.round(x * 8388607).astype("<i4").tobytes()
        return b"".join(v[i:i + 3] for i in range(0, len(v), 4))
    return np.round(x.astype(np.float64) * 2147483647).astype("<i4").tobytes()


def interleave(x, ch):
    return np.repeat(x, ch)


files = {
    "pcm8.wav": riff([(b"fmt ", fmt(1, 1, 8000, 8)), (b"data", pcm(sig, 8))]),
    "pcm16.wav": riff([(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", pcm(sig, 16))]),
    "pcm24_stereo.wav": riff([(b"fmt ", fmt(1, 2, 16000, 24)), (b"data", pcm(interleave(sig, 2), 24))]),
    "pcm32.wav": riff([(b"fmt ", fmt(1, 1, 8000, 32)), (b"data", pcm(sig, 32))]),
    "float32.wav": riff([(b"fmt ", fmt(3, 1, 22050, 32)), (b"data", sig.astype("<f4").tobytes())]),
    "extensible16_stereo.wav": riff([(b"fmt ", fmt(1, 2, 8000, 16, True)), (b"data", pcm(interleave(sig, 2), 16))]),
    "with_chunks.wav": riff([(b"fmt ", fmt(1, 1, 8000, 16)), (b"LIST", b"odd"), (b"junk", b"x" * 5),
                             (b"data", pcm(sig, 16))]),
}
good = files["pcm16.wav"]
broken = {
    "truncated.wav": good[: len(good) - 40],
    "wrong_magic.wav": b"RIFX" + good[4:],
    "no_fmt.wav": riff([(b"data", pcm(sig, 16))]),
    "zero_channels.wav": riff([(b"fmt ", fmt(1, 0, 8000, 16)), (b"data", b"")]),
    "huge_data.wav": good[:40] + struct.pack("<I", 0xFFFFFFF0) + good[44:],
    "bad_bits.wav": riff([(b"fmt ", fmt(1, 1, 8000, 12)), (b"data", b"\0" * 16)]),
    "empty.wav": b"",
    "header_only.wav": b"RIFF\4\0\0\0WAVE",
    "zero_rate.wav": riff([(b"fmt ", fmt(1, 1, 0, 16)), (b"data", pcm(sig, 16))]),
    "bad_block_align.wav": riff([(b"fmt ", fmt(1, 1, 8000, 16)[:12] + struct.pack("<HH", 7, 16)), (b"data", pcm(sig, 16))]),
    "short_fmt.wav": riff([(b"fmt ", fmt(1, 1, 8000, 16)[:10]), (b"data", pcm(sig, 16))]),
    "huge_fmt.wav": good[:16] + struct.pack("<I", 0xFFFFFFFF) + good[20:],
    "data_before_fmt.wav": riff([(b"data", pcm(sig, 16)), (b"fmt ", fmt(1, 1, 8000, 16))]),
    "chunk_past_end.wav": riff([(b"fmt ", fmt(1, 1, 8000, 16))]) + b"LIST" + struct.pack("<I", 1000) + b"abc",
    "empty_data.wav": riff([(b"fmt ", fmt(1, 1, 8000, 16)), (b"data", b"")]),
    "adpcm.wav": riff([(b"fmt ", fmt(2, 1, 8000, 4)), (b"data", b"\0" * 32)]),
    "nan_float.wav": riff([(b"fmt ", fmt(3, 1, 8000, 32)), (b"data", np.array([0.1, np.nan], "<f4").tobytes())]),
}
for name, data in {**files, **broken}.items():
    with open(os.path.join(D, name), "wb") as f:
        f.write(data)
fixtures.save("wav", {"signal": sig})
print("wrote WAV fixtures")
