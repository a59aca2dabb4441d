#!/usr/bin/env python3
"""Lay out the held-out splits of models/train/splits.json as folders `cropshield eval` reads.

    python3 models/train/make_eval_dirs.py            # writes .cache/eval/<source>/ for every held-out source
    bin/cropshield eval --model models/cropshield-v2.onnx .cache/eval/*

One folder per source, each with one sub-folder per class id holding symbolic links to the images in
../shared/datasets (nothing is copied): lab-test, tomato-field-test, maize-field-test, bean-field-test,
apple-field-test (field-more: never trained or calibrated on), chilli-test/unknown_crop/ (held-out leaves of
chilli, a crop the model does not know but saw in training as "another crop"), nonleaf-test/not_a_leaf/ (links
to what models/train/gather_nonleaf.sh gathered into .cache/nonleaf/not_a_leaf/), and
beans-unknown/unknown_crop/: every bean photo, for the model trained without beans
(train.py --hold-out-crop bean), to which beans are a crop it never saw. Standard library only.
"""
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATASETS = os.path.join(os.path.dirname(ROOT), "shared", "datasets")
NONLEAF = os.path.join(ROOT, ".cache", "nonleaf", "not_a_leaf")
OUT = os.path.join(ROOT, ".cache", "eval")


def link_all(name, items):
    """items: (class folder, absolute source path) pairs."""
    dest = os.path.join(OUT, name)
    shutil.rmtree(dest, ignore_errors=True)
    missing = 0
    for folder, src in items:
        if not os.path.exists(src):
            missing += 1
            continue
        d = os.path.join(dest, folder)
        os.makedirs(d, exist_ok=True)
        os.symlink(src, os.path.join(d, os.path.basename(src)))
    print(f"{dest}: {len(items) - missing} images" + (f" ({missing} missing)" if missing else ""))
    return missing


def main():
    with open(os.path.join(ROOT, "models", "train", "splits.json")) as f:
        splits = json.load(f)
    if not os.path.isdir(DATASETS):
        sys.exit(f"{DATASETS} is absent: the evaluation needs ../shared/datasets beside the repository")
    missing = 0
    for split, name in (("lab-test", "lab-test"), ("tomato-test", "tomato-field-test"),
                        ("corn-test", "maize-field-test"), ("bean-test", "bean-field-test"),
                        ("apple-field-test", "apple-field-test")):
        items = [(p.split("/")[-2], os.path.join(DATASETS, p)) for p in splits[split]]
        missing += link_all(name, items)
    missing += link_all("chilli-test", [("unknown_crop", os.path.join(DATASETS, p)) for p in splits["chilli-test"]])
    beans = [p for k in ("bean-train", "bean-cal", "bean-test", "excluded") for p in splits[k] if p.startswith("beans")]
    missing += link_all("beans-unknown", [("unknown_crop", os.path.join(DATASETS, p)) for p in beans])
    if not os.path.isdir(NONLEAF):
        print(f"{NONLEAF} is absent: run models/train/gather_nonleaf.sh first for nonleaf-test", file=sys.stderr)
    else:
        missing += link_all("nonleaf-test", [("not_a_leaf", os.path.join(NONLEAF, n)) for n in splits["nonleaf-test"]])
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
