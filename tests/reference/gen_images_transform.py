"""Image transforms as PIL and torchvision compute them, for tests/modal/test_image_transform.c.

Keys name the case, so the C test walks the file and needs no list of its own:
  resize.<img>.<filter>.<H>x<W>   PIL Image.resize of input <img> (U8, or F32 for img "f")
  gray.rgb                        PIL convert("L") of in.rgb
  center_crop.<img>.<H>x<W>       torchvision F.center_crop
  hflip.rgb, normalize.rgb        F.hflip; F.normalize(to_tensor(x), mean, std)
  affine.<img>.<i>                F.affine (bilinear, fill) with the parameters params.affine[i]
Run: /usr/bin/python3 tests/reference/gen_images_transform.py  (needs python3-pil, python3-torchvision)"""
import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

import fixtures

rng = np.random.default_rng(7)
# Smooth-ish content with noise, so both flat and busy regions are exercised.
yy, xx = np.mgrid[0:13, 0:17]
gray = np.clip(128 + 90 * np.sin(xx / 2.3) * np.cos(yy / 3.1) + rng.normal(0, 25, (13, 17)), 0, 255).astype(np.uint8)
rgb = rng.integers(0, 256, (3, 11, 9), dtype=np.uint8)
big = rng.integers(0, 256, (1, 40, 36), dtype=np.uint8)
flt = rng.random((1, 10, 12), dtype=np.float32) * 2 - 0.5   # outside [0, 1]: F32 is not clipped
out = {"in.gray": gray[None], "in.rgb": rgb, "in.big": big, "in.f": flt}


def pil(a):
    if a.dtype == np.float32:
        return Image.fromarray(a[0], "F")
    return Image.fromarray(a[0], "L") if a.shape[0] == 1 else Image.fromarray(np.transpose(a, (1, 2, 0)), "RGB")


def chw(im):
    a = np.asarray(im)
    return a[None] if a.ndim == 2 else np.transpose(a, (2, 0, 1)).copy()


filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
sizes = {"gray": [(5, 8), (29, 23), (20, 6), (13, 4), (7, 17)], "rgb": [(4, 3), (22, 19), (11, 20)],
         "big": [(9, 10), (3, 5)], "f": [(4, 5), (21, 25)]}
for name, hw in sizes.items():
    for fname, flt_id in filters.items():
        for h, w in hw:
            im = pil(out["in." + name]).resize((w, h), flt_id)
            out[f"resize.{name}.{fname}.{h}x{w}"] = chw(im)
            if name != "f":  # torchvision's Resize on a PIL image is PIL's resize
                tv = T.Resize((h, w), interpolation=T.InterpolationMode[fname.upper()])(pil(out["in." + name]))
                assert (chw(tv) == out[f"resize.{name}.{fname}.{h}x{w}"]).all()

out["gray.rgb"] = chw(pil(rgb).convert("L"))
for name, hw in {"gray": [(8, 8), (7, 10), (13, 17), (15, 20)], "rgb": [(6, 5), (12, 4)]}.items():
    t = torch.from_numpy(out["in." + name])
    for h, w in hw:
        out[f"center_crop.{name}.{h}x{w}"] = F.center_crop(t, [h, w])
out["hflip.rgb"] = F.hflip(torch.from_numpy(rgb))
mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
out["normalize.rgb"] = F.normalize(F.to_tensor(np.transpose(rgb, (1, 2, 0))), mean, std)
out["params.normalize"] = np.array([mean, std], np.float32)

# (degrees, tx, ty, scale, fill)
affine = [(0, 0, 0, 1.0, 0.0), (30, 0, 0, 1.0, 0.0), (-45, 2, -1, 1.0, 0.5), (10, 1, 3, 0.8, 0.0),
          (90, 0, 0, 1.0, 0.0), (200, -2, 2, 1.3, 0.25)]
out["params.affine"] = np.array(affine, np.float32)
rgbf = torch.from_numpy(rgb).float() / 255
for i, (deg, tx, ty, sc, fill) in enumerate(affine):
    out[f"affine.rgbf.{i}"] = F.affine(rgbf, deg, [tx, ty], sc, [0.0, 0.0],
                                      interpolation=T.InterpolationMode.BILINEAR, fill=[fill] * 3)
    out[f"affine.gray.{i}"] = F.affine(torch.from_numpy(gray[None]), deg, [tx, ty], sc, [0.0, 0.0],
                                      interpolation=T.InterpolationMode.BILINEAR, fill=[fill * 255])
out["in.rgbf"] = rgbf

fixtures.save("images_transform", out, pil=Image.__version__, torchvision=torchvision.__version__)
print("wrote images_transform fixtures:", len(out), "tensors")
