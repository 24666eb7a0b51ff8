"""The serving file: every generator exported to ONNX where TensorFlow is (at the end of a run on this CPU, at
`deconv-arena import`, and by `deconv-arena export` for runs trained elsewhere), checked against the Keras model on
fixed latents, and written atomically beside it. The service runs it on onnxruntime and never imports TensorFlow.

The ONNX file keeps the graph and the weights the converter changed (batch normalisation folded into a convolution,
for instance); every weight it uses unchanged it reads from the generator's own `.keras` file — stored uncompressed
in its zip, a raw float32 run at a known offset — through ONNX's external-data references. So a shipped model's
weights have one home (the `.keras` file users download and import), and the store does not carry them twice. The
ONNX file records the `.keras` file's SHA-256, so its own hash (the served version) changes whenever what it reads
does.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from arena.latents import latents_from_seed
from arena.records import GENERATOR, SERVED, sha256_file, write_bytes_atomic

OPSET = 17
CHECK_SEED, CHECK_ROWS = 0xC0FFEE, 64
# Max abs difference allowed between onnxruntime's and Keras' raw outputs (tanh in [-1, 1], or logits) on the check
# latents: float32 summation-order differences (the converter folds batch normalisation into the weights) are
# ~1e-6 here; 1e-4 is < 1/40 of a grey level of 255, far below what a PNG can show.
TOLERANCE = 1e-4
SHARE_MIN_BYTES = 4096  # smaller weights stay inline: an external reference would cost more than it saves
WEIGHTS = "model.weights.h5"


class ExportError(Exception):
    """The generator cannot be exported, or its export disagrees with it (the message says by how much)."""


def export_onnx(model_dir: Path) -> dict[str, Any]:
    """Write `model_dir/generator.onnx` from `model_dir/generator.keras`; return the manifest's `onnx` record.

    Raises ExportError when onnxruntime's outputs differ from Keras' by more than TOLERANCE on the check latents.
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    import training.families.layers  # noqa: F401  (registers the custom layers a generator may use)

    model_dir = Path(model_dir)
    keras_file = model_dir / GENERATOR
    model = keras.saving.load_model(keras_file, compile=False)
    width = int(model.input_shape[-1])
    signature = (tf.TensorSpec((None, width), tf.float32, name="z"),)
    fn = tf.function(lambda z: model(z, training=False), autograph=False)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=signature, opset=OPSET)
    keras_sha = sha256_file(keras_file)
    as_conv = stride_one_as_conv(proto)
    shared = _share_weights(proto, keras_file)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "generator_keras_sha256", keras_sha
    write_bytes_atomic(model_dir / SERVED, proto.SerializeToString())

    z = latents_from_seed(CHECK_SEED, CHECK_ROWS, width)
    reference = np.asarray(model(z, training=False))
    ours = run_onnx(model_dir / SERVED, z)
    diff = float(np.max(np.abs(ours - reference)))
    if not np.isfinite(diff) or diff > TOLERANCE:
        (model_dir / SERVED).unlink(missing_ok=True)
        raise ExportError(
            f"{model_dir.name}: onnxruntime's outputs differ from Keras' by {diff:.3g} on {CHECK_ROWS} fixed latents "
            f"(tolerance {TOLERANCE:g}); not exported"
        )
    import onnxruntime

    return {
        "file": SERVED,
        "opset": OPSET,
        "exporter": f"tf2onnx {tf2onnx.__version__}, tensorflow {tf.__version__}",
        "runtime_checked": f"onnxruntime {onnxruntime.__version__}",
        "check": {"seed": CHECK_SEED, "rows": CHECK_ROWS, "max_abs_diff": diff, "tolerance": TOLERANCE},
        "stride_one_transposed_as_conv": as_conv,
        "weights_read_from": GENERATOR if shared else None,
        "shared_weight_bytes": shared,
        "generator_keras_sha256": keras_sha,
    }


def stride_one_as_conv(proto) -> int:
    """Rewrite each stride-1 ConvTranspose as the Conv it equals (its kernel's in/out channels swapped and flipped in
    both spatial axes, padding k − 1 − p); return how many. The same sums in another order: onnxruntime's CPU
    ConvTranspose runs a GEMM and a col2im scatter per image, its Conv the blocked direct kernels, 1.28× the rows a
    second for gan_transpose on one core here (2026-12-06: 915 against 717 at batch 16; docs/benchmarks.md). The
    export's check against Keras (TOLERANCE) holds for the result as for any conversion; a stride-2 layer, whose
    checkerboard is the study's subject, is left as the transposed convolution it is.
    """
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in proto.graph.initializer}
    replaced, rewritten = set(), 0
    for node in proto.graph.node:
        if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (
            all(v == 1 for v in attrs.get("strides", ()))
            and all(v == 1 for v in attrs.get("dilations", ()))
            and attrs.get("group", 1) == 1
            and not any(attrs.get("output_padding", ()))
            and "output_shape" not in attrs
            and attrs.get("auto_pad", b"NOTSET") == b"NOTSET"
        )
        if not plain:
            continue
        kernel = numpy_helper.to_array(weights[node.input[1]])
        k = list(kernel.shape[2:])
        conv_pads = [k[i % len(k)] - 1 - p for i, p in enumerate(attrs.get("pads", [0] * 2 * len(k)))]
        if min(conv_pads) < 0:
            continue
        name = f"{node.input[1]}/as_conv"
        if node.input[1] not in replaced:  # a kernel two nodes share is flipped once
            flipped = np.flip(kernel.swapaxes(0, 1), axis=tuple(range(2, kernel.ndim)))
            proto.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(flipped), name))
            replaced.add(node.input[1])
        node.op_type, node.input[1] = "Conv", name
        del node.attribute[:]
        node.attribute.extend(
            helper.make_attribute(key, value)
            for key, value in (("kernel_shape", k), ("pads", conv_pads), ("strides", [1] * len(k)))
        )
        rewritten += 1
    used = {name for node in proto.graph.node for name in node.input}
    gone = replaced - used  # a transposed kernel no other node reads
    kept = [t for t in proto.graph.initializer if t.name not in gone]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    return rewritten


def run_onnx(path: Path, z: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(z, np.float32)})[0]


def _share_weights(proto, keras_file: Path) -> int:
    """Point every large initializer equal to a weight stored in the `.keras` file at those bytes; return how many
    bytes now live only there."""
    from onnx import TensorProto, numpy_helper
    from onnx.external_data_helper import set_external_data

    runs = _weight_runs(keras_file)
    shared = 0
    with open(keras_file, "rb") as f:
        for tensor in proto.graph.initializer:
            if tensor.data_type != TensorProto.FLOAT:
                continue
            raw = np.ascontiguousarray(numpy_helper.to_array(tensor), "<f4").tobytes()
            place = runs.get(hashlib.sha256(raw).digest()) if len(raw) >= SHARE_MIN_BYTES else None
            if place is None:
                continue
            f.seek(place)
            if f.read(len(raw)) != raw:  # the offset arithmetic is checked, not trusted
                raise ExportError(f"{keras_file}: the weight at byte {place} is not what the converter holds")
            set_external_data(tensor, location=GENERATOR, offset=place, length=len(raw))
            tensor.data_location = TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
            shared += len(raw)
    return shared


def _weight_runs(keras_file: Path) -> dict[bytes, int]:
    """SHA-256 of each contiguous, uncompressed float32 weight in the `.keras` zip -> its byte offset in the file."""
    import h5py

    with zipfile.ZipFile(keras_file) as z:
        info = z.getinfo(WEIGHTS)
        if info.compress_type != zipfile.ZIP_STORED:
            return {}
        inner = z.read(WEIGHTS)
    with open(keras_file, "rb") as f:  # the member's data start: after its local header (30 bytes + name + extra)
        f.seek(info.header_offset)
        header = f.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    runs: dict[bytes, int] = {}

    def visit(_name, obj):
        if isinstance(obj, h5py.Dataset) and obj.chunks is None and obj.compression is None and obj.dtype == "<f4":
            offset = obj.id.get_offset()
            if offset is not None and obj.nbytes >= SHARE_MIN_BYTES:
                data = inner[offset : offset + obj.nbytes]
                runs.setdefault(hashlib.sha256(data).digest(), start + offset)
        return None

    with h5py.File(io.BytesIO(inner), "r") as h5:
        h5.visititems(visit)
    return runs


def export_installed(model_dir: Path) -> dict[str, Any]:
    """Export an installed model in place (a store's existing models, runs unpacked from a GPU machine): the ONNX
    file first, then the manifest that lists it, each written atomically; return the `onnx` record."""
    from arena.records import read_manifest, update_manifest, verify_files

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    verify_files(model_dir, {**manifest, "files": {GENERATOR: manifest["files"][GENERATOR]}})
    record = export_onnx(model_dir)
    files = {**manifest["files"], SERVED: sha256_file(model_dir / SERVED)}
    update_manifest(model_dir, {"onnx": record, "files": files})
    return record


def is_current(model_dir: Path) -> bool:
    """The model's ONNX file exists, is the one its manifest lists, and was exported from its present `.keras`."""
    from arena.records import ManifestError, read_manifest

    try:
        manifest = read_manifest(model_dir)
    except ManifestError:
        return False
    onnx_sha, record = manifest["files"].get(SERVED), manifest.get("onnx") or {}
    return (
        onnx_sha is not None
        and (Path(model_dir) / SERVED).is_file()
        and sha256_file(Path(model_dir) / SERVED) == onnx_sha
        and record.get("generator_keras_sha256") == manifest["files"].get(GENERATOR)
    )
