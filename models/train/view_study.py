#!/usr/bin/python3
"""Which view of the photo should the model see? Run after train.py (it reuses .cache/train/top.pt; nothing is
trained or exported):

    /usr/bin/python3 models/train/view_study.py

For every held-out field source it compares, on the trained model:
  center  the center square of the whole shorter side (what the bot does: resize_shorter = input_size),
  full    the whole photo area-averaged to input_size x input_size (squashed: a 4:3 photo is narrowed by 1.33),
  both    the mean of the two views' logits (two runs of the model per photo),
  center288  the center square at 288 x 288 (the network is convolutional up to a global average pool, so the
          same weights run at a larger input; 1.65x the compute),
and prints top-1 and top-1 within the crop, ECE and confident-wrong at the shipped temperature. RESULTS.md quotes it.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
from common import CACHE, CLASSES, DATASETS, WEIGHTS, go_square, load_int8_mobilenetv2, load_splits, log, \
    open_rgb, to_tensor  # noqa: E402


def full_view(im, n):
    return np.asarray(im.resize((n, n), T.augment.Image.BOX if min(im.size) >= n else T.augment.Image.BILINEAR),
                      np.uint8)


def logits_of(net_top, trunk, paths, view):
    out = []
    with torch.no_grad():
        for i in range(0, len(paths), 64):
            ims = [open_rgb(os.path.join(DATASETS, p)) for p in paths[i:i + 64]]
            x = np.stack([view(im) for im in ims])
            lo, _ = net_top(trunk(to_tensor(x)))
            out.append(lo)
    return torch.cat(out)


SETS = ("tomato-test", "corn-test", "bean-test", "apple-field-test")


def main():
    torch.set_num_threads(2)
    splits = load_splits()
    res = json.load(open(os.path.join(CACHE, "results.json")))
    temp = res["temperature"]
    net, _, _ = load_int8_mobilenetv2(WEIGHTS)
    net.eval()
    trunk = net.features[:T.CUT].eval()
    top = T.Top(net.features[T.CUT:], len(CLASSES))
    top.load_state_dict(torch.load(os.path.join(CACHE, "top.pt"))["state"])
    top.eval()
    n = T.INPUT_SIZE
    views = {"center": lambda im: go_square(im, n, T.RESIZE_SHORTER), "full": lambda im: full_view(im, n),
             "center288": lambda im: go_square(im, 288, 288)}
    table = {}
    for split in SETS:
        y = torch.tensor([T.label_of(p) for p in splits[split]])
        lo = {v: logits_of(top, trunk, splits[split], f) for v, f in views.items()}
        lo["both"] = (lo["center"] + lo["full"]) / 2
        for v, logits in lo.items():
            m = T.crop_metrics(logits, y, CLASSES)
            p = torch.softmax(logits / temp, 1)
            conf, pred = p.max(1)
            cw = float(((conf >= T.ANSWER_THRESHOLD) & (pred != y)).float().mean())
            table[(split, v)] = (m["top1"], m["top1_crop"], T.ece(logits, y, temp), cw)
            log(f"{split:18s} {v:6s} top-1 {m['top1']:.3f} in-crop {m['top1_crop']:.3f} "
                f"ECE {T.ece(logits, y, temp):.3f} confident-wrong {cw:.3f}  (n={len(y)})")
    with open(os.path.join(CACHE, "view_study.json"), "w") as f:
        json.dump({f"{k[0]}/{k[1]}": v for k, v in table.items()}, f, indent=1)


if __name__ == "__main__":
    main()
