"""Shared pieces of the CropShield training pipeline: paths, classes, the int8 -> float MobileNetV2 loader and
the Go-equivalent preprocessing. Run with Debian's /usr/bin/python3 (see README.md)."""

import csv
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
REPO = os.path.dirname(MODELS)
DATASETS = os.path.normpath(os.environ.get("CROPSHIELD_DATASETS", os.path.join(REPO, "..", "shared", "datasets")))
WEIGHTS = os.path.normpath(os.environ.get("CROPSHIELD_WEIGHTS",
                                          os.path.join(REPO, "..", "shared", "weights", "mobilenetv2-12-int8.onnx")))
CACHE = os.path.join(REPO, ".cache", "train")
NONLEAF = os.path.join(REPO, ".cache", "nonleaf", "not_a_leaf")
SPLITS = os.path.join(HERE, "splits.json")

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

CLASSES = [
    "apple__scab", "apple__black_rot", "apple__cedar_apple_rust", "apple__healthy",
    "blueberry__healthy", "corn__gray_leaf_spot", "corn__common_rust", "corn__healthy",
    "corn__northern_leaf_blight", "grape__black_rot", "grape__black_measles", "grape__leaf_blight",
    "grape__healthy", "orange__huanglongbing", "potato__early_blight", "potato__late_blight",
    "potato__healthy", "raspberry__healthy", "strawberry__leaf_scorch", "strawberry__healthy",
    "tomato__early_blight", "tomato__late_blight", "tomato__leaf_mold", "tomato__septoria_leaf_spot",
    "tomato__yellow_leaf_curl_virus", "bean__angular_leaf_spot", "bean__rust", "bean__healthy",
]


def log(*a):
    print(*a, flush=True)


def keep_heap():
    """Stop glibc from returning big per-step buffers to the kernel (mmap/munmap page faults made training
    3-5x slower in a small VM). Best effort; does nothing off glibc."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def check_labels():
    p = os.path.join(DATASETS, "LABELS.csv")
    if not os.path.isfile(p):
        sys.exit(f"{p} is absent: point $CROPSHIELD_DATASETS at the shared datasets folder")
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    labels = [r[0] for r in rows[1:] if r and r[0]]
    if labels != CLASSES:
        sys.exit("LABELS.csv lists other classes than common.CLASSES")


def crop_of(cls):
    return cls.split("__")[0]


CROPS = sorted({crop_of(c) for c in CLASSES})
CROP_MASK = {c: np.array([crop_of(k) == c for k in CLASSES]) for c in CROPS}


def crops_of(classes):
    """The crops of a class list, in the order they first appear."""
    return list(dict.fromkeys(crop_of(c) for c in classes))


# ---------------------------------------------------------------- near-duplicates

def dhash(path, side=16):
    """256-bit difference hash of a photo (upright, grey, (side+1) x side): resized or re-encoded copies of the
    same picture land within a few bits of each other. Returns a bool array of side*side bits."""
    from PIL import Image, ImageOps
    im = ImageOps.exif_transpose(Image.open(path)).convert("L").resize((side + 1, side), Image.BOX)
    a = np.asarray(im, np.int16)
    return (a[:, 1:] > a[:, :-1]).reshape(-1)


def near_duplicate_groups(hashes, max_bits=12):
    """Group ids (union-find) joining every pair of hashes at most max_bits apart, as the datasets' own dedupe
    rule does (16x16 dHash, Hamming distance <= 12)."""
    h = np.packbits(np.asarray(hashes, bool), axis=1)
    n = len(h)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    pop = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
    for i in range(n - 1):
        d = pop[np.bitwise_xor(h[i + 1:], h[i])].sum(1)
        for j in np.nonzero(d <= max_bits)[0]:
            a, b = find(i), find(i + 1 + int(j))
            if a != b:
                parent[b] = a
    return [find(i) for i in range(n)]


# ---------------------------------------------------------------- backbone

def load_int8_mobilenetv2(path=WEIGHTS):
    """torchvision mobilenet_v2 (BatchNorm replaced by Identity, conv biases enabled) with the dequantized weights
    of the ONNX Model Zoo int8 model. The QLinearConv nodes appear in torchvision's module order; each conv's
    weight is (q - zp) * scale per output channel, its int32 bias is q * x_scale * w_scale (batch norm folded).
    Returns (model, imagenet_head_weight [1000,1280], imagenet_head_bias [1000])."""
    from torchvision.models import mobilenet_v2
    m = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    qconvs = [n for n in m.graph.node if n.op_type == "QLinearConv"]
    net = mobilenet_v2(weights=None)
    convs = []
    for name, mod in net.features.named_modules():
        if isinstance(mod, nn.Conv2d):
            convs.append((name, mod))
    assert len(convs) == len(qconvs) == 52, (len(convs), len(qconvs))
    for (name, conv), node in zip(convs, qconvs):
        x_scale = float(init[node.input[1]])
        wq, ws, wz = (init[node.input[i]] for i in (3, 4, 5))
        bq = init[node.input[8]]
        w = (wq.astype(np.float32) - wz.astype(np.float32).reshape(-1, 1, 1, 1)) * ws.reshape(-1, 1, 1, 1)
        b = bq.astype(np.float64) * x_scale * ws.astype(np.float64)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert tuple(w.shape) == tuple(conv.weight.shape), (name, w.shape, conv.weight.shape)
        assert attrs["group"] == conv.groups and list(attrs["strides"]) == list(conv.stride), name
        conv.weight.data = torch.from_numpy(w)
        conv.bias = nn.Parameter(torch.from_numpy(b.astype(np.float32)))
    # Batch norm is folded into the convs: make every BatchNorm an identity.
    for parent in net.features.modules():
        for cname, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, cname, nn.Identity())
    hw = init["classifier.1.weight_quantized"].astype(np.float32)
    hw = (hw - init["classifier.1.weight_zero_point"].astype(np.float32)) * init["classifier.1.weight_scale"]
    hb = (init["classifier.1.bias_quantized"].astype(np.float32) - float(init["classifier.1.bias_zero_point"])) \
        * float(init["classifier.1.bias_scale"])
    return net, torch.from_numpy(hw.T.copy()), torch.from_numpy(hb)


# ---------------------------------------------------------------- Go-equivalent preprocessing

def open_rgb(path, max_side=1024):
    """Decode upright (EXIF), flatten to RGB and shrink by area averaging so the longest side is <= max_side,
    as the Go side does before preprocessing."""
    from PIL import Image, ImageOps
    im = Image.open(path)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    im = im.convert("RGB")
    w, h = im.size
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
    return im


def go_square(im, input_size, resize_shorter):
    """The model's view of a photo, as inference/preprocess.go computes it: the center square of side
    shorter*input_size/resize_shorter (fractional), area-averaged (box filter) to input_size; a smaller
    photo is cropped and enlarged bilinearly. Returns uint8 HxWx3."""
    from PIL import Image
    w, h = im.size
    side = min(w, h) * input_size / resize_shorter
    x, y = (w - side) / 2, (h - side) / 2
    n = input_size
    if side >= n:
        out = im.resize((n, n), Image.BOX, box=(x, y, x + side, y + side))
    else:
        out = im.crop((int(x), int(y), int(x + side + 0.5), int(y + side + 0.5))).resize((n, n), Image.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


MEAN_T = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
STD_T = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)


def to_tensor(batch_u8):
    """uint8 NHWC -> normalized float NCHW."""
    x = torch.from_numpy(np.ascontiguousarray(batch_u8)).permute(0, 3, 1, 2).float() / 255.0
    return ((x - MEAN_T) / STD_T).contiguous()


def load_splits():
    with open(SPLITS) as f:
        return json.load(f)
