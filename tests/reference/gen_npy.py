"""Tiny .npy/.npz files written by NumPy, and broken ones, for tests/io/test_npy.c.
Expected values go to tests/fixtures/npy.safetensors under the file's name.
Run: /usr/bin/python3 tests/reference/gen_npy.py"""
import io
import os
import struct
import zipfile

import numpy as np

import fixtures

D = os.path.join(fixtures.FIXTURE_DIR, "npy")
os.makedirs(D, exist_ok=True)
base = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 7.5) / 4
expect = {}


def save(name, arr, version=None, fortran=False):
    path = os.path.join(D, name)
    with open(path, "wb") as f:
        a = np.asfortranarray(arr) if fortran else arr
        np.lib.format.write_array(f, a, version=version)
    expect[name] = np.asarray(arr, dtype=np.float32)


save("f4.npy", base.astype("<f4"))
save("f8.npy", base)
save("f2.npy", base.astype("<f2"))
save("i8.npy", np.array([3, -1, 2**40, 0], dtype="<i8"))
save("i4.npy", np.arange(-3, 3, dtype="<i4").reshape(2, 3))
save("i2.npy", np.array([-32768, 5, 32767], dtype="<i2"))
save("u2.npy", np.array([0, 65535, 7], dtype="<u2"))
save("u1.npy", np.arange(0, 250, 25, dtype=np.uint8).reshape(2, 5))
save("b1.npy", np.array([[True, False, True]]))
save("fortran.npy", base.astype("<f4")[0], fortran=True)   # fortran_order: True, 3 x 4
save("v2.npy", base.astype("<f4"), version=(2, 0))
save("v3.npy", np.arange(5, dtype="<i4"), version=(3, 0))
save("scalar.npy", np.array(2.5, dtype="<f4"))
save("empty.npy", np.zeros((0, 3), dtype="<f4"))
expect["i8.npy"] = np.array([3, -1, 2**40, 0], dtype=np.int64)   # exact, not through F32

np.savez(os.path.join(D, "stored.npz"), x=base.astype("<f4"), y=np.array([1, 0, 2], dtype="<i8"))
np.savez_compressed(os.path.join(D, "deflate.npz"), x=base.astype("<f4"), labels=np.arange(10, dtype="<i8") % 3)
expect["npz.x"] = base.astype(np.float32)
expect["npz.labels"] = (np.arange(10) % 3).astype(np.int64)

# Broken files, each refused with a message naming what is wrong.
good = open(os.path.join(D, "f4.npy"), "rb").read()
hl = struct.unpack("<H", good[8:10])[0]
header = good[10:10 + hl]


def with_header(text, data=b""):
    text = text.encode() if isinstance(text, str) else text
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


broken = {
    "truncated.npy": good[: len(good) - 5],
    "wrong_magic.npy": b"\x93NUMPZ" + good[6:],
    "huge_shape.npy": with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
    "lies_size.npy": with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (100, 100), }", b"\0" * 64),
    "big_endian.npy": with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
    "eval.npy": with_header("{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
    "extra_key.npy": with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", b"\0" * 8),
    "object.npy": with_header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
    "version9.npy": b"\x93NUMPY\x09\x00" + good[8:],
    "long_header.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30) + b"{",
}
for name, data in broken.items():
    open(os.path.join(D, name), "wb").write(data)

z = open(os.path.join(D, "stored.npz"), "rb").read()
open(os.path.join(D, "truncated.npz"), "wb").write(z[: len(z) // 2])
bad_crc = bytearray(z)
bad_crc[z.index(b"\x93NUMPY") + 200] ^= 0xFF  # inside the first member's data
open(os.path.join(D, "bad_crc.npz"), "wb").write(bytes(bad_crc))
# A deflate member whose central directory declares 3 GB uncompressed.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("x.npy", good)
bomb = bytearray(buf.getvalue())
cd = bomb.index(b"PK\x01\x02")
bomb[cd + 24:cd + 28] = struct.pack("<I", 3 << 30)
open(os.path.join(D, "bomb.npz"), "wb").write(bytes(bomb))
# Declared size within deflate's ratio but smaller than the real output.
short = bytearray(buf.getvalue())
short[cd + 24:cd + 28] = struct.pack("<I", 50)
open(os.path.join(D, "inflates_past.npz"), "wb").write(bytes(short))
open(os.path.join(D, "not_zip.npz"), "wb").write(b"PK\x03\x04" + b"\0" * 40)

fixtures.save("npy", expect, numpy=np.__version__)
print("wrote", len(os.listdir(D)), "npy fixtures")
