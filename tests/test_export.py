"""The ONNX export the service runs: checked against the Keras model, refused when it disagrees, current only while
it was made from the .keras file beside it, and reading its unchanged weights from that file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from arena.latents import latents_from_seed
from arena.records import SERVED, read_manifest, sha256_file


def test_the_export_matches_keras_and_reads_its_weights_from_the_keras_file(tiny_store):
    import keras

    import training.families.layers  # noqa: F401
    from training.interchange.onnx_export import TOLERANCE, run_onnx

    for name in ("gan_transpose", "vae_upsample"):
        folder = tiny_store / name
        manifest = read_manifest(folder)
        z = latents_from_seed(99, 16, manifest["latent_dim"])
        keras_out = np.asarray(keras.saving.load_model(folder / "generator.keras", compile=False)(z, training=False))
        assert np.abs(run_onnx(folder / SERVED, z) - keras_out).max() <= TOLERANCE
        record = manifest["onnx"]
        assert record["check"]["max_abs_diff"] <= TOLERANCE and record["generator_keras_sha256"] == sha256_file(
            folder / "generator.keras"
        )
    # the large dense kernel lives once, in the .keras file: the ONNX file is smaller than the weights it uses
    gan = read_manifest(tiny_store / "gan_transpose")["onnx"]
    assert gan["shared_weight_bytes"] > 0 and gan["weights_read_from"] == "generator.keras"


def test_an_export_that_disagrees_with_keras_is_refused_and_leaves_nothing(tiny_store, tmp_path, monkeypatch):
    from training.interchange import onnx_export

    folder = tmp_path / "vae_upsample"
    shutil.copytree(tiny_store / "vae_upsample", folder)
    (folder / SERVED).unlink()
    real = onnx_export.run_onnx
    monkeypatch.setattr(onnx_export, "run_onnx", lambda path, z: real(path, z) + 10 * onnx_export.TOLERANCE)
    with pytest.raises(onnx_export.ExportError, match="differ from Keras"):
        onnx_export.export_onnx(folder)
    assert not (folder / SERVED).exists()


def test_an_export_is_current_only_while_made_from_the_keras_file_beside_it(tiny_store, tmp_path):
    from training.interchange.onnx_export import export_installed, is_current

    folder = tmp_path / "vae_upsample"
    shutil.copytree(tiny_store / "vae_upsample", folder)
    assert is_current(folder)
    (folder / SERVED).write_bytes(b"not the export")
    assert not is_current(folder)
    record = export_installed(folder)
    assert is_current(folder) and read_manifest(folder)["files"][SERVED] == sha256_file(folder / SERVED)
    assert record["check"]["rows"] == 64


def _conv_transpose_graph(nodes_spec, channels=(3, 4), size=7):
    """A graph of ConvTranspose nodes (each: strides, kernel, pads, output_padding) side by side on one input, each
    with its own random kernel and bias, every node's output a graph output."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    c_in, c_out = channels
    nodes, inits, outs = [], [], []
    for i, (strides, k, pads, output_padding) in enumerate(nodes_spec):
        w = rng.standard_normal((c_in, c_out, k, k)).astype(np.float32)
        b = rng.standard_normal(c_out).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        attrs = {"strides": [strides] * 2, "kernel_shape": [k, k], "pads": pads}
        if output_padding:
            attrs["output_padding"] = [output_padding] * 2
        nodes.append(helper.make_node("ConvTranspose", ["x", f"w{i}", f"b{i}"], [f"y{i}"], **attrs))
        outs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["batch", c_out, f"h{i}", f"w{i}"]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", c_in, size, size])
    graph = helper.make_graph(nodes, "g", [x], outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(proto, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_a_stride_one_transposed_convolution_is_exported_as_the_convolution_it_equals():
    import onnx

    from training.interchange.onnx_export import stride_one_as_conv

    spec = [
        (1, 5, [2, 2, 2, 2], 0),  # the DCGAN's first layer: same size
        (1, 3, [1, 0, 2, 1], 0),  # asymmetric pads: each side's own k − 1 − p
        (1, 3, [0, 0, 0, 0], 0),  # no padding: the output grows by k − 1
        (2, 5, [2, 2, 2, 2], 1),  # stride 2: the study's transposed convolution, left alone
    ]
    original = _conv_transpose_graph(spec)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(original)
    assert stride_one_as_conv(rewritten) == 3
    onnx.checker.check_model(rewritten)
    assert [n.op_type for n in rewritten.graph.node] == ["Conv", "Conv", "Conv", "ConvTranspose"]
    # the transposed kernels are gone (only the stride-2 one and the flipped copies remain)
    assert {t.name for t in rewritten.graph.initializer} == {"w0/as_conv", "w1/as_conv", "w2/as_conv", "w3"} | {
        f"b{i}" for i in range(4)
    }
    x = np.random.default_rng(6).standard_normal((5, 3, 7, 7)).astype(np.float32)
    for want, got in zip(_run(original, x), _run(rewritten, x)):
        assert want.shape == got.shape
        assert np.abs(want - got).max() <= 1e-4 * max(1.0, np.abs(want).max())
    # a node that is not a plain stride-1 one is not touched: output padding, or padding over k − 1
    for odd in ([(1, 3, [0, 0, 0, 0], 1)], [(1, 3, [3, 3, 3, 3], 0)]):
        proto = _conv_transpose_graph(odd, size=9)
        assert stride_one_as_conv(proto) == 0 and proto.graph.node[0].op_type == "ConvTranspose"


def test_the_shipped_transposed_generators_serve_their_stride_one_layers_as_convolutions(tiny_store):
    import onnx

    shipped = Path(__file__).resolve().parents[1] / "models_store"
    for folder in [tiny_store / "gan_transpose", shipped / "gan_transpose"]:
        graph = onnx.load(str(folder / SERVED), load_external_data=False).graph
        strides = [
            list(onnx.helper.get_attribute_value(a))
            for n in graph.node
            if n.op_type == "ConvTranspose"
            for a in n.attribute
            if a.name == "strides"
        ]
        assert strides and all(max(s) > 1 for s in strides), strides  # the upsampling layers are still transposed
        assert read_manifest(folder)["onnx"]["stride_one_transposed_as_conv"] == 1
