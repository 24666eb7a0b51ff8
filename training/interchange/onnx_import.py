"""`deconv-arena import FILE.onnx`: a generator from any framework (PyTorch's `torch.onnx.export`, JAX, Keras, …),
checked and installed as the file the service runs.

What it must be: one float32 latent input (batch, d) with a free batch axis — or a latent and a one-hot label
(batch, 10), told apart by width — and one output of one 28×28 image per row, laid out (batch, 28, 28, 1),
(batch, 1, 28, 28) (PyTorch's NCHW), (batch, 28, 28) or (batch, 784). It is normalised into the service's form —
one input row per example (latent ⊕ label) and a (batch, 28, 28, 1) output — by graph edits (Slice on the way in,
Reshape on the way out; the weights untouched), and the normalised graph is held to the original's outputs bit for
bit. Then, on onnxruntime: finite outputs for standard-normal latents, inside the range `--output` promises, the same
bits from the same call twice (nothing random at inference), and each row's image independent of the batch it is in
(batch normalisation left in training mode is the usual cause). Each failed check is one line naming what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena.latents import CLASSES, class_grid, latents_from_seed
from arena.records import SERVED, install_dir, sha256_file, staging_dir, write_manifest
from training.interchange.keras_import import CONDITIONAL, PROGRESS_SEED, GeneratorRefused, check_name

IMAGE_LAYOUTS = {(28, 28, 1): "NHWC", (1, 28, 28): "NCHW", (28, 28): "HW", (784,): "flat"}
RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "logits": (-np.inf, np.inf)}
RANGE_SLACK = 1e-3  # float rounding at the edges of tanh and sigmoid
BATCH_TOLERANCE = 1e-4  # a row's largest change between batch sizes (output units) before it counts as batch-dependent
PROBE_BATCHES = (1, 7, 64)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def load(file: Path):
    """The file's ModelProto, checked by onnx's own checker."""
    import onnx

    if not file.is_file():
        raise GeneratorRefused(f"{file}: no such file")
    try:
        model = onnx.load(str(file))
        onnx.checker.check_model(model)
    except Exception as e:  # a damaged or foreign file raises anything
        raise GeneratorRefused(f"{file} is not a valid ONNX model ({_one_line(e)})") from None
    return model


def _dims(value) -> list[int | str | None]:
    """A graph value's shape: an int per fixed axis, the symbol (or None) for a free one."""
    t = value.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def graph_inputs(model) -> list:
    """The inputs a caller feeds (an initializer listed as an input is a weight, not one of them)."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def _check_inputs(file: Path, inputs: list) -> tuple[int, int | None]:
    """(latent width d, index of the one-hot label input or None), or GeneratorRefused naming the inputs."""
    import onnx

    shapes = {i.name: _dims(i) for i in inputs}
    described = ", ".join(f"{n} {s}" for n, s in shapes.items())
    for i in inputs:
        if i.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            kind = onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
            raise GeneratorRefused(f"{file}: input {i.name!r} is {kind}; the generator must take float32 inputs")
        dims = shapes[i.name]
        if len(dims) != 2 or not isinstance(dims[1], int) or dims[1] <= 0:
            raise GeneratorRefused(
                f"{file}: input {i.name!r} has shape {dims}; expected (batch, d): one latent vector per example"
            )
        if isinstance(dims[0], int) and dims[0] > 0:
            raise GeneratorRefused(
                f"{file}: input {i.name!r} has a fixed batch size {dims[0]}; export it with a free batch axis "
                f"(torch.onnx.export(..., dynamic_axes={{{i.name!r}: {{0: 'batch'}}}}), or dynamic_shapes with "
                "dynamo=True)"
            )
    if len(inputs) == 1:
        return shapes[inputs[0].name][1], None
    if len(inputs) != 2:
        raise GeneratorRefused(
            f"{file}: the generator must take one latent (batch, d), or {CONDITIONAL}; it takes {len(inputs)} inputs: "
            f"{described}"
        )
    labels = [k for k, i in enumerate(inputs) if shapes[i.name][1] == CLASSES]
    if len(labels) != 1:
        raise GeneratorRefused(
            f"{file}: a two-input generator must take {CONDITIONAL}, told apart by width; it takes {described} "
            f"({'both' if labels else 'neither'} {CLASSES} wide)"
        )
    return shapes[inputs[1 - labels[0]].name][1], labels[0]


def _as_one_row(model, d: int, label_index: int):
    """The two-input graph fed by one row, latent ⊕ one-hot label: two Slice nodes write the original input names."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inputs = graph_inputs(model)
    latent, label = inputs[1 - label_index], inputs[label_index]
    row = helper.make_tensor_value_info("latent_and_label", onnx.TensorProto.FLOAT, ["batch", d + CLASSES])
    constants = {
        "_import_axis": [1],
        "_import_0": [0],
        "_import_d": [d],
        "_import_end": [d + CLASSES],
    }
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), k) for k, v in constants.items())
    slices = [
        helper.make_node("Slice", ["latent_and_label", "_import_0", "_import_d", "_import_axis"], [latent.name]),
        helper.make_node("Slice", ["latent_and_label", "_import_d", "_import_end", "_import_axis"], [label.name]),
    ]
    for name in (latent.name, label.name):
        graph.input.remove(next(i for i in graph.input if i.name == name))
    graph.input.insert(0, row)
    nodes = slices + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _as_nhwc(model, layout: str):
    """The output reshaped to (batch, 28, 28, 1) — for NCHW with one channel the same bytes as a transpose."""
    import onnx
    from onnx import helper, numpy_helper

    if layout == "NHWC":
        return model
    graph = model.graph
    (out,) = graph.output
    inner = f"{out.name}_{layout.lower()}"
    for node in graph.node:
        node.output[:] = [inner if o == out.name else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array([-1, 28, 28, 1], np.int64), "_import_nhwc"))
    graph.node.append(helper.make_node("Reshape", [inner, "_import_nhwc"], [out.name]))
    graph.output.remove(out)
    graph.output.append(helper.make_tensor_value_info(out.name, onnx.TensorProto.FLOAT, ["batch", 28, 28, 1]))
    return model


def session(source: bytes | str | Path) -> Callable[[list[np.ndarray]], np.ndarray]:
    """An onnxruntime call of the graph (one thread, as deterministic as the CPU allows) on its inputs, in order."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    s = onnxruntime.InferenceSession(
        source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in s.get_inputs()]
    return lambda arrays: s.run(None, dict(zip(names, arrays)))[0]


def _original_call(run, d: int, label_index: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """The original graph called with rows of latent ⊕ label (split back into its inputs, in its order)."""
    if label_index is None:
        return lambda rows: run([rows])
    return lambda rows: run([rows[:, d:], rows[:, :d]] if label_index == 0 else [rows[:, :d], rows[:, d:]])


def probe_rows(d: int, classes: int, n: int) -> np.ndarray:
    """n latents of a fixed seed, under every label when conditional (n × classes rows)."""
    latents = latents_from_seed(0, n, d)
    return class_grid(latents, classes)[0] if classes else latents


def _run_checked(file: Path, call, rows: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.asarray(call(rows))
    except Exception as e:  # onnxruntime raises its own kinds
        raise GeneratorRefused(f"{file}: onnxruntime could not run it on {what} ({_one_line(e)})") from None


def _layout(file: Path, out: np.ndarray, rows: int) -> str:
    layout = IMAGE_LAYOUTS.get(tuple(out.shape[1:])) if out.ndim >= 2 and out.shape[0] == rows else None
    if layout is None:
        accepted = ", ".join(str(("batch", *s)) for s in IMAGE_LAYOUTS)
        raise GeneratorRefused(
            f"{file}: {rows} input rows gave output shape {tuple(out.shape)}; expected one 28×28 image per row: "
            f"{accepted}"
        )
    return layout


def _check_values(file: Path, out: np.ndarray, output: str) -> None:
    if not np.all(np.isfinite(out)):
        raise GeneratorRefused(
            f"{file}: the output has non-finite values (NaN or infinity) for standard-normal latents"
        )
    lo, hi = RANGES[output]
    if out.min() < lo - RANGE_SLACK or out.max() > hi + RANGE_SLACK:
        fits = [k for k, (a, b) in RANGES.items() if out.min() >= a - RANGE_SLACK and out.max() <= b + RANGE_SLACK]
        raise GeneratorRefused(
            f"{file}: --output {output} promises values in [{lo:g}, {hi:g}], but standard-normal latents gave "
            f"[{out.min():.4g}, {out.max():.4g}]; pass the --output its last layer gives ({' or '.join(fits)})"
        )


def _check_deterministic(file: Path, call, d: int, classes: int) -> dict[str, Any]:
    """The same call twice gives the same bits; a row's image hardly moves between batches of PROBE_BATCHES."""
    rows = probe_rows(d, classes, max(PROBE_BATCHES))[: max(PROBE_BATCHES)]
    whole = _run_checked(file, call, rows, f"a batch of {len(rows)}")
    if not np.array_equal(whole, _run_checked(file, call, rows, f"a batch of {len(rows)}")):
        raise GeneratorRefused(
            f"{file}: the same {len(rows)} rows gave other images on a second call: its output is random at "
            "inference (dropout or a noise layer in training mode? export after model.eval())"
        )
    worst = 0.0
    for n in PROBE_BATCHES[:-1]:
        for start in range(0, len(rows) - n + 1, max(n, 16)):
            part = _run_checked(file, call, rows[start : start + n], f"a batch of {n}")
            worst = max(worst, float(np.abs(part - whole[start : start + n]).max()))
    if worst > BATCH_TOLERANCE:
        raise GeneratorRefused(
            f"{file}: a row's image depends on the batch it is in (up to {worst:.3g} apart between batches of "
            f"{', '.join(map(str, PROBE_BATCHES))}; tolerance {BATCH_TOLERANCE:g}): batch normalisation in training "
            "mode? export after model.eval()"
        )
    return {"batches": list(PROBE_BATCHES), "max_abs_diff_between_batches": worst, "repeat_identical": True}


def check(file: Path, output: str) -> tuple[bytes, dict[str, Any]]:
    """The normalised graph's bytes and what the checks found, if the file passes every check."""
    file = Path(file)
    model = load(file)
    d, label_index = _check_inputs(file, graph_inputs(model))
    classes = 0 if label_index is None else CLASSES
    original = _original_call(session(model.SerializeToString()), d, label_index)
    rows = probe_rows(d, classes, 2)
    asked = f"{len(rows)} input rows (2 latents × {CLASSES} labels)" if classes else "two latent vectors"
    raw = _run_checked(file, original, rows, asked)
    layout = _layout(file, raw, len(rows))
    _check_values(file, raw, output)
    determinism = _check_deterministic(file, original, d, classes)
    normalised = _as_nhwc(_as_one_row(model, d, label_index) if classes else model, layout)
    data = normalised.SerializeToString()
    served = session(data)
    call = lambda r: served([r])  # noqa: E731
    check_rows = probe_rows(d, classes, 8)
    if not np.array_equal(_run_checked(file, call, check_rows, asked), original(check_rows).reshape(-1, 28, 28, 1)):
        raise GeneratorRefused(f"{file}: normalised for serving, the graph gives other outputs than the original's")
    record = {
        "latent_dim": d,
        "classes": classes,
        "inputs": {i.name: _dims(i) for i in graph_inputs(load(file))},
        "output_layout": layout,
        "normalised": [
            *(["one input row, latent ⊕ one-hot label, sliced back into the original inputs"] if classes else []),
            *([f"output {layout} reshaped to (batch, 28, 28, 1)"] if layout != "NHWC" else []),
        ],
        "output_range": [float(raw.min()), float(raw.max())],
        "determinism": determinism,
        "producer": f"{model.producer_name} {model.producer_version}".strip() or None,
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
    }
    return data, record


def weight_sizes(model) -> dict[str, int]:
    """The element count of each floating-point initializer: the weights (integer ones are shapes and indices)."""
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    return {t.name: int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in floats}


def node_table(model) -> list[dict[str, Any]]:
    """Each node's op, key attributes, output shape (ONNX shape inference) and weight count: the layer table."""
    import onnx
    from onnx import helper

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a graph shape inference cannot follow still has its nodes
        inferred = model
    shapes = {v.name: _dims(v) for v in [*inferred.graph.value_info, *inferred.graph.output]}
    sizes = weight_sizes(model)
    keep = ("kernel_shape", "strides", "pads", "mode", "alpha", "perm", "axis", "group", "dilations")
    rows = []
    for i, node in enumerate(model.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name in keep}
        rows.append(
            {
                "name": node.name or f"{node.op_type}_{i}",
                "class": node.op_type,
                "config": {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()},
                "output_shape": shapes.get(node.output[0]) if node.output else None,
                "params": sum(sizes.get(x, 0) for x in node.input),
            }
        )
    return rows


def transposed_kernels(model) -> list[dict[str, Any]]:
    """The polyphase check of each stride-2 ConvTranspose (training/evaluation/measures.py `polyphase_sums`), its ONNX
    weight (in, out, kh, kw) laid out as Keras' (kh, kw, out, in)."""
    from onnx import helper, numpy_helper

    from training.evaluation.measures import polyphase_sums

    weights = {t.name: t for t in model.graph.initializer}
    out = []
    for i, node in enumerate(model.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "ConvTranspose" or list(attrs.get("strides", [1, 1])) != [2, 2]:
            continue
        if len(node.input) < 2 or node.input[1] not in weights:
            continue
        kernel = numpy_helper.to_array(weights[node.input[1]]).transpose(2, 3, 1, 0)
        out.append(
            {
                "layer": node.name or f"ConvTranspose_{i}",
                "kernel_size": list(kernel.shape[:2]),
                **polyphase_sums(kernel),
            }
        )
    return out


def decoder(path: Path):
    """(the ModelProto, fn): fn maps a batch of input rows to (batch, 28, 28, 1), for evaluation."""
    import onnx

    run = session(path)
    return onnx.load(str(path)), lambda rows: run([np.asarray(rows, np.float32)])


def import_onnx(file: Path, name: str, family: str, output: str, store: Path, notes: str = "") -> Path:
    """Check `file` and install it as `store/<name>/` (atomically), with a manifest of where it came from."""
    import onnx
    import onnxruntime

    from training.loop import provenance

    check_name(name, store)
    file = Path(file)
    data, record = check(file, output)
    d, classes = record.pop("latent_dim"), record.pop("classes")
    model = onnx.load_from_string(data)
    staging = staging_dir(store, name)
    try:
        (staging / SERVED).write_bytes(data)
        np.save(staging / "fixed_latents.npy", latents_from_seed(PROGRESS_SEED, 16, d))
        params = sum(weight_sizes(model).values())
        manifest: dict[str, Any] = {
            "name": name,
            "family": family,
            "upsampling": "imported",
            "architecture": f"imported {'conditional ' if classes else ''}ONNX generator"
            + (f": {notes}" if notes else ""),
            "output": output,
            "latent_dim": d,
            "classes": classes,
            "input_dim": d + classes,
            "provenance": "imported",
            "source_format": "onnx",
            "source_file": file.name,
            "source_sha256": sha256_file(file),
            "source_producer": record["producer"],
            "notes": notes,
            "layers": node_table(model),
            # every floating-point value stored in the graph (an exporter may keep batch-norm statistics or fold them
            # into a convolution), so not always the trainable parameters the source framework counts
            "params": {"total": params, "counted": "floating-point initializers of the graph"},
            "epochs_done": None,
            "history": [],
            "versions": {**provenance.versions(), "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
            "created_at": provenance.now_iso(),
            "onnx": {"imported": record},
        }
        manifest["files"] = {p: sha256_file(staging / p) for p in (SERVED, "fixed_latents.npy")}
        write_manifest(staging, manifest)
        if (Path(store) / name).exists():  # taken while we checked
            raise GeneratorRefused(
                f"--name {name!r} is taken ({Path(store) / name} appeared meanwhile); choose another name"
            )
        install_dir(staging, Path(store) / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Path(store) / name
