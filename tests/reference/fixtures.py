"""Shared helper for the fixture scripts: writes safetensors files without the
safetensors package (not in Debian), so Debian's python3-torch is all we need.

Every script run as `/usr/bin/python3 tests/reference/<script>.py` rewrites
its files under tests/fixtures/. Fixtures carry a version and the torch
version in their metadata."""
import json
import os
import struct

import numpy as np
import torch

FIXTURE_VERSION = "1"
FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")

_DTYPES = {
    np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int32"): "I32",
    np.dtype("int64"): "I64", np.dtype("int8"): "I8", np.dtype("uint8"): "U8",
}


def _as_numpy(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.float64:
            value = value.float()
        return value.contiguous().numpy()
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def save(name, tensors, **metadata):
    """Writes tests/fixtures/<name>.safetensors from a dict of tensors/arrays."""
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        arr = _as_numpy(tensors[key])
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[key] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    meta = {"fixture_version": FIXTURE_VERSION, "torch": torch.__version__}
    meta.update({k: str(v) for k, v in metadata.items()})
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path = os.path.join(FIXTURE_DIR, name + ".safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(path + ".tmp", path)
    return path
