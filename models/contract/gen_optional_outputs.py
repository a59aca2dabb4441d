#!/usr/bin/python3
"""Build the tiny ONNX models that test the contract's optional outputs (not_leaf, unknown_crop).

Run from the repository root with Debian's Python (apt-get install python3-onnx python3-numpy):

    /usr/bin/python3 models/contract/gen_optional_outputs.py

No training, no PyTorch, no ONNX Runtime: every graph is written by hand with onnx.helper and its
weights are fixed numbers, so the outputs are known in closed form and the Go tests compute what
to expect themselves. Each file is a few KB. It writes models/contract/testdata/optional/*.onnx.

Every model (opset 13) has input image float32 [N,3,224,224] and the classes CLASSES:

    pooled = AveragePool(image, 32x32, stride 32)              [N,3,7,7]
    cam    = Conv1x1(pooled, W)                                 [N,K,7,7]   (no bias)
    logits = Gemm(Flatten(GlobalAveragePool(pooled)), W^T) + B [N,K]       so mean(cam[n,k]) + B[k] = logits[n,k]

and the optional scores, each a sigmoid of a mean of one input channel (the input is already
normalized, so this is the channel's normalized mean):

    unknown_crop = Sigmoid(2 * mean(image[:,0]))   red channel   [N]
    not_leaf     = Sigmoid(2 * mean(image[:,2]))   blue channel  [N]

Variants (metadata thresholds UNKNOWN_CROP_THRESHOLD and NOT_LEAF_THRESHOLD):

    unknown-crop.onnx          unknown_crop + unknown_crop_threshold                (valid)
    both.onnx                  not_leaf + not_leaf_threshold and unknown_crop + threshold (valid)
    not-leaf.onnx              not_leaf + not_leaf_threshold                        (valid)
    no-threshold.onnx          unknown_crop output, no unknown_crop_threshold       (broken)
    threshold-only.onnx        unknown_crop_threshold, no unknown_crop output       (broken)
    rank2.onnx                 unknown_crop declared and computed as [N,1]          (broken)
    runtime-shape.onnx         unknown_crop declared [N] but computed as [2N]       (broken at the first run)
"""

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "testdata", "optional")

OPSET = 13
IR_VERSION = 7
SIDE = 224
POOL = 32
# A few classes of the real class list (datasets/LABELS.csv); two of them share a crop, so the
# crops a bot lists are de-duplicated: Tomato, Potato, Corn (maize).
CLASSES = ["tomato__late_blight", "tomato__early_blight", "potato__early_blight", "corn__common_rust"]
UNKNOWN_CROP_THRESHOLD = "0.7"
NOT_LEAF_THRESHOLD = "0.6"
SCALE = 2.0  # the scores' slope: Sigmoid(SCALE * channel mean)
MAX_BYTES = 50 * 1024

# Head weights W [K,3] and bias B [K]: fixed, distinct, so that the top class depends on the photo.
W = np.array([[1.0, -0.5, 0.25], [-0.75, 1.0, -0.25], [0.5, 0.5, -1.0], [-0.25, -0.75, 1.0]], dtype=np.float32)
B = np.array([0.1, -0.1, 0.05, 0.0], dtype=np.float32)


def score_nodes(name, channel, out_shape):
    """Nodes and initializers computing Sigmoid(SCALE * mean(image[:, channel])) reshaped to out_shape."""
    w = np.zeros((1, 3, 1, 1), dtype=np.float32)
    w[0, channel, 0, 0] = SCALE
    inits = [numpy_helper.from_array(w, f"{name}_w"),
             numpy_helper.from_array(np.array(out_shape, dtype=np.int64), f"{name}_shape")]
    nodes = [
        helper.make_node("Conv", ["pooled", f"{name}_w"], [f"{name}_c"], kernel_shape=[1, 1]),  # [N,1,7,7]
        helper.make_node("GlobalAveragePool", [f"{name}_c"], [f"{name}_m"]),                   # [N,1,1,1]
        helper.make_node("Sigmoid", [f"{name}_m"], [f"{name}_s"]),
        helper.make_node("Reshape", [f"{name}_s", f"{name}_shape"], [name]),
    ]
    return nodes, inits


def build(variant, unknown_crop=None, not_leaf=False, meta_extra=None):
    """unknown_crop: None (no output), "ok" ([N]), "rank2" ([N,1]) or "double" (declared [N], computed [2N])."""
    k = len(CLASSES)
    inits = [
        numpy_helper.from_array(W[:, :, None, None], "cam_w"),
        numpy_helper.from_array(W, "head_w"),
        numpy_helper.from_array(B, "head_b"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]),
        helper.make_node("Conv", ["pooled", "cam_w"], ["cam"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["pooled"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["feat"], axis=1),
        helper.make_node("Gemm", ["feat", "head_w", "head_b"], ["logits"], transB=1),
    ]
    cells = SIDE // POOL
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k]),
        helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", k, cells, cells]),
    ]
    if not_leaf:
        n, i = score_nodes("not_leaf", 2, [-1])
        nodes, inits = nodes + n, inits + i
        outputs.append(helper.make_tensor_value_info("not_leaf", TensorProto.FLOAT, ["N"]))
    if unknown_crop == "ok":
        n, i = score_nodes("unknown_crop", 0, [-1])
        outputs.append(helper.make_tensor_value_info("unknown_crop", TensorProto.FLOAT, ["N"]))
    elif unknown_crop == "rank2":
        n, i = score_nodes("unknown_crop", 0, [-1, 1])
        outputs.append(helper.make_tensor_value_info("unknown_crop", TensorProto.FLOAT, ["N", 1]))
    elif unknown_crop == "double":
        n, i = score_nodes("unknown_crop_one", 0, [-1])
        n.append(helper.make_node("Concat", ["unknown_crop_one", "unknown_crop_one"], ["unknown_crop"], axis=0))
        outputs.append(helper.make_tensor_value_info("unknown_crop", TensorProto.FLOAT, ["N"]))
    else:
        n, i = [], []
    nodes, inits = nodes + n, inits + i

    graph = helper.make_graph(nodes, f"cropshield-optional-{variant}",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cropshield gen_optional_outputs.py")
    model.ir_version = IR_VERSION
    meta = {
        "classes": json.dumps(CLASSES),
        "mean": json.dumps([0.485, 0.456, 0.406]),
        "std": json.dumps([0.229, 0.224, 0.225]),
        "input_size": str(SIDE),
        "resize_shorter": "256",
        "model_version": f"optional-{variant}-v1",
        "description": (f"CropShield test fixture ({variant}): a hand-written graph that exercises the model "
                        "contract's optional outputs; not for real diagnoses."),
    }
    meta.update(meta_extra or {})
    for key, value in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = key, value
    model.doc_string = meta["description"]
    onnx.checker.check_model(model, full_check=True)
    return model


def reference_scores(model, x):
    """The scores as the graph computes them, in NumPy: a check of the closed form in the docstring."""
    out = {}
    for o in model.graph.output:
        if o.name == "unknown_crop":
            out[o.name] = 1 / (1 + np.exp(-SCALE * x[:, 0].mean(axis=(1, 2))))
        if o.name == "not_leaf":
            out[o.name] = 1 / (1 + np.exp(-SCALE * x[:, 2].mean(axis=(1, 2))))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    uc = {"unknown_crop_threshold": UNKNOWN_CROP_THRESHOLD}
    nl = {"not_leaf_threshold": NOT_LEAF_THRESHOLD}
    variants = {
        "unknown-crop": dict(unknown_crop="ok", meta_extra=uc),
        "both": dict(unknown_crop="ok", not_leaf=True, meta_extra={**uc, **nl}),
        "not-leaf": dict(not_leaf=True, meta_extra=nl),
        "no-threshold": dict(unknown_crop="ok"),
        "threshold-only": dict(meta_extra=uc),
        "rank2": dict(unknown_crop="rank2", meta_extra=uc),
        "runtime-shape": dict(unknown_crop="double", meta_extra=uc),
    }
    for name, kw in variants.items():
        model = build(name, **kw)
        path = os.path.join(OUT, name + ".onnx")
        onnx.save(model, path)
        size = os.path.getsize(path)
        assert size <= MAX_BYTES, f"{path} is {size} bytes"
        outs = [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
        print(f"wrote {os.path.relpath(path, HERE)}: {size} bytes, outputs {outs}")
    # The closed form on two inputs, for the record.
    x = np.zeros((2, 3, SIDE, SIDE), dtype=np.float32)
    x[0, 0], x[1, 0] = 0.3, 0.6
    print("unknown_crop for red channel means 0.3 and 0.6:", reference_scores(build("unknown-crop", "ok"), x))


if __name__ == "__main__":
    main()
