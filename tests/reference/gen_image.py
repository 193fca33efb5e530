"""Tiny image files (and their pixels as PIL decodes them) for the decoder
tests, plus broken files: truncated, wrong magic, and a PNG whose header
declares 100000 x 100000 pixels. Run: /usr/bin/python3 tests/reference/gen_image.py"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

import fixtures

D = os.path.join(fixtures.FIXTURE_DIR, "images")
os.makedirs(D, exist_ok=True)
rng = np.random.default_rng(0)
gray = rng.integers(0, 256, (4, 5), dtype=np.uint8)
rgb = rng.integers(0, 256, (3, 2, 3), dtype=np.uint8)
Image.fromarray(gray, "L").save(os.path.join(D, "gray.png"))
Image.fromarray(gray, "L").save(os.path.join(D, "gray.pgm"))
Image.fromarray(rgb, "RGB").save(os.path.join(D, "rgb.png"))
Image.fromarray(rgb, "RGB").save(os.path.join(D, "rgb.bmp"))
Image.fromarray(np.kron(gray, np.ones((2, 2), np.uint8)), "L").save(os.path.join(D, "gray.jpg"), quality=95)
Image.fromarray(rgb, "RGB").save(os.path.join(D, "rgb.gif"))
jpg = np.asarray(Image.open(os.path.join(D, "gray.jpg")).convert("L"))
gif = np.asarray(Image.open(os.path.join(D, "rgb.gif")).convert("RGB"))
luma = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


png = open(os.path.join(D, "gray.png"), "rb").read()
open(os.path.join(D, "truncated.png"), "wb").write(png[: len(png) // 2])
open(os.path.join(D, "wrong_magic.png"), "wb").write(b"\x89PNX" + png[4:])
bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
bomb += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
open(os.path.join(D, "bomb.png"), "wb").write(bomb)
# 20000 x 20000 passes stb's own header checks, so mml's pixel limit must stop it.
bomb2 = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
bomb2 += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
open(os.path.join(D, "bomb_20k.png"), "wb").write(bomb2)
fixtures.save("images", {"gray": gray, "rgb": np.transpose(rgb, (2, 0, 1)).copy(), "jpg": jpg,
                         "gif": np.transpose(gif, (2, 0, 1)).copy(), "rgb_as_gray": luma})
print("wrote image fixtures")
