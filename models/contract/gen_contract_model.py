#!/usr/bin/python3
"""Generate CropShield's contract test model and its reference outputs.

Run from the repository root with Debian's Python (not a pyenv/venv one):

    sudo apt-get install python3-torch python3-onnx libopenblas0-openmp python3-pil
    /usr/bin/python3 models/contract/gen_contract_model.py

Options: --data DIR (default ../shared/datasets, or $CROPSHIELD_DATASETS), --epochs N (default 3),
--no-train (export seeded untrained weights), --threads N (default 2).

It writes, next to this script:
  contract.onnx                 a small CNN (5 stride-2 convs, 3->16->32->64->128->128, folded BatchNorm,
                                ReLU) whose 7x7 feature map F feeds a global-average-pool + Linear(128->K) head.
                                Outputs: logits [N,K] and cam [N,K,7,7], cam[n,k] = sum_c W[k,c] * F[n,c]
                                (the class activation map; equal to Grad-CAM for a GAP+linear head; no ReLU).
  testdata/leafish-256.png      a deterministic synthetic 256x256 RGB leaf (integer arithmetic only).
  reference.json                PyTorch outputs for fixed inputs, for the Go test against ONNX Runtime.

It follows the "Model contract" in DESIGN.md. The model is trained briefly (seeded, 3 epochs, about two minutes
on 2 CPU cores) on plantvillage-25 so that its answers are not noise; it is a test fixture, not a diagnostic model.
If the dataset folder is absent it says so and exports the seeded untrained weights.

Reference inputs (all computed in float64 and cast to float32 at the end):
  formula(phase):  x[c][y][x] = float32(sin(0.013*(c+1)*x + 0.021*y + phase)),
                   c in 0..2, y in 0..223 (row), x in 0..223 (column), tensor [1,3,224,224];
                   evaluated left to right in float64: ((0.013*(c+1))*x + 0.021*y) + phase.
                   "formula-a" uses phase 0.0, "formula-b" phase 1.0.
  png:             testdata/leafish-256.png (256x256, shorter side already 256, so no resize),
                   center crop 224 at offset (16,16), then in float32: (v/255 - mean[c]) / std[c], CHW.
onnxruntime is not needed (nor used): the exported file is checked with onnx.checker, and its graph is
re-evaluated with a small NumPy interpreter below and compared with PyTorch.
"""

import argparse
import csv
import hashlib
import json
import math
import os
import random
import struct
import sys
import time
import zlib

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ONNX_PATH = os.path.join(HERE, "contract.onnx")
REF_PATH = os.path.join(HERE, "reference.json")
PNG_REL = "testdata/leafish-256.png"
PNG_PATH = os.path.join(HERE, PNG_REL)

SEED = 20240601
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
INPUT_SIZE = 224
RESIZE_SHORTER = 256
MODEL_VERSION = "contract-v1"
CHANNELS = [16, 32, 64, 128, 128]
OPSET = 13
MAX_BYTES = 2 * 1024 * 1024

# Class ids in the order of the first column of datasets/LABELS.csv. Kept here so that the model can be
# exported without the dataset; checked against LABELS.csv whenever that file is present.
CLASSES = [
    "apple__scab", "apple__black_rot", "apple__cedar_apple_rust", "apple__healthy",
    "blueberry__healthy", "corn__gray_leaf_spot", "corn__common_rust", "corn__healthy",
    "corn__northern_leaf_blight", "grape__black_rot", "grape__black_measles", "grape__leaf_blight",
    "grape__healthy", "orange__huanglongbing", "potato__early_blight", "potato__late_blight",
    "potato__healthy", "raspberry__healthy", "strawberry__leaf_scorch", "strawberry__healthy",
    "tomato__early_blight", "tomato__late_blight", "tomato__leaf_mold", "tomato__septoria_leaf_spot",
    "tomato__yellow_leaf_curl_virus",
]

FORMULA = ("x[c][y][x] = float32(sin(0.013*(c+1)*x + 0.021*y + phase)) for c in 0..2, y (row) in 0..223, "
           "x (column) in 0..223, shape [1,3,224,224]; the argument is evaluated left to right in float64 as "
           "((0.013*(c+1))*x + 0.021*y) + phase (no fused multiply-add), sin in float64, then cast to float32")
PNG_PREPROCESS = ("decode the 256x256 RGB PNG (8-bit, no alpha); no resize (shorter side is already 256); "
                  "center crop 224x224 at offset x=16,y=16; in float32: (v/255 - mean[c]) / std[c]; CHW layout")


def log(*a):
    print(*a, flush=True)


def keep_heap():
    """Stop glibc from returning the big per-step tensors to the kernel (mmap/munmap): in a small VM the page
    faults made training 3-5x slower. Best effort; does nothing off glibc."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- model

class Net(nn.Module):
    """Training model: 5 x (conv3x3 stride 2, BatchNorm, ReLU), GAP, Linear."""

    def __init__(self, k):
        super().__init__()
        layers, c_in = [], 3
        for c_out in CHANNELS:
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, k)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


class ExportNet(nn.Module):
    """Inference model with BatchNorm folded into the convolutions; returns (logits, cam)."""

    def __init__(self, net):
        super().__init__()
        convs = []
        mods = list(net.features)
        for i in range(0, len(mods), 3):
            conv, bn = mods[i], mods[i + 1]
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            c = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 2, 1, bias=True)
            c.weight.data = conv.weight.detach() * scale[:, None, None, None]
            c.bias.data = bn.bias.detach() - bn.running_mean * scale
            convs += [c, nn.ReLU()]
        self.features = nn.Sequential(*convs)
        k, c = net.head.weight.shape
        self.head = nn.Linear(c, k)
        self.head.weight.data = net.head.weight.detach().clone()
        self.head.bias.data = net.head.bias.detach().clone()
        # cam = 1x1 convolution of F with the head's weights, no bias.
        self.cam = nn.Conv2d(c, k, 1, bias=False)
        self.cam.weight.data = net.head.weight.detach().clone()[:, :, None, None]

    def forward(self, image):
        f = self.features(image)
        logits = self.head(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))
        cam = self.cam(f)
        return logits, cam


# ---------------------------------------------------------------- data and training

def find_labels(data_dir):
    for p in (os.path.join(data_dir, "LABELS.csv"), os.path.join(data_dir, "plantvillage-25", "LABELS.csv")):
        if os.path.isfile(p):
            with open(p, newline="") as f:
                rows = list(csv.reader(f))
            return [r[0] for r in rows[1:] if r and r[0]]
    return None


def load_image_256(path):
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if min(w, h) != RESIZE_SHORTER:
            s = RESIZE_SHORTER / min(w, h)
            im = im.resize((max(RESIZE_SHORTER, round(w * s)), max(RESIZE_SHORTER, round(h * s))), Image.BILINEAR)
            w, h = im.size
        l, t = (w - RESIZE_SHORTER) // 2, (h - RESIZE_SHORTER) // 2
        im = im.crop((l, t, l + RESIZE_SHORTER, t + RESIZE_SHORTER))
        return np.asarray(im, dtype=np.uint8)


def load_dataset(pv_dir, classes, holdout=0.15):
    rng = np.random.default_rng(SEED)
    train, val = [], []
    for k, cls in enumerate(classes):
        d = os.path.join(pv_dir, cls)
        files = sorted(f for f in os.listdir(d) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        perm = rng.permutation(len(files))
        n_val = max(1, int(round(len(files) * holdout)))
        for j, i in enumerate(perm):
            (val if j < n_val else train).append((os.path.join(d, files[i]), k))
    log(f"dataset: {len(train)} train / {len(val)} held-out images in {len(classes)} classes; decoding ...")
    t0 = time.time()

    def stack(items):
        x = np.empty((len(items), RESIZE_SHORTER, RESIZE_SHORTER, 3), dtype=np.uint8)
        for i, (p, _) in enumerate(items):
            x[i] = load_image_256(p)
        return x, np.array([k for _, k in items], dtype=np.int64)

    tr, va = stack(train), stack(val)
    log(f"decoded in {time.time() - t0:.1f}s")
    return tr, va


MEAN_T = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
STD_T = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)


def to_tensor(batch_u8):
    x = torch.from_numpy(np.ascontiguousarray(batch_u8)).permute(0, 3, 1, 2).float() / 255.0
    return ((x - MEAN_T) / STD_T).contiguous(memory_format=torch.channels_last)


def evaluate(net, x_u8, y, bs=128):
    net.eval()
    o = (RESIZE_SHORTER - INPUT_SIZE) // 2
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x_u8), bs):
            xb = to_tensor(x_u8[i:i + bs, o:o + INPUT_SIZE, o:o + INPUT_SIZE])
            correct += (net(xb).argmax(1).numpy() == y[i:i + bs]).sum()
    return correct / len(y)


def train(net, data, epochs, bs=64):
    (xt, yt), (xv, yv) = data
    rng = np.random.default_rng(SEED + 1)
    net = net.to(memory_format=torch.channels_last)
    steps = epochs * math.ceil(len(xt) / bs)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    t0, step = time.time(), 0
    span = RESIZE_SHORTER - INPUT_SIZE
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(len(xt))
        run_loss, run_ok, run_n = 0.0, 0, 0
        for i in range(0, len(perm), bs):
            idx = np.sort(perm[i:i + bs])
            oy, ox = rng.integers(0, span + 1, size=2)
            xb = xt[idx, oy:oy + INPUT_SIZE, ox:ox + INPUT_SIZE]
            if rng.random() < 0.5:
                xb = xb[:, :, ::-1]
            if rng.random() < 0.5:
                xb = xb[:, ::-1]
            xb, yb = to_tensor(xb), torch.from_numpy(yt[idx])
            out = net(xb)
            loss = F.cross_entropy(out, yb, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item() * len(idx)
            run_ok += (out.argmax(1) == yb).sum().item()
            run_n += len(idx)
            if step % 20 == 0 or step == steps:
                log(f"  epoch {ep + 1}/{epochs} step {step}/{steps} loss {run_loss / run_n:.3f} "
                    f"train-acc {run_ok / run_n:.3f} elapsed {time.time() - t0:.0f}s")
        acc = evaluate(net, xv, yv)
        log(f"epoch {ep + 1}: held-out accuracy {acc:.3f} ({len(yv)} images), elapsed {time.time() - t0:.0f}s")
    return net.to(memory_format=torch.contiguous_format), acc, time.time() - t0


# ---------------------------------------------------------------- reference inputs

def formula_input(phase):
    c = np.arange(3, dtype=np.float64)[:, None, None]
    y = np.arange(INPUT_SIZE, dtype=np.float64)[None, :, None]
    x = np.arange(INPUT_SIZE, dtype=np.float64)[None, None, :]
    arg = ((0.013 * (c + 1)) * x + 0.021 * y) + phase
    return np.sin(arg).astype(np.float32)[None]


def leafish_png():
    """A 256x256 leaf-like picture from integer arithmetic only: a green ellipse with a midrib and brown,
    yellow-haloed spots on a light background."""
    h = w = 256
    yy, xx = np.mgrid[0:h, 0:w].astype(np.int64)
    img = np.empty((h, w, 3), dtype=np.int64)
    img[..., 0] = 232 - yy // 32
    img[..., 1] = 236 - yy // 40
    img[..., 2] = 220 - xx // 32
    cx, cy, a, b = 128, 124, 104, 68  # ellipse centre and semi-axes
    dx, dy = xx - cx, yy - cy
    leaf = dx * dx * b * b + dy * dy * a * a <= a * a * b * b
    img[..., 0] = np.where(leaf, 52 + (xx * 30) // 256, img[..., 0])
    img[..., 1] = np.where(leaf, 118 + (yy * 50) // 256 + (xx * 20) // 256, img[..., 1])
    img[..., 2] = np.where(leaf, 38 + (xx * yy) // 4096, img[..., 2])
    rib = leaf & (np.abs(dy + (dx // 12)) <= 1)
    img[rib] = [140, 182, 96]
    for sx, sy, r in [(82, 102, 11), (120, 150, 14), (168, 110, 9), (196, 136, 7), (150, 86, 6), (64, 140, 8)]:
        d2 = (xx - sx) ** 2 + (yy - sy) ** 2
        halo = leaf & (d2 <= (r + 4) ** 2)
        spot = leaf & (d2 <= r * r)
        core = leaf & (d2 <= (r // 2) ** 2)
        img[halo] = [196, 178, 58]
        img[spot] = [122, 74, 34]
        img[core] = [84, 50, 26]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def png_input(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (256, 256), (im.mode, im.size)
        v = np.asarray(im, dtype=np.uint8)
    o = (RESIZE_SHORTER - INPUT_SIZE) // 2
    v = v[o:o + INPUT_SIZE, o:o + INPUT_SIZE].astype(np.float32)
    mean = np.array(MEAN, dtype=np.float32)
    std = np.array(STD, dtype=np.float32)
    x = (v / np.float32(255) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None].astype(np.float32)


# ---------------------------------------------------------------- independent NumPy check of the ONNX graph

def run_onnx_numpy(model, feeds):
    """Evaluate the exported graph in float64 with NumPy (only the ops this export produces)."""
    from onnx import numpy_helper
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env.update({k: v.astype(np.float64) for k, v in feeds.items()})

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    for node in model.graph.node:
        a, ins = attrs(node), [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            x, wt = ins[0], ins[1]
            assert a.get("group", 1) == 1 and all(d == 1 for d in a.get("dilations", [1, 1]))
            kh, kw = wt.shape[2:]
            sh, sw = a.get("strides", [1, 1])
            pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
            x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
            ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
            cols = np.stack([x[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] for i in range(kh) for j in range(kw)], 2)
            cols = cols.reshape(x.shape[0], x.shape[1], kh, kw, ho, wo)
            y = np.einsum("nchwij,ochw->noij", cols, wt, optimize=True)
            if len(ins) > 2 and ins[2] is not None:
                y = y + ins[2][None, :, None, None]
            out = y
        elif op == "Relu":
            out = np.maximum(ins[0], 0)
        elif op == "GlobalAveragePool":
            out = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "ReduceMean":
            out = ins[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        elif op == "Flatten":
            ax = a.get("axis", 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            A = A.T if a.get("transA", 0) else A
            B = B.T if a.get("transB", 0) else B
            out = a.get("alpha", 1.0) * A @ B
            if len(ins) > 2 and ins[2] is not None:
                out = out + a.get("beta", 1.0) * ins[2]
        elif op == "Identity":
            out = ins[0]
        else:
            raise RuntimeError(f"NumPy checker does not know op {op}")
        env[node.output[0]] = out
    return [env[o.name] for o in model.graph.output]


# ---------------------------------------------------------------- main

def sig7(v):
    return [float(f"{float(x):.7g}") for x in np.asarray(v).ravel()]


def softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("CROPSHIELD_DATASETS",
                                                     os.path.join(REPO, "..", "shared", "datasets")))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-train", action="store_true")
    args = ap.parse_args()

    keep_heap()
    torch.set_num_threads(args.threads)
    seed_everything(SEED)
    log(f"torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}, threads {args.threads}")

    data_dir = os.path.normpath(args.data)
    classes = CLASSES
    labels = find_labels(data_dir)
    if labels is not None and labels != CLASSES:
        sys.exit(f"LABELS.csv in {data_dir} lists other classes than this script's CLASSES; update CLASSES")
    k = len(classes)

    net = Net(k)
    pv_dir = os.path.join(data_dir, "plantvillage-25")
    if args.no_train:
        log("training skipped (--no-train): exporting seeded untrained weights")
        acc, train_s, summary = None, 0.0, "none: seeded untrained weights (--no-train)"
    elif not os.path.isdir(pv_dir):
        log(f"SKIPPING TRAINING: dataset folder {pv_dir} is absent; exporting seeded untrained weights")
        acc, train_s, summary = None, 0.0, "none: seeded untrained weights (plantvillage-25 was absent)"
    else:
        data = load_dataset(pv_dir, classes)
        log(f"training {args.epochs} epochs at {INPUT_SIZE}px, batch 64, AdamW, seed {SEED} ...")
        net, acc, train_s = train(net, data, args.epochs)
        n_tr, n_va = len(data[0][1]), len(data[1][1])
        summary = (f"PlantVillage lab images (plantvillage-25, 25 classes): {n_tr} train / {n_va} held out (15% per "
                   f"class, seeded), {args.epochs} epochs at 224 px from scratch in {train_s:.0f} s on "
                   f"{args.threads} CPU threads; held-out accuracy {acc:.3f}")
        log(f"HELD-OUT ACCURACY {acc:.4f}; training time {train_s:.1f}s")
        del data

    net.eval()
    exp = ExportNet(net).eval()

    # Folding check: the export module must agree with the trained module.
    with torch.no_grad():
        probe = torch.from_numpy(formula_input(0.5))
        diff = (net(probe) - exp(probe)[0]).abs().max().item()
    log(f"BatchNorm folding: max |logit diff| {diff:.2e}")
    assert diff < 1e-3, diff

    # Export.
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(exp, dummy, ONNX_PATH, input_names=["image"], output_names=["logits", "cam"],
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}, "cam": {0: "N"}},
                      opset_version=OPSET, do_constant_folding=True)
    model = onnx.load(ONNX_PATH)
    meta = {
        "classes": json.dumps(classes),
        "mean": json.dumps(MEAN),
        "std": json.dumps(STD),
        "input_size": str(INPUT_SIZE),
        "resize_shorter": str(RESIZE_SHORTER),
        "model_version": MODEL_VERSION,
        "description": ("CropShield contract test model: a tiny CNN, lightly trained, that exercises the model "
                        "contract in tests and must not be used for real diagnoses."),
        "training_data": summary,
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = key, value
    model.producer_name = "cropshield gen_contract_model.py"
    model.doc_string = meta["description"]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, ONNX_PATH)
    size = os.path.getsize(ONNX_PATH)
    ops = sorted({n.op_type for n in model.graph.node})
    log(f"wrote {ONNX_PATH}: {size} bytes ({size / 1024:.0f} KiB), opset {OPSET}, ir_version {model.ir_version}, "
        f"ops {ops}")
    for o in model.graph.output:
        dims = [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        log(f"  output {o.name}: {dims}")
    assert size <= MAX_BYTES, f"contract.onnx is {size} bytes, over {MAX_BYTES}"

    # Reference inputs.
    write_png(PNG_PATH, leafish_png())
    png_x = png_input(PNG_PATH)
    from PIL import Image
    with Image.open(PNG_PATH) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), leafish_png()), "PNG round trip"
    log(f"wrote {PNG_PATH}: {os.path.getsize(PNG_PATH)} bytes")
    src = {
        "formula-a": ({"kind": "formula", "phase": 0.0}, formula_input(0.0)),
        "formula-b": ({"kind": "formula", "phase": 1.0}, formula_input(1.0)),
        "png-256": ({"kind": "png", "path": PNG_REL}, png_x),
    }
    cases_def = [("formula-a", ["formula-a"]), ("formula-b", ["formula-b"]), ("png-256", ["png-256"]),
                 ("batch-2", ["formula-a", "png-256"])]

    cases, worst = [], 0.0
    for name, parts in cases_def:
        x = np.concatenate([src[p][1] for p in parts], 0)
        with torch.no_grad():
            logits, cam = (t.numpy() for t in exp(torch.from_numpy(x)))
        # Independent check: the saved ONNX graph evaluated with NumPy (float64) agrees with PyTorch.
        nl, nc = run_onnx_numpy(model, {"image": x})
        for ref, got in ((nl, logits), (nc, cam)):
            worst = max(worst, float(np.max(np.abs(ref - got) / (1e-3 + np.abs(ref)))))
        top3 = []
        for row in logits:
            p = softmax64(row)
            idx = [int(i) for i in np.argsort(-p, kind="stable")[:3]]
            top3.append({"indices": idx, "classes": [classes[i] for i in idx], "probs": sig7(p[idx])})
        n = x.shape[0]
        cases.append({
            "name": name,
            "inputs": [src[p][0] for p in parts],
            "input_shape": list(x.shape),
            "input_sum": float(f"{float(x.astype(np.float64).sum()):.10g}"),
            "logits_shape": [n, k],
            "logits": sig7(logits),
            "cam_shape": list(cam.shape),
            "cam": sig7(cam),
            "top3": top3,
        })
        log(f"case {name}: shape {list(x.shape)} top1 {[t['classes'][0] for t in top3]} "
            f"p {[t['probs'][0] for t in top3]}")
    log(f"ONNX graph (NumPy float64) vs PyTorch: max relative diff {worst:.2e}")
    assert worst < 1e-3, worst

    with open(ONNX_PATH, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    ref = {
        "schema": "cropshield-contract-reference/1",
        "model": "contract.onnx",
        "model_sha256": sha,
        "model_version": MODEL_VERSION,
        "classes": classes,
        "mean": MEAN,
        "std": STD,
        "input_size": INPUT_SIZE,
        "resize_shorter": RESIZE_SHORTER,
        "formula": FORMULA,
        "png_preprocess": PNG_PREPROCESS,
        "tolerance": {"atol": 1e-4, "rtol": 1e-3,
                      "rule": "|got-want| <= atol + rtol*|want| for logits and cam; top3 indices equal"},
        "cases": cases,
    }
    with open(REF_PATH, "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    log(f"wrote {REF_PATH}: {os.path.getsize(REF_PATH)} bytes")


if __name__ == "__main__":
    main()
