#!/usr/bin/python3
"""Train, calibrate, export and check CropShield's production model, models/cropshield-v1.onnx.

Run from the repository root with Debian's Python (see README.md):

    sh models/train/gather_nonleaf.sh                 # not-a-leaf photos -> .cache/nonleaf/not_a_leaf/
    /usr/bin/python3 models/train/train.py            # ~30-55 min on 2 CPU cores (see RESULTS.md)

Pipeline:
 1. splits.json (created once, seeded; reused afterwards): lab 70/10/20 train/val/test per class, field-dev 40/10/50
    train/cal/test per class, not-a-leaf photos alternately fit/test within each source; calibration =
    lab-val + field-cal.
 2. Backbone: the ONNX Model Zoo int8 MobileNetV2 dequantized into torchvision's mobilenet_v2 (BatchNorm folded).
    features[:CUT] stay frozen; K augmented copies of every training picture go through them once and their
    14x14x64 features are cached (fp16, in RAM and in .cache/train/), then features[CUT:] and the heads are trained
    on the cache.
 3. Heads on the pooled 1280-d features of the last conv block: Linear(1280->25) (logits, and cam = the same weights
    as a 1x1 conv) and Linear(1280->1) + sigmoid (not_leaf), trained jointly on leaves (0) and not-a-leaf photos
    plus synthetic non-leaves (1).
 4. Temperature scaling on the calibration split, not-leaf threshold on (calibration leaves, not-a-leaf fit photos).
 5. Export (opset 13) with metadata, onnx.checker, size check; figures to .cache/train/results.json.
Evaluation images are preprocessed exactly like Go (inference/preprocess.go): center square of side
shorter*input_size/resize_shorter, area-averaged (box filter) to input_size.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CACHE, CLASSES, CROP_MASK, DATASETS, MEAN, MODELS, NONLEAF, SPLITS, STD, WEIGHTS,  # noqa: E402
                    check_labels, crop_of, go_square, keep_heap, load_int8_mobilenetv2, log, open_rgb, to_tensor)
import augment  # noqa: E402

SEED = 20251125
INPUT_SIZE = 224
RESIZE_SHORTER = 224
CUT = 11  # features[:CUT] frozen (output 64 x 14 x 14 at 224 px)
MODEL_VERSION = "cropshield-mnv2-v1"
ONNX_PATH = os.path.join(MODELS, "cropshield-v1.onnx")
MAX_BYTES = 15 * 1024 * 1024
OPSET = 13
K = len(CLASSES)


# ---------------------------------------------------------------- splits

def make_splits():
    rng = np.random.default_rng(SEED)
    s = {k: [] for k in ("lab-train", "lab-val", "lab-test", "field-train", "field-cal", "field-test",
                         "calibration", "nonleaf-fit", "nonleaf-test")}
    for cls in CLASSES:
        d = os.path.join(DATASETS, "plantvillage-25", cls)
        files = sorted(f for f in os.listdir(d) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        perm = rng.permutation(len(files))
        n_val, n_test = round(0.10 * len(files)), round(0.20 * len(files))
        for j, i in enumerate(perm):
            key = "lab-val" if j < n_val else "lab-test" if j < n_val + n_test else "lab-train"
            s[key].append(f"plantvillage-25/{cls}/{files[i]}")
    fd = os.path.join(DATASETS, "field-dev")
    for cls in sorted(os.listdir(fd)):
        if not os.path.isdir(os.path.join(fd, cls)):
            continue
        files = sorted(f for f in os.listdir(os.path.join(fd, cls)) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        perm = rng.permutation(len(files))
        n_test, n_cal = round(0.50 * len(files)), round(0.10 * len(files))
        for j, i in enumerate(perm):
            key = "field-test" if j < n_test else "field-cal" if j < n_test + n_cal else "field-train"
            s[key].append(f"field-dev/{cls}/{files[i]}")
    if not os.path.isdir(NONLEAF) or not os.listdir(NONLEAF):
        sys.exit(f"{NONLEAF} is empty: run  sh models/train/gather_nonleaf.sh  first")
    by_src = {}
    for f in sorted(os.listdir(NONLEAF)):
        by_src.setdefault(f.split("__")[0], []).append(f)
    for src, files in sorted(by_src.items()):
        for j, f in enumerate(files):
            s["nonleaf-fit" if j % 2 == 0 else "nonleaf-test"].append(f)
    for k in s:
        s[k].sort()
    s["calibration"] = sorted(s["lab-val"] + s["field-cal"])
    doc = {"_about": ("CropShield model splits (seeded, made by models/train/train.py). Image paths are relative to "
                      "../shared/datasets; nonleaf-* are file names in .cache/nonleaf/not_a_leaf/ "
                      "(models/train/gather_nonleaf.sh). lab: 70/10/20 per class; field-dev: 40/10/50 "
                      "train/cal/test per class; calibration = lab-val + field-cal (temperature and not-leaf "
                      "threshold); reported figures use lab-test, field-test and nonleaf-test only."),
           "seed": SEED}
    doc.update(s)
    with open(SPLITS, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    log(f"wrote {SPLITS}: " + ", ".join(f"{k} {len(v)}" for k, v in s.items()))
    return doc


def label_of(rel):
    return CLASSES.index(rel.split("/")[1])


# ---------------------------------------------------------------- feature cache

class AugBatches(torch.utils.data.Dataset):
    """Batch b of the augmented training set: (uint8 images [B,S,S,3], class [B] (-1: not a leaf), not_leaf [B])."""

    def __init__(self, items, bs, lab, masks, field, negs, field_bgs, other_bgs):
        self.items, self.bs = items, bs
        self.lab, self.masks, self.field, self.negs = lab, masks, field, negs
        self.field_bgs, self.other_bgs = field_bgs, other_bgs

    def __len__(self):
        return math.ceil(len(self.items) / self.bs)

    def __getitem__(self, b):
        rng = np.random.default_rng([SEED, 7, b])
        chunk = self.items[b * self.bs:(b + 1) * self.bs]
        x = np.empty((len(chunk), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        y = np.empty(len(chunk), np.int64)
        nl = np.empty(len(chunk), np.float32)
        for i, (kind, idx, lbl) in enumerate(chunk):
            if kind == 0:
                a = self.lab[idx]
                if rng.random() < 0.12:  # the clean Go view of a lab image
                    x[i] = np.asarray(augment.Image.fromarray(a).resize((INPUT_SIZE, INPUT_SIZE),
                                                                        augment.Image.BOX), np.uint8)
                else:
                    x[i] = augment.augment_lab(rng, a, self.masks[idx], INPUT_SIZE, self.field_bgs, self.other_bgs)
            elif kind == 1:
                x[i] = augment.augment_photo(rng, self.field[idx], INPUT_SIZE, 0.3, 25)
            elif kind == 2:
                x[i] = augment.augment_photo(rng, self.negs[idx], INPUT_SIZE, 0.25, 15, strong=False)
            else:
                x[i] = augment.synth_negative(rng, INPUT_SIZE)
            y[i], nl[i] = lbl, float(lbl < 0)
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(nl)


def shrink(im, side=512):
    w, h = im.size
    if max(w, h) <= side:
        return im
    s = side / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), augment.Image.BOX)


def build_cache(trunk, splits, args):
    key = hashlib.sha256(json.dumps([splits["lab-train"], splits["field-train"], splits["nonleaf-fit"], args.k_lab,
                                     args.k_field, args.k_neg, args.n_synth, CUT, INPUT_SIZE, SEED,
                                     "v3"]).encode()).hexdigest()[:12]
    path = os.path.join(CACHE, f"feats-{key}.pt")
    if os.path.isfile(path) and not args.no_cache:
        log(f"loading cached training features {path}")
        return torch.load(path)
    t0 = time.time()
    lab_paths = splits["lab-train"]
    log(f"decoding {len(lab_paths)} lab images and segmenting their leaves ...")
    lab = np.stack([np.asarray(open_rgb(os.path.join(DATASETS, p)), np.uint8) for p in lab_paths])
    masks = [augment.segment_leaf(a) for a in lab]
    log(f"  leaf masks for {sum(m is not None for m in masks)}/{len(masks)} images ({time.time() - t0:.0f}s)")
    field = [shrink(open_rgb(os.path.join(DATASETS, p))) for p in splits["field-train"]]
    negs = [shrink(open_rgb(os.path.join(NONLEAF, f))) for f in splits["nonleaf-fit"]]
    items = [(0, i, label_of(p)) for i, p in enumerate(lab_paths) for _ in range(args.k_lab)]
    items += [(1, i, label_of(p)) for i, p in enumerate(splits["field-train"]) for _ in range(args.k_field)]
    items += [(2, i, -1) for i in range(len(negs)) for _ in range(args.k_neg)]
    items += [(3, i, -1) for i in range(args.n_synth)]
    order = np.random.default_rng(SEED + 1).permutation(len(items))
    items = [items[i] for i in order]
    ds = AugBatches(items, 64, lab, masks, field, negs, field, negs)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=args.workers,
                                     prefetch_factor=4 if args.workers else 2)
    n = len(items)
    feats = torch.empty((n, 64, INPUT_SIZE // 16, INPUT_SIZE // 16), dtype=torch.float16)
    ys, nls = torch.empty(n, dtype=torch.int64), torch.empty(n)
    log(f"caching frozen features of {n} augmented views (lab x{args.k_lab}, field-train x{args.k_field}, "
        f"not-a-leaf x{args.k_neg}, synthetic {args.n_synth}) ...")
    t1, done = time.time(), 0
    with torch.no_grad():
        for b, (x, y, nl) in enumerate(dl):
            f = trunk(to_tensor(x.numpy()))
            feats[done:done + len(y)] = f.half()
            ys[done:done + len(y)], nls[done:done + len(y)] = y, nl
            done += len(y)
            if b % 50 == 0 or done == n:
                rate = done / (time.time() - t1)
                log(f"  cached {done}/{n} views, {rate:.0f}/s, ETA {(n - done) / rate / 60:.1f} min")
            if b == 0 and args.dump_examples:
                grid = x[:32].numpy().reshape(4, 8, INPUT_SIZE, INPUT_SIZE, 3).transpose(0, 2, 1, 3, 4)
                augment.Image.fromarray(grid.reshape(4 * INPUT_SIZE, 8 * INPUT_SIZE, 3)).save(
                    os.path.join(CACHE, "augment-examples.jpg"), quality=85)
    data = {"feats": feats, "y": ys, "nl": nls, "seconds": time.time() - t0}
    os.makedirs(CACHE, exist_ok=True)
    torch.save(data, path)
    log(f"cached in {time.time() - t0:.0f}s -> {path}")
    return data


def clean_features(trunk, paths, root):
    """Frozen features of the Go view of each picture (no augmentation)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(paths), 64):
            x = np.stack([go_square(open_rgb(os.path.join(root, p)), INPUT_SIZE, RESIZE_SHORTER)
                          for p in paths[i:i + 64]])
            out.append(trunk(to_tensor(x)).half())
    return torch.cat(out)


def eval_sets(trunk, splits):
    path = os.path.join(CACHE, "eval-feats.pt")
    key = hashlib.sha256(json.dumps([splits[k] for k in sorted(splits) if k[0] != "_" and k != "seed"]
                                    + [CUT, INPUT_SIZE, RESIZE_SHORTER]).encode()).hexdigest()[:12]
    if os.path.isfile(path):
        d = torch.load(path)
        if d.get("key") == key:
            return d
    t0 = time.time()
    d = {"key": key}
    for name in ("lab-val", "lab-test", "field-cal", "field-test"):
        d[name] = (clean_features(trunk, splits[name], DATASETS), torch.tensor([label_of(p) for p in splits[name]]))
    for name in ("nonleaf-fit", "nonleaf-test"):
        d[name] = (clean_features(trunk, splits[name], NONLEAF), torch.full((len(splits[name]),), -1))
    torch.save(d, path)
    log(f"evaluation features in {time.time() - t0:.0f}s")
    return d


# ---------------------------------------------------------------- model

class Top(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, K)
        self.nl = nn.Linear(1280, 1)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        nn.init.normal_(self.nl.weight, std=0.01)
        nn.init.zeros_(self.nl.bias)

    def forward(self, f):
        fm = self.body(f)
        g = fm.mean((2, 3))
        return self.fc(self.drop(g)), self.nl(g)[:, 0]


class ExportNet(nn.Module):
    """image -> (logits [N,K], cam [N,K,h,w], not_leaf [N])."""

    def __init__(self, features, top):
        super().__init__()
        self.features = features
        self.fc = nn.Linear(1280, K)
        self.fc.load_state_dict(top.fc.state_dict())
        self.cam = nn.Conv2d(1280, K, 1, bias=False)
        self.cam.weight.data = top.fc.weight.detach().clone()[:, :, None, None]
        self.nl = nn.Linear(1280, 1)
        self.nl.load_state_dict(top.nl.state_dict())

    def forward(self, image):
        fm = self.features(image)
        g = torch.flatten(F.adaptive_avg_pool2d(fm, 1), 1)
        return self.fc(g), self.cam(fm), torch.sigmoid(self.nl(g)).reshape(-1)


def predict(top, feats, bs=256):
    top.eval()
    lo, nl = [], []
    with torch.no_grad():
        for i in range(0, len(feats), bs):
            a, b = top(feats[i:i + bs].float())
            lo.append(a)
            nl.append(torch.sigmoid(b))
    return torch.cat(lo), torch.cat(nl)


def crop_metrics(logits, y):
    """top-1 / top-3 over all classes and within the true crop's classes."""
    lo = logits.numpy()
    y = y.numpy()
    top = np.argsort(-lo, 1)
    r = {"top1": float((top[:, 0] == y).mean()), "top3": float((top[:, :3] == y[:, None]).any(1).mean())}
    inc = lo.copy()
    for i, t in enumerate(y):
        inc[i, ~CROP_MASK[crop_of(CLASSES[t])]] = -np.inf
    top = np.argsort(-inc, 1)
    r["top1_crop"] = float((top[:, 0] == y).mean())
    r["top3_crop"] = float((top[:, :3] == y[:, None]).any(1).mean())
    return r


def ece(logits, y, t=1.0, bins=15):
    p = torch.softmax(logits / t, 1)
    conf, pred = p.max(1)
    acc = (pred == y).float()
    e = 0.0
    edges = torch.linspace(0, 1, bins + 1)
    for lo_, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo_) & (conf <= hi)
        if m.any():
            e += m.float().mean().item() * abs(conf[m].mean().item() - acc[m].mean().item())
    return e


def fit_temperature(logits, y, w):
    best = (None, float("inf"))
    for t in np.exp(np.linspace(np.log(0.25), np.log(8), 400)):
        nll = (F.cross_entropy(logits / float(t), y, reduction="none") * w).sum().item() / w.sum().item()
        if nll < best[1]:
            best = (float(t), nll)
    return best[0]


def train_top(top, data, ev, args):
    feats, ys, nls = data["feats"], data["y"], data["nl"]
    n = len(ys)
    bs = 64
    steps = args.epochs * math.ceil(n / bs)
    heads = list(top.fc.parameters()) + list(top.nl.parameters())
    opt = torch.optim.AdamW([{"params": top.body.parameters(), "lr": args.lr},
                             {"params": heads, "lr": args.lr * 5}], weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.lr * 5], total_steps=steps,
                                                pct_start=0.08, anneal_strategy="cos", div_factor=10)
    n_neg = float(nls.sum())
    pos_w = torch.tensor(min(4.0, (n - n_neg) / max(1.0, n_neg)))
    rng = np.random.default_rng(SEED + 2)
    t0, step = time.time(), 0
    for ep in range(args.epochs):
        top.train()
        perm = torch.from_numpy(rng.permutation(n))
        tl, tc, tn = 0.0, 0, 0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            x, y, nl = feats[idx].float(), ys[idx], nls[idx]
            logits, nlo = top(x)
            leaf = y >= 0
            ce = F.cross_entropy(logits[leaf], y[leaf], label_smoothing=0.1) if leaf.any() else logits.sum() * 0
            bce = F.binary_cross_entropy_with_logits(nlo, nl, pos_weight=pos_w)
            loss = ce + 0.5 * bce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            tl += loss.item() * len(idx)
            tc += (logits[leaf].argmax(1) == y[leaf]).sum().item()
            tn += int(leaf.sum())
            if step % 100 == 0 or step == steps:
                el = time.time() - t0
                log(f"  epoch {ep + 1}/{args.epochs} step {step}/{steps} loss {tl / (i + len(idx)):.3f} "
                    f"train-acc {tc / max(1, tn):.3f} {step * bs / el:.0f} views/s "
                    f"elapsed {el / 60:.1f} min ETA {(steps - step) * el / step / 60:.1f} min")
        lv, _ = predict(top, ev["lab-val"][0])
        fc, _ = predict(top, ev["field-cal"][0])
        _, nlf = predict(top, ev["nonleaf-fit"][0])
        _, nll_ = predict(top, ev["lab-val"][0])
        m_l, m_f = crop_metrics(lv, ev["lab-val"][1]), crop_metrics(fc, ev["field-cal"][1])
        log(f"epoch {ep + 1}: lab-val top1 {m_l['top1']:.3f} | field-cal top1 {m_f['top1']:.3f} "
            f"in-crop {m_f['top1_crop']:.3f} top3-in-crop {m_f['top3_crop']:.3f} | not-leaf score>0.5: "
            f"fit negatives {(nlf > 0.5).float().mean():.3f}, lab-val leaves {(nll_ > 0.5).float().mean():.3f} | "
            f"{(time.time() - t0) / 60:.1f} min")
    return time.time() - t0


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k-lab", type=int, default=4, help="augmented copies of each lab-train image")
    ap.add_argument("--k-field", type=int, default=30, help="augmented copies of each field-train photo")
    ap.add_argument("--k-neg", type=int, default=12, help="augmented copies of each not-a-leaf fit photo")
    ap.add_argument("--n-synth", type=int, default=1000, help="synthetic non-leaf pictures")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="augmentation worker processes")
    ap.add_argument("--no-cache", action="store_true", help="recompute the cached features")
    ap.add_argument("--skip-train", action="store_true", help="reuse .cache/train/top.pt")
    ap.add_argument("--dump-examples", action="store_true", help="save a grid of augmented views in .cache/train")
    args = ap.parse_args()

    t_all = time.time()
    torch.set_num_threads(args.threads)
    keep_heap()
    torch.manual_seed(SEED)
    check_labels()
    os.makedirs(CACHE, exist_ok=True)
    splits = json.load(open(SPLITS)) if os.path.isfile(SPLITS) else make_splits()

    net, _, _ = load_int8_mobilenetv2(WEIGHTS)
    net.eval()
    trunk = net.features[:CUT].eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    ev = eval_sets(trunk, splits)
    top = Top(net.features[CUT:])
    top_path = os.path.join(CACHE, "top.pt")
    if args.skip_train:
        saved = torch.load(top_path)
        top.load_state_dict(saved["state"])
        train_s, cache_s, n_views = saved["train_s"], saved["cache_s"], saved["n_views"]
    else:
        data = build_cache(trunk, splits, args)
        cache_s, n_views = data["seconds"], len(data["y"])
        log(f"training features[{CUT}:] + heads for {args.epochs} epochs on {n_views} cached views ...")
        train_s = train_top(top, data, ev, args)
        torch.save({"state": top.state_dict(), "train_s": train_s, "cache_s": cache_s, "n_views": n_views}, top_path)
        del data
    top.eval()

    # ---- evaluation, calibration, not-leaf threshold
    out = {name: predict(top, ev[name][0]) for name in ev if name != "key"}
    res = {}
    for name in ("lab-val", "lab-test", "field-cal", "field-test"):
        res[name] = crop_metrics(out[name][0], ev[name][1])
    cal_lo = torch.cat([out["lab-val"][0], out["field-cal"][0]])
    cal_y = torch.cat([ev["lab-val"][1], ev["field-cal"][1]])
    n_lv, n_fc = len(ev["lab-val"][1]), len(ev["field-cal"][1])
    # lab and field count equally: farmers send field photos, so their calibration matters as much as the lab's.
    w = torch.cat([torch.full((n_lv,), 0.5 / n_lv), torch.full((n_fc,), 0.5 / n_fc)])
    temp = fit_temperature(cal_lo, cal_y, w)
    for name in ("lab-test", "field-test"):
        lo, y = out[name][0], ev[name][1]
        res[name]["ece_T1"] = ece(lo, y)
        res[name]["ece"] = ece(lo, y, temp)
    both_lo = torch.cat([out["lab-test"][0], out["field-test"][0]])
    both_y = torch.cat([ev["lab-test"][1], ev["field-test"][1]])
    res["test-both"] = {"ece_T1": ece(both_lo, both_y), "ece": ece(both_lo, both_y, temp), "n": len(both_y)}
    res["calibration"] = {"ece_T1": ece(cal_lo, cal_y), "ece": ece(cal_lo, cal_y, temp)}

    leaf_cal = torch.cat([out["lab-val"][1], out["field-cal"][1]])
    neg_fit = out["nonleaf-fit"][1]
    best = None
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        fr = float((leaf_cal >= t).float().mean())
        miss = float((neg_fit < t).float().mean())
        cost = miss + 2 * fr
        if best is None or cost < best[0] - 1e-9:
            best = (cost, float(t))
    thr = best[1]
    res["not_leaf"] = {
        "threshold": thr,
        "rejected_nonleaf_test": float((out["nonleaf-test"][1] >= thr).float().mean()),
        "rejected_nonleaf_fit": float((neg_fit >= thr).float().mean()),
        "false_reject_lab_test": float((out["lab-test"][1] >= thr).float().mean()),
        "false_reject_field_test": float((out["field-test"][1] >= thr).float().mean()),
        "false_reject_calibration": float((leaf_cal >= thr).float().mean()),
        "n_nonleaf_test": len(out["nonleaf-test"][1]),
    }
    missed = [splits["nonleaf-test"][i] for i in np.nonzero((out["nonleaf-test"][1] < thr).numpy())[0]]
    res["not_leaf"]["missed_nonleaf_test"] = missed
    res["temperature"] = temp
    res["train_seconds"], res["cache_seconds"], res["n_views"] = train_s, cache_s, n_views

    lt, ft, nl = res["lab-test"], res["field-test"], res["not_leaf"]
    summary = (f"plantvillage-25 lab-train ({len(splits['lab-train'])} images) + field-dev field-train "
               f"({len(splits['field-train'])} photos), background-replaced and field-style augmented, "
               f"{n_views} cached views, {args.epochs} epochs, {(cache_s + train_s) / 60:.0f} min on 2 CPU cores; "
               f"held out: lab-test top-1 {lt['top1']:.3f} ({len(splits['lab-test'])}), field-test top-1 "
               f"{ft['top1']:.3f} / in-crop {ft['top1_crop']:.3f} / in-crop top-3 {ft['top3_crop']:.3f} "
               f"({len(splits['field-test'])}), not-a-leaf rejection {nl['rejected_nonleaf_test']:.3f} "
               f"({nl['n_nonleaf_test']}); splits in models/train/splits.json")
    log(json.dumps({k: v for k, v in res.items()}, indent=1))

    # ---- export
    exp = ExportNet(net.features, top).eval()  # net.features shares the trained top blocks
    with torch.no_grad():
        xb = torch.from_numpy(np.stack([go_square(open_rgb(os.path.join(DATASETS, p)), INPUT_SIZE, RESIZE_SHORTER)
                                        for p in splits["field-test"][:4]]))
        xb = to_tensor(xb.numpy())
        lo, cam, nlp = exp(xb)
        lo2, nl2 = top(trunk(xb))
        d1 = (lo - lo2).abs().max().item()
        d2 = (cam.mean((2, 3)) + exp.fc.bias - lo).abs().max().item()
        d3 = (nlp - torch.sigmoid(nl2)).abs().max().item()
    log(f"export check: |logits - train path| {d1:.2e}, |mean(cam)+b - logits| {d2:.2e}, |not_leaf diff| {d3:.2e}")
    assert d1 < 1e-3 and d2 < 1e-3 and d3 < 1e-4
    import onnx
    torch.onnx.export(exp, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), ONNX_PATH, input_names=["image"],
                      output_names=["logits", "cam", "not_leaf"],
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}, "cam": {0: "N"}, "not_leaf": {0: "N"}},
                      opset_version=OPSET, do_constant_folding=True)
    model = onnx.load(ONNX_PATH)
    meta = {
        "classes": json.dumps(CLASSES),
        "mean": json.dumps(MEAN),
        "std": json.dumps(STD),
        "input_size": str(INPUT_SIZE),
        "resize_shorter": str(RESIZE_SHORTER),
        "model_version": MODEL_VERSION,
        "temperature": f"{temp:.4f}",
        "not_leaf_threshold": f"{thr:.2f}",
        "description": ("CropShield leaf-disease classifier: MobileNetV2-1.0 (ImageNet, ONNX Model Zoo int8 weights "
                        "dequantized) fine-tuned on 25 PlantVillage crop/disease classes with field-style "
                        "augmentation (lab background replaced by cluttered backgrounds) and on field photos of "
                        "tomato leaves; outputs logits, class activation maps and a not-a-leaf score."),
        "training_data": summary,
        "backbone": "mobilenet_v2 1.0 (torchvision layout), ImageNet weights from the ONNX Model Zoo "
                    "mobilenetv2-12-int8 (Apache-2.0), features[:11] frozen, features[11:] fine-tuned",
        "license": "model weights: Apache-2.0 backbone; fine-tuned on PlantVillage (CC BY 4.0 / unlicensed "
                   "mirrors) and PlantDoc (CC BY 4.0) images",
        "not_leaf": ("output not_leaf [N] = sigmoid(w . GAP(F) + b), a logistic head on the pooled last-block "
                     "features trained against photos of people, animals, objects, text and landscapes; reject "
                     "the photo when not_leaf >= not_leaf_threshold"),
        "cam_layer": "features.18 (last 1x1 conv + ReLU6), 7x7 at 224 px",
        "preprocess": ("RGB; center square of side shorter*input_size/resize_shorter, area-averaged to "
                       "input_size x input_size; (v/255 - mean)/std; CHW"),
        "metrics": json.dumps({"lab_test_top1": round(lt["top1"], 4), "field_test_top1": round(ft["top1"], 4),
                               "field_test_top3": round(ft["top3"], 4),
                               "field_test_top1_in_crop": round(ft["top1_crop"], 4),
                               "field_test_top3_in_crop": round(ft["top3_crop"], 4),
                               "nonleaf_test_rejected": round(nl["rejected_nonleaf_test"], 4),
                               "false_reject_lab_test": round(nl["false_reject_lab_test"], 4),
                               "false_reject_field_test": round(nl["false_reject_field_test"], 4),
                               "ece_test_both": round(res["test-both"]["ece"], 4)}),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = key, value
    model.producer_name = "cropshield models/train/train.py"
    model.doc_string = meta["description"]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, ONNX_PATH)
    size = os.path.getsize(ONNX_PATH)
    with open(ONNX_PATH, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    res["onnx"] = {"path": os.path.relpath(ONNX_PATH, os.path.dirname(MODELS)), "bytes": size, "sha256": sha,
                   "opset": OPSET, "ir_version": model.ir_version, "metadata": meta,
                   "ops": sorted({n.op_type for n in model.graph.node})}
    res["total_seconds"] = time.time() - t_all
    with open(os.path.join(CACHE, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    log(f"wrote {ONNX_PATH}: {size} bytes ({size / 2**20:.2f} MiB), sha256 {sha}, ops {res['onnx']['ops']}")
    for o in model.graph.output:
        log(f"  output {o.name}: {[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]}")
    assert size <= MAX_BYTES, f"{ONNX_PATH} is {size} bytes, over {MAX_BYTES}"
    log(f"done in {(time.time() - t_all) / 60:.1f} min; figures in {os.path.join(CACHE, 'results.json')}")


if __name__ == "__main__":
    main()
