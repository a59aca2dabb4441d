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
from common import (CACHE, CLASSES, DATASETS, MEAN, MODELS, NONLEAF, SPLITS, STD, WEIGHTS,  # noqa: E402
                    check_labels, crop_of, crops_of, dhash, go_square, keep_heap, load_int8_mobilenetv2, log,
                    near_duplicate_groups, open_rgb, to_tensor)
import augment  # noqa: E402

SEED = 20251125
INPUT_SIZE = 224
RESIZE_SHORTER = 224
CUT = 11  # features[:CUT] frozen (output 64 x 14 x 14 at 224 px)
MODEL_VERSION = "cropshield-mnv2-v2"
ONNX_PATH = os.path.join(MODELS, "cropshield-v2.onnx")
MAX_BYTES = 15 * 1024 * 1024
OPSET = 13
# The bot's default --threshold: below it the bot says it is not sure instead of naming a disease.
ANSWER_THRESHOLD = 0.5


# ---------------------------------------------------------------- splits

PHOTO_EXTS = (".jpg", ".jpeg", ".png")

# Field sources: folder under ../shared/datasets, split name, (test, calibration) fractions of the photos.
FIELD_SOURCES = [("field-dev", "tomato", 0.45, 0.15), ("field-dev-corn", "corn", 0.40, 0.15)]


def list_class_dir(root, rel):
    d = os.path.join(root, rel)
    out = []
    for dirpath, _, files in os.walk(d):
        out += [os.path.relpath(os.path.join(dirpath, f), root) for f in files if f.lower().endswith(PHOTO_EXTS)]
    return sorted(out)


def group_split(rng, files, stratum, fractions, names):
    """Split files into len(names) parts by near-duplicate group, per stratum (class): whole groups are dealt to
    the parts in order until each has its fraction of the stratum's photos; the last part takes the rest."""
    groups = near_duplicate_groups([dhash(os.path.join(DATASETS, f)) for f in files])
    by_group = {}
    for f, g in zip(files, groups):
        by_group.setdefault(g, []).append(f)
    by_stratum = {}
    for g, members in sorted(by_group.items(), key=lambda kv: kv[1][0]):
        by_stratum.setdefault(stratum(members[0]), []).append(members)
    parts = {n: [] for n in names}
    n_joined = sum(len(m) for m in by_group.values() if len(m) > 1)
    for st, gs in sorted(by_stratum.items()):
        total = sum(len(m) for m in gs)
        order = rng.permutation(len(gs))
        k, filled = 0, 0
        for name, frac in zip(names, list(fractions) + [None]):
            goal = total if frac is None else filled + round(frac * total)
            while k < len(order) and (frac is None or filled < goal):
                parts[name] += gs[order[k]]
                filled += len(gs[order[k]])
                k += 1
    return parts, n_joined


def make_splits():
    """Every split, by near-duplicate group (16x16 dHash within 12 bits) so that copies of one photo never
    straddle training and evaluation."""
    rng = np.random.default_rng(SEED)
    s = {}
    joined = {}
    lab = [f for c in CLASSES for f in list_class_dir(DATASETS, f"plantvillage-25/{c}")
           if os.path.isdir(os.path.join(DATASETS, "plantvillage-25", c))]
    parts, joined["lab"] = group_split(rng, lab, lambda f: f.split("/")[1], (0.20, 0.10),
                                       ("lab-test", "lab-val", "lab-train"))
    s.update(parts)
    for folder, name, f_test, f_cal in FIELD_SOURCES:
        files = list_class_dir(DATASETS, folder)
        parts, joined[name] = group_split(rng, files, lambda f: f.split("/")[1], (f_test, f_cal),
                                          (f"{name}-test", f"{name}-cal", f"{name}-train"))
        s.update(parts)
    # Beans: iBean's own validation split is the test set; near-duplicates of it in iBean's train split are left
    # out of training; calibration is a grouped 12 % of the rest.
    beans = list_class_dir(DATASETS, "beans-uganda")
    groups = near_duplicate_groups([dhash(os.path.join(DATASETS, f)) for f in beans])
    val_groups = {g for f, g in zip(beans, groups) if "ibean-val" in os.path.basename(f)}
    s["bean-test"] = [f for f in beans if "ibean-val" in os.path.basename(f)]
    s["excluded"] = [f for f, g in zip(beans, groups) if g in val_groups and "ibean-val" not in os.path.basename(f)]
    rest = [f for f, g in zip(beans, groups) if g not in val_groups]
    parts, joined["bean"] = group_split(rng, rest, lambda f: f.split("/")[1], (0.12,), ("bean-cal", "bean-train"))
    s.update(parts)
    chilli = list_class_dir(DATASETS, "other-crops/chilli")
    parts, joined["chilli"] = group_split(rng, chilli, lambda f: f.split("/")[2], (0.25, 0.15),
                                          ("chilli-test", "chilli-cal", "chilli-train"))
    s.update(parts)
    s["apple-field-test"] = list_class_dir(DATASETS, "field-more")
    if not os.path.isdir(NONLEAF) or not os.listdir(NONLEAF):
        sys.exit(f"{NONLEAF} is empty: run  sh models/train/gather_nonleaf.sh  first")
    by_src = {}
    for f in sorted(os.listdir(NONLEAF)):
        by_src.setdefault(f.split("__")[0], []).append(f)
    s["nonleaf-fit"], s["nonleaf-test"] = [], []
    for src, files in sorted(by_src.items()):
        for j, f in enumerate(files):
            s["nonleaf-fit" if j % 2 == 0 else "nonleaf-test"].append(f)
    for k in s:
        s[k].sort()
    doc = {"_about": ("CropShield v2 model splits (seeded, made by models/train/train.py). Image paths are relative "
                      "to ../shared/datasets; nonleaf-* are file names in .cache/nonleaf/not_a_leaf/ "
                      "(models/train/gather_nonleaf.sh). Every split is made of whole near-duplicate groups "
                      "(16x16 dHash within 12 bits). lab (plantvillage-25): 70/10/20 train/val/test per class; "
                      "tomato (field-dev): 40/15/45 train/cal/test; corn (field-dev-corn): 45/15/40; bean "
                      "(beans-uganda): iBean's validation split is bean-test, its near-duplicates in iBean's train "
                      "split are excluded, the rest 88/12 train/cal; chilli (other-crops, a crop the model does "
                      "not know): 60/15/25; apple-field-test (field-more): evaluation only, never trained or "
                      "calibrated on. Calibration = lab-val + *-cal; reported figures use the *-test splits only."),
           "seed": SEED, "near_duplicates_joined": joined}
    doc.update(s)
    with open(SPLITS, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    log(f"wrote {SPLITS}: " + ", ".join(f"{k} {len(v)}" for k, v in s.items()) + f"; near-duplicates joined {joined}")
    return doc


def label_of(rel):
    """The class index of a dataset path (its class folder), -2 for a leaf of a crop the model does not know."""
    if rel.startswith("other-crops/"):
        return -2
    return CLASSES.index(rel.split("/")[1])


# ---------------------------------------------------------------- feature cache

# Kinds of training item: a lab image (background replaced), a field photo, a not-a-leaf photo, a synthetic
# non-leaf, and a leaf of a crop the model does not know (chilli).
LAB, FIELD, NEG, SYNTH, OTHER = range(5)
BG_CROPS = ("tomato", "corn")


class AugBatches(torch.utils.data.Dataset):
    """Batch b of the augmented training set: (uint8 images [B,S,S,3], label [B] (class; -1 not a leaf; -2 a leaf
    of another crop))."""

    def __init__(self, items, bs, lab, masks, photos, negs, field_bgs, other_bgs):
        self.items, self.bs = items, bs
        self.lab, self.masks, self.photos, self.negs = lab, masks, photos, negs
        self.field_bgs, self.other_bgs = field_bgs, other_bgs

    def __len__(self):
        return math.ceil(len(self.items) / self.bs)

    def __getitem__(self, b):
        rng = np.random.default_rng([SEED, 7, b])
        chunk = self.items[b * self.bs:(b + 1) * self.bs]
        x = np.empty((len(chunk), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        y = np.empty(len(chunk), np.int64)
        for i, (kind, idx, lbl) in enumerate(chunk):
            if kind == LAB:
                a = self.lab[idx]
                if rng.random() < 0.12:  # the clean Go view of a lab image
                    x[i] = np.asarray(augment.Image.fromarray(a).resize((INPUT_SIZE, INPUT_SIZE),
                                                                        augment.Image.BOX), np.uint8)
                else:
                    x[i] = augment.augment_lab(rng, a, self.masks[idx], INPUT_SIZE, self.field_bgs, self.other_bgs)
            elif kind in (FIELD, OTHER):
                x[i] = augment.augment_photo(rng, self.photos[idx], INPUT_SIZE, 0.3, 25)
            elif kind == NEG:
                x[i] = augment.augment_photo(rng, self.negs[idx], INPUT_SIZE, 0.25, 15, strong=False)
            else:
                x[i] = augment.synth_negative(rng, INPUT_SIZE)
            y[i] = lbl
        return torch.from_numpy(x), torch.from_numpy(y)


def shrink(im, side=512):
    w, h = im.size
    if max(w, h) <= side:
        return im
    s = side / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), augment.Image.BOX)


def extra_photos(folder):
    """(absolute path, class index) of the photos of a dataset export: the dashboard's staff-labels/CLASS/*.jpg,
    or any folder of class-id folders. Folders that are not a model class are skipped with a message."""
    out = []
    for cls in sorted(os.listdir(folder)):
        d = os.path.join(folder, cls)
        if not os.path.isdir(d):
            continue
        if cls not in CLASSES:
            log(f"  {d}: not a model class, skipped")
            continue
        out += [(os.path.join(d, f), CLASSES.index(cls)) for f in sorted(os.listdir(d)) if f.lower().endswith(PHOTO_EXTS)]
    return out


def field_train(splits):
    return [p for name in ("tomato-train", "corn-train", "bean-train") for p in splits[name]]


def build_cache(trunk, splits, args):
    extra = extra_photos(args.extra_data) if args.extra_data else []
    key = hashlib.sha256(json.dumps([splits["lab-train"], field_train(splits), splits["chilli-train"],
                                     splits["nonleaf-fit"], [p for p, _ in extra], args.k_lab, args.k_field,
                                     args.k_corn, args.k_bean, args.k_other, args.k_neg, args.n_synth, CUT,
                                     INPUT_SIZE, SEED, "v4"]).encode()).hexdigest()[:12]
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
    photo_items = [(os.path.join(DATASETS, p), label_of(p)) for p in field_train(splits) + splits["chilli-train"]]
    photo_items += extra
    photos = [shrink(open_rgb(p)) for p, _ in photo_items]
    negs = [shrink(open_rgb(os.path.join(NONLEAF, f))) for f in splits["nonleaf-fit"]]
    copies = {"corn": args.k_corn, "bean": args.k_bean}
    items = [(LAB, i, label_of(p)) for i, p in enumerate(lab_paths) for _ in range(args.k_lab)]
    for i, (p, lbl) in enumerate(photo_items):
        k = args.k_other if lbl == -2 else copies.get(crop_of(CLASSES[lbl]), args.k_field)
        items += [(OTHER if lbl == -2 else FIELD, i, lbl)] * k
    items += [(NEG, i, -1) for i in range(len(negs)) for _ in range(args.k_neg)]
    items += [(SYNTH, i, -1) for i in range(args.n_synth)]
    order = np.random.default_rng(SEED + 1).permutation(len(items))
    items = [items[i] for i in order]
    # Backgrounds for the lab leaves: tomato and maize field photos and chilli leaves, never bean photos, so that
    # the bean hold-out run (--hold-out-crop bean) shares this cache without ever seeing a bean leaf.
    leaf_bgs = [im for im, (_, lbl) in zip(photos, photo_items) if lbl == -2 or crop_of(CLASSES[lbl]) in BG_CROPS]
    ds = AugBatches(items, 64, lab, masks, photos, negs, leaf_bgs, negs)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=args.workers,
                                     prefetch_factor=4 if args.workers else 2)
    n = len(items)
    feats = torch.empty((n, 64, INPUT_SIZE // 16, INPUT_SIZE // 16), dtype=torch.float16)
    ys = torch.empty(n, dtype=torch.int64)
    counts = {k: sum(1 for it in items if it[0] == k) for k in (LAB, FIELD, OTHER, NEG, SYNTH)}
    log(f"caching frozen features of {n} augmented views (lab {counts[LAB]}, field {counts[FIELD]}, other crop "
        f"{counts[OTHER]}, not-a-leaf {counts[NEG]}, synthetic {counts[SYNTH]}) ...")
    t1, done = time.time(), 0
    with torch.no_grad():
        for b, (x, y) in enumerate(dl):
            f = trunk(to_tensor(x.numpy()))
            feats[done:done + len(y)] = f.half()
            ys[done:done + len(y)] = y
            done += len(y)
            if b % 50 == 0 or done == n:
                rate = done / (time.time() - t1)
                log(f"  cached {done}/{n} views, {rate:.0f}/s, ETA {(n - done) / rate / 60:.1f} min")
            if b == 0 and args.dump_examples:
                grid = x[:32].numpy().reshape(4, 8, INPUT_SIZE, INPUT_SIZE, 3).transpose(0, 2, 1, 3, 4)
                augment.Image.fromarray(grid.reshape(4 * INPUT_SIZE, 8 * INPUT_SIZE, 3)).save(
                    os.path.join(CACHE, "augment-examples.jpg"), quality=85)
    data = {"feats": feats, "y": ys, "seconds": time.time() - t0, "counts": counts}
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


EVAL_SETS = ["lab-val", "lab-test", "tomato-cal", "tomato-test", "corn-cal", "corn-test", "bean-cal", "bean-test",
             "chilli-cal", "chilli-test", "apple-field-test"]


def eval_sets(trunk, splits):
    path = os.path.join(CACHE, "eval-feats.pt")
    key = hashlib.sha256(json.dumps([splits[k] for k in EVAL_SETS + ["nonleaf-fit", "nonleaf-test"]]
                                    + [CUT, INPUT_SIZE, RESIZE_SHORTER]).encode()).hexdigest()[:12]
    if os.path.isfile(path):
        d = torch.load(path)
        if d.get("key") == key:
            return d
    t0 = time.time()
    d = {"key": key}
    for name in EVAL_SETS:
        d[name] = (clean_features(trunk, splits[name], DATASETS), torch.tensor([label_of(p) for p in splits[name]]))
    for name in ("nonleaf-fit", "nonleaf-test"):
        d[name] = (clean_features(trunk, splits[name], NONLEAF), torch.full((len(splits[name]),), -1))
    torch.save(d, path)
    log(f"evaluation features in {time.time() - t0:.0f}s")
    return d


# ---------------------------------------------------------------- model

class Top(nn.Module):
    def __init__(self, body, k):
        super().__init__()
        self.body = body
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, k)
        self.nl = nn.Linear(1280, 1)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        nn.init.normal_(self.nl.weight, std=0.01)
        nn.init.zeros_(self.nl.bias)

    def forward(self, f):
        fm = self.body(f)
        g = fm.mean((2, 3))
        return self.fc(self.drop(g)), self.nl(g)[:, 0]


def crop_matrix(classes):
    """[K, C] 0/1 membership of each class in each crop (crops in class order)."""
    crops = crops_of(classes)
    m = torch.zeros(len(classes), len(crops))
    for i, c in enumerate(classes):
        m[i, crops.index(crop_of(c))] = 1
    return m


def unknown_crop_score(logits, member, temp):
    """1 - the largest crop probability, the crop probability being the sum of its classes' softmax(logits/T)."""
    return 1 - (torch.softmax(logits / temp, 1) @ member).max(1).values


class ExportNet(nn.Module):
    """image -> (logits [N,K], cam [N,K,h,w], not_leaf [N], unknown_crop [N])."""

    def __init__(self, features, top, member, temp):
        super().__init__()
        k = top.fc.out_features
        self.features = features
        self.fc = nn.Linear(1280, k)
        self.fc.load_state_dict(top.fc.state_dict())
        self.cam = nn.Conv2d(1280, k, 1, bias=False)
        self.cam.weight.data = top.fc.weight.detach().clone()[:, :, None, None]
        self.nl = nn.Linear(1280, 1)
        self.nl.load_state_dict(top.nl.state_dict())
        self.register_buffer("member", member.clone())
        self.temp = float(temp)

    def forward(self, image):
        fm = self.features(image)
        g = torch.flatten(F.adaptive_avg_pool2d(fm, 1), 1)
        logits = self.fc(g)
        return (logits, self.cam(fm), torch.sigmoid(self.nl(g)).reshape(-1),
                unknown_crop_score(logits, self.member, self.temp))


def predict(top, feats, bs=256):
    top.eval()
    lo, nl = [], []
    with torch.no_grad():
        for i in range(0, len(feats), bs):
            a, b = top(feats[i:i + bs].float())
            lo.append(a)
            nl.append(torch.sigmoid(b))
    return torch.cat(lo), torch.cat(nl)


def crop_metrics(logits, y, classes):
    """top-1 / top-3 over all classes and within the true crop's classes."""
    lo = logits.numpy()
    y = y.numpy()
    top = np.argsort(-lo, 1)
    r = {"n": len(y), "top1": float((top[:, 0] == y).mean()), "top3": float((top[:, :3] == y[:, None]).any(1).mean())}
    inc = lo.copy()
    crops = np.array([crop_of(c) for c in classes])
    for i, t in enumerate(y):
        inc[i, crops != crops[t]] = -np.inf
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


def uniform_crop_loss(logits, logmask, keep=None):
    """Cross-entropy between the crop distribution (log-sum-exp of each crop's class logits, softmax over crops,
    the crops in keep only) and the uniform distribution over them: 'none of these crops more than another'."""
    z = torch.logsumexp(logits[:, :, None] + logmask[None], 1)  # [B, C]
    if keep is not None:
        z = z[:, keep]
    return -F.log_softmax(z, 1).mean(1)


def train_top(top, data, ev, classes, args):
    feats, ys = data["feats"], data["y"]
    n = len(ys)
    bs = 64
    steps = args.epochs * math.ceil(n / bs)
    heads = list(top.fc.parameters()) + list(top.nl.parameters())
    opt = torch.optim.AdamW([{"params": top.body.parameters(), "lr": args.lr},
                             {"params": heads, "lr": args.lr * 5}], weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.lr * 5], total_steps=steps,
                                                pct_start=0.08, anneal_strategy="cos", div_factor=10)
    nls = (ys == -1).float()
    n_neg = float(nls.sum())
    pos_w = torch.tensor(min(4.0, (n - n_neg) / max(1.0, n_neg)))
    member = crop_matrix(classes)
    logmask = torch.log(member)  # 0 in the crop, -inf outside
    n_crops = member.shape[1]
    crop_of_class = member.argmax(1)
    rng = np.random.default_rng(SEED + 2)
    t0, step = time.time(), 0
    for ep in range(args.epochs):
        top.train()
        perm = torch.from_numpy(rng.permutation(n))
        tl, tc, tn = 0.0, 0, 0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            x, y = feats[idx].float(), ys[idx]
            nl = (y == -1).float()
            logits, nlo = top(x)
            # Leave one crop out: in each batch one known crop plays the crop the model does not know. Its leaves
            # (and every other-crop leaf) are taught "no known crop more than another" over the remaining crops
            # instead of their class, so that how sure the model is of the crop says whether it knows the crop.
            out = int(rng.integers(n_crops))
            known = y >= 0
            rot = known & (crop_of_class[y.clamp(min=0)] == out)
            leaf = known & ~rot
            other = y == -2
            terms = []
            if leaf.any():
                terms.append(F.cross_entropy(logits[leaf], y[leaf], label_smoothing=0.1, reduction="sum"))
            if rot.any():
                keep = [c for c in range(n_crops) if c != out]
                terms.append(args.oe * uniform_crop_loss(logits[rot], logmask, keep).sum())
            if other.any():
                terms.append(args.oe * uniform_crop_loss(logits[other], logmask).sum())
            n_leaves = int(leaf.sum() + rot.sum() + other.sum())
            cls_loss = sum(terms) / max(1, n_leaves) if terms else logits.sum() * 0
            bce = F.binary_cross_entropy_with_logits(nlo, nl, pos_weight=pos_w)
            loss = cls_loss + 0.5 * bce
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
        parts = []
        for name in ("lab-val", "tomato-cal", "corn-cal", "bean-cal"):
            if name in ev:
                lo, _ = predict(top, ev[name][0])
                m = crop_metrics(lo, ev[name][1], classes)
                parts.append(f"{name} top1 {m['top1']:.3f} in-crop {m['top1_crop']:.3f}")
        log(f"epoch {ep + 1}: " + " | ".join(parts) + f" | {(time.time() - t0) / 60:.1f} min")
    return time.time() - t0


# ---------------------------------------------------------------- thresholds and figures

def pick_not_leaf_threshold(leaf_scores, neg_scores):
    """Minimizes missed not-a-leaf photos + 2 x falsely refused leaves (a refused leaf costs a farmer more)."""
    best = None
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        cost = float((neg_scores < t).float().mean()) + 2 * float((leaf_scores >= t).float().mean())
        if best is None or cost < best[0] - 1e-9:
            best = (cost, float(t))
    return best[1]


def pick_unknown_threshold(field_cal, lab_cal, max_field=0.02, max_lab=0.01):
    """The lowest unknown-crop threshold (the most refusals of unknown crops) that refuses at most max_field of
    the field calibration leaves (each crop's share weighted equally) and max_lab of the lab ones."""
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        fr = np.mean([float((u >= t).float().mean()) for u in field_cal])
        if fr <= max_field and float((lab_cal >= t).float().mean()) <= max_lab:
            return float(t)
    return 0.95


def source_figures(logits, nl, y, classes, member, temp, nl_thr, uc_thr, answer_thr):
    """What the bot does with each photo of a source: refused as not a leaf, refused as another crop, unsure, or
    answered with a disease (right or wrong)."""
    p = torch.softmax(logits / temp, 1)
    conf, pred = p.max(1)
    u = unknown_crop_score(logits, member, temp)
    not_leaf = nl >= nl_thr
    other = ~not_leaf & (u >= uc_thr)
    answered = ~not_leaf & ~other & (conf >= answer_thr)
    r = {"n": len(y), "refused_not_leaf": float(not_leaf.float().mean()),
         "refused_unknown_crop": float(other.float().mean()),
         "answered_with_disease": float(answered.float().mean())}
    if (y >= 0).all():
        r.update(crop_metrics(logits, y, classes))
        r["ece"] = ece(logits, y, temp)
        r["ece_T1"] = ece(logits, y)
        wrong = pred != y
        r["confident_wrong"] = float((answered & wrong).float().mean())
        r["confident_wrong_of_answered"] = float((answered & wrong).float().sum() / max(1, int(answered.sum())))
    return r


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k-lab", type=int, default=3, help="augmented copies of each lab-train image")
    ap.add_argument("--k-field", type=int, default=25, help="augmented copies of each tomato field-train photo "
                                                             "(and of each --extra-data photo)")
    ap.add_argument("--k-corn", type=int, default=40, help="augmented copies of each maize field-train photo")
    ap.add_argument("--k-bean", type=int, default=4, help="augmented copies of each bean field-train photo")
    ap.add_argument("--k-other", type=int, default=5, help="augmented copies of each other-crop (chilli) photo")
    ap.add_argument("--k-neg", type=int, default=10, help="augmented copies of each not-a-leaf fit photo")
    ap.add_argument("--n-synth", type=int, default=800, help="synthetic non-leaf pictures")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--oe", type=float, default=0.5, help="weight of the 'no crop more than another' loss")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="augmentation worker processes")
    ap.add_argument("--extra-data", metavar="DIR",
                    help="more field training photos, one folder per class id: the support dashboard's dataset "
                         "export (staff-labels/) of farmers' photos confirmed or corrected by staff")
    ap.add_argument("--hold-out-crop", metavar="CROP",
                    help="validation run: leave every photo of CROP out of training and calibration, write "
                         ".cache/train/without-CROP/model.onnx and measure how that crop is refused")
    ap.add_argument("--no-cache", action="store_true", help="recompute the cached features")
    ap.add_argument("--skip-train", action="store_true", help="reuse the trained weights in .cache/train")
    ap.add_argument("--dump-examples", action="store_true", help="save a grid of augmented views in .cache/train")
    args = ap.parse_args()

    t_all = time.time()
    torch.set_num_threads(args.threads)
    keep_heap()
    torch.manual_seed(SEED)
    check_labels()
    os.makedirs(CACHE, exist_ok=True)
    splits = json.load(open(SPLITS)) if os.path.isfile(SPLITS) else make_splits()

    held = args.hold_out_crop
    classes = [c for c in CLASSES if crop_of(c) != held]
    if held and len(classes) == len(CLASSES):
        sys.exit(f"--hold-out-crop {held}: no class of that crop")
    if held in BG_CROPS:
        sys.exit(f"--hold-out-crop {held}: its field photos are backgrounds of the shared training cache")
    out_dir = os.path.join(CACHE, f"without-{held}") if held else CACHE
    onnx_path = os.path.join(out_dir, "model.onnx") if held else ONNX_PATH
    os.makedirs(out_dir, exist_ok=True)
    member = crop_matrix(classes)

    net, _, _ = load_int8_mobilenetv2(WEIGHTS)
    net.eval()
    trunk = net.features[:CUT].eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    ev = eval_sets(trunk, splits)
    if held:  # the held-out crop's photos become leaves of a crop the model does not know
        for name in [k for k in ev if k != "key" and k.startswith(held + "-")]:
            ev[f"unknown-{name}"] = (ev[name][0], torch.full((len(ev[name][1]),), -2))
            del ev[name]
    top = Top(net.features[CUT:], len(classes))
    top_path = os.path.join(out_dir, "top.pt")
    if args.skip_train:
        saved = torch.load(top_path)
        top.load_state_dict(saved["state"])
        train_s, cache_s, n_views = saved["train_s"], saved["cache_s"], saved["n_views"]
    else:
        data = build_cache(trunk, splits, args)
        cache_s = data["seconds"]
        if held:
            keep = torch.tensor([int(t) < 0 or crop_of(CLASSES[int(t)]) != held for t in data["y"]])
            data = {"feats": data["feats"][keep], "y": data["y"][keep]}
        n_views = len(data["y"])
        log(f"training features[{CUT}:] + heads for {args.epochs} epochs on {n_views} cached views"
            + (f" (without {held})" if held else "") + " ...")
        train_s = train_top(top, data, ev, classes, args)
        torch.save({"state": top.state_dict(), "train_s": train_s, "cache_s": cache_s, "n_views": n_views}, top_path)
        del data
    top.eval()

    # ---- calibration: one temperature, lab-val a quarter, the field calibration photos of each crop the rest
    out = {name: predict(top, ev[name][0]) for name in ev if name != "key"}
    field_cal = [n for n in ("tomato-cal", "corn-cal", "bean-cal") if n in ev]
    cal_lo = torch.cat([out["lab-val"][0]] + [out[n][0] for n in field_cal])
    cal_y = torch.cat([ev["lab-val"][1]] + [ev[n][1] for n in field_cal])
    w = torch.cat([torch.full((len(ev["lab-val"][1]),), 0.25 / len(ev["lab-val"][1]))]
                  + [torch.full((len(ev[n][1]),), 0.75 / len(field_cal) / len(ev[n][1])) for n in field_cal])
    temp = fit_temperature(cal_lo, cal_y, w)
    leaf_cal = torch.cat([out["lab-val"][1]] + [out[n][1] for n in field_cal + ["chilli-cal"]])
    nl_thr = pick_not_leaf_threshold(leaf_cal, out["nonleaf-fit"][1])
    uc_thr = pick_unknown_threshold([unknown_crop_score(out[n][0], member, temp) for n in field_cal],
                                    unknown_crop_score(out["lab-val"][0], member, temp))
    res = {"classes": len(classes), "temperature": temp, "not_leaf_threshold": nl_thr,
           "unknown_crop_threshold": uc_thr, "answer_threshold": ANSWER_THRESHOLD, "sources": {}}
    for name in sorted(k for k in ev if k != "key"):
        res["sources"][name] = source_figures(out[name][0], out[name][1], ev[name][1], classes, member, temp,
                                              nl_thr, uc_thr, ANSWER_THRESHOLD)
    res["train_seconds"], res["cache_seconds"], res["n_views"] = train_s, cache_s, n_views
    for name, r in res["sources"].items():
        log(f"{name:22s} " + " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    log(f"temperature {temp:.3f}, not_leaf_threshold {nl_thr:.2f}, unknown_crop_threshold {uc_thr:.2f}")
    src = res["sources"]

    def fig(name, key):
        return f"{src[name][key]:.3f}" if name in src and key in src[name] else "n/a"
    summary = (f"plantvillage-25 lab-train ({len(splits['lab-train'])} images), field photos "
               + ", ".join(f"{n} ({len(splits[n])})" for n in ("tomato-train", "corn-train", "bean-train")
                           if not held or not n.startswith(held))
               + f", other-crop leaves chilli-train ({len(splits['chilli-train'])}), not-a-leaf pictures; "
               f"{n_views} cached views, {args.epochs} epochs, {(cache_s + train_s) / 60:.0f} min on 2 CPU cores; "
               f"held out: lab-test top-1 {fig('lab-test', 'top1')}, tomato-test in-crop top-1 "
               f"{fig('tomato-test', 'top1_crop')}, corn-test in-crop top-1 {fig('corn-test', 'top1_crop')}, "
               f"bean-test top-1 {fig('bean-test', 'top1')}; splits in models/train/splits.json")

    # ---- export
    exp = ExportNet(net.features, top, member, temp).eval()  # net.features shares the trained top blocks
    with torch.no_grad():
        xb = torch.from_numpy(np.stack([go_square(open_rgb(os.path.join(DATASETS, p)), INPUT_SIZE, RESIZE_SHORTER)
                                        for p in splits["tomato-test"][:4]]))
        xb = to_tensor(xb.numpy())
        lo, cam, nlp, ucp = exp(xb)
        lo2, nl2 = top(trunk(xb))
        d1 = (lo - lo2).abs().max().item()
        d2 = (cam.mean((2, 3)) + exp.fc.bias - lo).abs().max().item()
        d3 = (nlp - torch.sigmoid(nl2)).abs().max().item()
        d4 = (ucp - unknown_crop_score(lo2, member, temp)).abs().max().item()
    log(f"export check: |logits - train path| {d1:.2e}, |mean(cam)+b - logits| {d2:.2e}, |not_leaf diff| {d3:.2e}, "
        f"|unknown_crop diff| {d4:.2e}")
    assert d1 < 1e-3 and d2 < 1e-3 and d3 < 1e-4 and d4 < 1e-4
    import onnx
    names = ["logits", "cam", "not_leaf", "unknown_crop"]
    torch.onnx.export(exp, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), onnx_path, input_names=["image"],
                      output_names=names, dynamic_axes={n: {0: "N"} for n in ["image"] + names},
                      opset_version=OPSET, do_constant_folding=True)
    model = onnx.load(onnx_path)
    crops = crops_of(classes)
    meta = {
        "classes": json.dumps(classes),
        "mean": json.dumps(MEAN),
        "std": json.dumps(STD),
        "input_size": str(INPUT_SIZE),
        "resize_shorter": str(RESIZE_SHORTER),
        "model_version": MODEL_VERSION + (f"-without-{held}" if held else ""),
        "temperature": f"{temp:.4f}",
        "not_leaf_threshold": f"{nl_thr:.2f}",
        "unknown_crop_threshold": f"{uc_thr:.2f}",
        "description": (f"CropShield leaf-disease classifier: MobileNetV2-1.0 (ImageNet, ONNX Model Zoo int8 weights "
                        f"dequantized) fine-tuned on {len(classes)} crop/disease classes of {len(crops)} crops "
                        "(PlantVillage lab photos with field-style augmentation, field photos of tomato, maize and "
                        "bean leaves); outputs logits, class activation maps, a not-a-leaf score and an "
                        "unknown-crop score."),
        "training_data": summary,
        "backbone": f"mobilenet_v2 1.0 (torchvision layout), ImageNet weights from the ONNX Model Zoo "
                    f"mobilenetv2-12-int8 (Apache-2.0), features[:{CUT}] frozen, features[{CUT}:] fine-tuned",
        "license": "model weights: Apache-2.0 backbone; fine-tuned on PlantVillage (CC BY 4.0 / unlicensed "
                   "mirrors), PlantDoc (CC BY 4.0), iBean (CC BY 4.0) and chilli leaf (CC BY 4.0) images",
        "not_leaf": ("output not_leaf [N] = sigmoid(w . GAP(F) + b), a logistic head on the pooled last-block "
                     "features trained against photos of people, animals, objects, text and landscapes; reject "
                     "the photo when not_leaf >= not_leaf_threshold"),
        "unknown_crop": ("output unknown_crop [N] = 1 - max over crops of the crop's probability (the sum of its "
                         "classes' softmax(logits / temperature)); trained with leaves of other crops and one known "
                         "crop left out in every batch taught 'no crop more than another'; refuse the leaf as a crop "
                         "the model does not know when unknown_crop >= unknown_crop_threshold"),
        "crops": json.dumps(crops),
        "cam_layer": "features.18 (last 1x1 conv + ReLU6), 7x7 at 224 px",
        "preprocess": ("RGB; center square of side shorter*input_size/resize_shorter, area-averaged to "
                       "input_size x input_size; (v/255 - mean)/std; CHW"),
        "metrics": json.dumps({name: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)}
                               for name, r in src.items() if name.endswith("-test")}),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = key, value
    model.producer_name = "cropshield models/train/train.py"
    model.doc_string = meta["description"]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, onnx_path)
    size = os.path.getsize(onnx_path)
    with open(onnx_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    res["onnx"] = {"path": onnx_path, "bytes": size, "sha256": sha, "opset": OPSET, "ir_version": model.ir_version,
                   "metadata": meta, "ops": sorted({n.op_type for n in model.graph.node})}
    res["total_seconds"] = time.time() - t_all
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    log(f"wrote {onnx_path}: {size} bytes ({size / 2**20:.2f} MiB), sha256 {sha}, ops {res['onnx']['ops']}")
    for o in model.graph.output:
        log(f"  output {o.name}: {[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]}")
    assert size <= MAX_BYTES, f"{onnx_path} is {size} bytes, over {MAX_BYTES}"
    log(f"done in {(time.time() - t_all) / 60:.1f} min; figures in {os.path.join(out_dir, 'results.json')}")


if __name__ == "__main__":
    main()
