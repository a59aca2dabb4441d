#!/usr/bin/python3
"""How far can the field photos' calibration go with the field photos we have?

Run after train.py (it reuses .cache/train/top.pt and the cached evaluation features; nothing is trained or
exported):

    /usr/bin/python3 models/train/calibration_study.py

For field photos it compares calibrators of the form p = (1 - eps) * softmax(logits / T) + eps / K ("temperature
and a floor": field errors include confident ones that a temperature alone cannot reach), fitted three ways:
 1. on field-cal (47 photos) and measured on field-test (234), the honest held-out protocol, and how much that
    result moves when field-cal is resampled;
 2. cross-fitted over all 281 field photos the model never trained on (5 folds, each photo calibrated by
    parameters fitted on the other four folds), which is what twice as much calibration data would buy;
 3. the ECE a perfectly calibrated model with the same confidences would measure on each set (noise floor).
The numbers are what RESULTS.md and MODEL_CARD.md quote.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
from common import CACHE, CLASSES, WEIGHTS, load_int8_mobilenetv2, load_splits, log  # noqa: E402

K = len(CLASSES)
FOLDS = 5


def softmax(logits, t):
    z = logits / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def calibrated(logits, t, eps):
    return (1 - eps) * softmax(logits, t) + eps / K


def ece(p, y, bins=15):
    conf, right = p.max(1), p.argmax(1) == y
    b = np.minimum((conf * bins).astype(int), bins - 1)
    return sum(abs(conf[b == i].sum() - right[b == i].sum()) for i in range(bins)) / len(y)


def noise_floor(p, rng, draws=500):
    conf = p.max(1)
    b = np.minimum((conf * 15).astype(int), 14)
    out = 0.0
    for _ in range(draws):
        right = rng.random(len(conf)) < conf
        out += sum(abs(conf[b == i].sum() - right[b == i].sum()) for i in range(15)) / len(conf)
    return out / draws


def nll(p, y):
    return -np.log(p[np.arange(len(y)), y] + 1e-12).mean()


def brier(p, y):
    onehot = np.eye(K)[y]
    return ((p - onehot) ** 2).sum(1).mean()


TEMPS = np.exp(np.linspace(np.log(0.3), np.log(2.0), 80))
EPSS = np.linspace(0.0, 0.3, 61)


def fit(logits, y, loss, floor=True):
    best = None
    for t in TEMPS:
        for eps in (EPSS if floor else [0.0]):
            v = loss(calibrated(logits, t, eps), y)
            if best is None or v < best[0]:
                best = (v, t, eps)
    return best[1], best[2]


def main():
    torch.set_num_threads(2)
    splits = load_splits()
    net, _, _ = load_int8_mobilenetv2(WEIGHTS)
    net.eval()
    ev = T.eval_sets(net.features[:T.CUT].eval(), splits)
    top = T.Top(net.features[T.CUT:])
    top.load_state_dict(torch.load(os.path.join(CACHE, "top.pt"))["state"])
    lo = {name: T.predict(top, ev[name][0])[0].numpy() for name in ("field-cal", "field-test")}
    y = {name: ev[name][1].numpy() for name in lo}
    with open(os.path.join(CACHE, "results.json")) as f:
        temp = float(json.load(f)["temperature"])
    rng = np.random.default_rng(20251125)

    ft_lo, ft_y = lo["field-test"], y["field-test"]
    rows = [("shipped: T fitted on lab-val + field-cal", temp, 0.0, ece(softmax(ft_lo, temp), ft_y))]
    for name, loss, floor in (("T on field-cal (NLL)", nll, False), ("T, eps on field-cal (NLL)", nll, True),
                              ("T, eps on field-cal (Brier)", brier, True)):
        t, eps = fit(lo["field-cal"], y["field-cal"], loss, floor)
        rows.append((name, t, eps, ece(calibrated(ft_lo, t, eps), ft_y)))
    log("field-test (234 photos), calibrator fitted on field-cal (47 photos):")
    for name, t, eps, e in rows:
        log(f"  {name:42s} T {t:.2f} eps {eps:.3f} -> ECE {100 * e:.1f} %")
    log(f"  noise floor at the shipped T: {100 * noise_floor(softmax(ft_lo, temp), rng):.1f} %")
    boot = []
    for _ in range(30):
        i = rng.integers(0, len(y["field-cal"]), len(y["field-cal"]))
        t, eps = fit(lo["field-cal"][i], y["field-cal"][i], brier)
        boot.append(ece(calibrated(ft_lo, t, eps), ft_y))
    log(f"  T, eps by Brier on 30 resamples of field-cal: field-test ECE {100 * np.mean(boot):.1f} % "
        f"± {100 * np.std(boot):.1f}")

    all_lo = np.concatenate([lo["field-cal"], ft_lo])
    all_y = np.concatenate([y["field-cal"], ft_y])
    n = len(all_y)
    log(f"cross-fitted over all {n} untrained field photos ({FOLDS} folds, 3 shuffles):")
    for name, loss in (("NLL", nll), ("Brier", brier)):
        es = []
        for seed in range(3):
            folds = np.array_split(np.random.default_rng(seed).permutation(n), FOLDS)
            p = np.zeros((n, K))
            for f in folds:
                rest = np.setdiff1d(np.arange(n), f)
                t, eps = fit(all_lo[rest], all_y[rest], loss)
                p[f] = calibrated(all_lo[f], t, eps)
            es.append(ece(p, all_y))
        log(f"  T, eps by {name:5s}: out-of-fold ECE {100 * np.mean(es):.1f} % (± {100 * np.std(es):.1f}); "
            f"noise floor {100 * noise_floor(p, rng):.1f} %")


if __name__ == "__main__":
    main()
