"""Generators made in a second framework: ONNX graphs built node by node with the `onnx` helper API (no Keras), laid
out as PyTorch exports them (NCHW output), with switches that plant the defects the import must catch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 10


def checkerboard(size: int = 28) -> np.ndarray:
    """(−1)^(i+j) on a size×size grid: all its energy at the Nyquist corner (N/2, N/2)."""
    i, j = np.indices((size, size))
    return np.where((i + j) % 2 == 0, 1.0, -1.0).astype(np.float32)


def generator(
    path: Path,
    latent_dim: int = 16,
    seed: int = 0,
    conditional: bool = False,
    label_first: bool = False,
    layout: str = "NCHW",
    output: str = "tanh",
    planted: float = 0.0,
    noise: bool = False,
    batch_dependent: bool = False,
    fixed_batch: int | None = None,
    label_width: int = CLASSES,
    latent_type: int = TensorProto.FLOAT,
    extra_input: bool = False,
    opset: int = 17,
) -> Path:
    """A DCGAN-style generator: Gemm to 8×7×7, two stride-2 ConvTranspose (k 5, pads 2, output_padding 1) to
    1×28×28, then tanh (or sigmoid, or nothing: logits). `planted` adds that much (−1)^(i+j) before the last
    activation; `noise` adds RandomNormalLike (random at inference); `batch_dependent` subtracts the batch mean (as
    batch normalisation in training mode does); `layout` "wrong" gives (batch, 1, 14, 56)."""
    rng = np.random.default_rng(seed)
    batch = fixed_batch if fixed_batch else "batch"
    inputs = [helper.make_tensor_value_info("z_in", latent_type, [batch, latent_dim])]
    width = latent_dim
    nodes, weights = [helper.make_node("Cast", ["z_in"], ["z"], to=TensorProto.FLOAT)], {}
    if extra_input:
        inputs.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, [batch, 1]))

    def weight(name, shape, scale):
        weights[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
        return name

    first = "z"
    if conditional:
        label = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, label_width])
        inputs = [label, *inputs] if label_first else [*inputs, label]
        nodes.append(helper.make_node("Concat", ["z", "y"], ["zy"], axis=1))
        first, width = "zy", latent_dim + label_width
    nodes += [
        helper.make_node("Gemm", [first, weight("fc_w", (width, 8 * 49), 0.3), weight("fc_b", (8 * 49,), 0.1)], ["h"]),
        helper.make_node("Relu", ["h"], ["h_relu"]),
    ]
    weights["shape_8x7x7"] = np.array([-1, 8, 7, 7], np.int64)
    nodes.append(helper.make_node("Reshape", ["h_relu", "shape_8x7x7"], ["h_map"]))
    up = dict(strides=[2, 2], pads=[2, 2, 2, 2], output_padding=[1, 1])
    nodes += [
        helper.make_node("ConvTranspose", ["h_map", weight("up1_w", (8, 8, 5, 5), 0.2)], ["u1"], name="up1", **up),
        helper.make_node("Relu", ["u1"], ["u1_relu"]),
        helper.make_node("ConvTranspose", ["u1_relu", weight("up2_w", (8, 1, 5, 5), 0.2)], ["u2"], name="up2", **up),
    ]
    last = "u2"
    if planted:
        weights["planted"] = (planted * checkerboard()).reshape(1, 1, 28, 28)
        nodes.append(helper.make_node("Add", [last, "planted"], ["u2_planted"]))
        last = "u2_planted"
    if noise:
        nodes += [
            helper.make_node("RandomNormalLike", [last], ["eps"], scale=0.05),
            helper.make_node("Add", [last, "eps"], ["u2_noisy"]),
        ]
        last = "u2_noisy"
    if batch_dependent:
        nodes += [
            helper.make_node("ReduceMean", [last], ["batch_mean"], axes=[0], keepdims=1),
            helper.make_node("Sub", [last, "batch_mean"], ["u2_centred"]),
        ]
        last = "u2_centred"
    activation = {"tanh": "Tanh", "sigmoid": "Sigmoid", "logits": "Identity"}[output]
    nodes.append(helper.make_node(activation, [last], ["image_nchw"]))
    out_shape = {
        "NCHW": [batch, 1, 28, 28],
        "NHWC": [batch, 28, 28, 1],
        "flat": [batch, 784],
        "wrong": [batch, 1, 14, 56],
    }[layout]
    if layout != "NCHW":
        weights["out_shape"] = np.array([-1, *out_shape[1:]], np.int64)
        nodes.append(helper.make_node("Reshape", ["image_nchw", "out_shape"], ["image"]))
    else:
        nodes[-1].output[0] = "image"
    graph = helper.make_graph(
        nodes,
        "tiny_generator",
        inputs,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, producer_name="onnx-helper", opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
