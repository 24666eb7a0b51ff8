"""Commands on the models in a store: import, export, evaluate."""

from __future__ import annotations

import argparse
from pathlib import Path

from arena.records import MANIFEST, METRICS_FILE
from arena.variants import FAMILIES
from deconv_arena.args import UserError, add_data, add_store, positive_int


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="check a generator of your own (.keras, or .onnx from any framework) and install it into the models "
        "store, with a manifest",
    )
    p.set_defaults(run=cmd_import)
    p.add_argument(
        "file",
        type=Path,
        help="a Keras 3 model file (.keras) or an ONNX graph (.onnx, e.g. from torch.onnx.export): one latent vector "
        "in (or a latent and a one-hot label of 10), one 28×28 image out (NHWC, NCHW, 28×28 or 784 values)",
    )
    p.add_argument("--name", required=True, help="its name in the store and the URLs (lower-case letters, digits, _)")
    p.add_argument("--family", required=True, choices=sorted(FAMILIES), help="compared and rated with this family")
    p.add_argument(
        "--output",
        required=True,
        choices=("tanh", "logits", "sigmoid"),
        help="what the last layer gives: tanh in [-1, 1], logits, or sigmoid in [0, 1]",
    )
    p.add_argument("--notes", default="", help="a line on what it is (shown on its pages)")
    add_store(p)


def cmd_import(args: argparse.Namespace) -> None:
    from training.interchange.keras_import import GeneratorRefused, import_generator

    if args.file.suffix == ".onnx":
        from training.interchange.onnx_import import import_onnx as import_generator
    try:
        path = import_generator(args.file, args.name, args.family, args.output, args.store, args.notes)
    except GeneratorRefused as e:
        raise UserError(str(e)) from None
    print(
        f"{args.name}: installed {path}; restart the server to serve it, "
        f"then `deconv-arena evaluate --variant {args.name}` for its metrics"
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export installed generators to ONNX, the file the service runs (needs TensorFlow: the train extra)",
        description="Exports every served model whose generator.onnx is missing or was exported from another "
        ".keras file (runs unpacked from a GPU machine, a store from before ONNX), checks each against its Keras "
        "model on fixed latents and records the check in its manifest. Training and import export by themselves.",
    )
    p.set_defaults(run=cmd_export)
    p.add_argument("names", nargs="*", help="models to export (default: every model folder that needs it)")
    p.add_argument("--force", action="store_true", help="export again even when the ONNX file is current")
    add_store(p)


def cmd_export(args: argparse.Namespace) -> None:
    from arena.records import ManifestError, read_manifest

    try:
        from training.interchange.onnx_export import ExportError, export_installed, is_current
    except ImportError as e:
        raise UserError(f"export needs TensorFlow and tf2onnx ({e}); pip install 'deconv-arena[train]'") from None
    folders = sorted(p.parent for p in args.store.glob(f"*/{MANIFEST}") if not p.parent.name.startswith((".", "_")))
    known = {p.name: p for p in folders}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise UserError(
            f"no model {', '.join(map(repr, unknown))} in {args.store}; it has {', '.join(known) or 'none'}"
        )
    chosen = [known[n] for n in args.names] if args.names else folders
    for folder in chosen:
        if read_manifest(folder).get("source_format") == "onnx":
            print(f"{folder.name}: imported from ONNX: its generator.onnx is the file itself, nothing to export")
            continue
        if is_current(folder) and not args.force:
            print(f"{folder.name}: generator.onnx is current")
            continue
        try:
            record = export_installed(folder)
        except (ExportError, ManifestError) as e:
            raise UserError(str(e)) from None
        print(
            f"{folder.name}: exported generator.onnx (max |ONNX − Keras| {record['check']['max_abs_diff']:.2g} on "
            f"{record['check']['rows']} latents; {record['shared_weight_bytes'] / 2**20:.1f} MiB of weights read "
            "from generator.keras)"
        )


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from arena.variants import VARIANTS

    p = sub.add_parser(
        "evaluate", help="measure every generator (Fréchet distance, KID, PRDC, legibility, checkerboard, cost)"
    )
    p.set_defaults(run=cmd_evaluate)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--variant", metavar="NAME", help=f"evaluate one model: {', '.join(VARIANTS)} or an imported one in the store"
    )
    which.add_argument("--all", action="store_true", help="evaluate every model in the store")
    which.add_argument(
        "--replicates",
        action="store_true",
        help="evaluate every replicate run in STORE/_replicates and rewrite STORE/replicates.json",
    )
    p.add_argument(
        "--samples", type=positive_int, default=10_000, help="samples per model, and real test images (default 10000)"
    )
    add_data(p)
    p.add_argument(
        "--artefacts-only",
        action="store_true",
        help="add only the metrics added since a run was evaluated (training/evaluation/evaluate.py SECTIONS: the "
        "artefact score, the period-2 amplitude, the spectral pictures' data, the Fréchet distance in the independent "
        "classifier's features when STORE has it, and any metric added since) to evaluated runs that "
        "still have their weights, from the samples their evaluation drew; every other figure stays (with --all or "
        "--replicates; --data when the evaluator's reference lacks the real digits' 2-D spectrum)",
    )
    add_store(p)


def _extend_reference(args: argparse.Namespace) -> None:
    """The real digits' figures a re-score compares against, added to the evaluator's reference when it lacks them."""
    import numpy as np

    from training.evaluation.classifier import NAME, REFERENCE, extend_reference
    from training.loop.data import DataError, load_mnist

    path = args.store / NAME / REFERENCE
    if not path.is_file():
        raise UserError(f"no evaluator in {args.store / NAME}; run `deconv-arena train-evaluator` first")
    with np.load(path) as f:
        if {"mean_spectrum", "mean_spectrum_samples"} <= set(f.files):
            return
    try:
        added = extend_reference(args.store, load_mnist(args.data))
    except DataError as e:
        raise UserError(
            f"the evaluator's reference lacks the real digits' 2-D spectrum, which needs MNIST: {e}"
        ) from None
    print(f"{NAME}/{REFERENCE}: added {', '.join(added)}")


def _real_test_digits(args: argparse.Namespace):
    """The real test digits the period-2 section sets beside each model's, when --data (or the default) is there."""
    from training.loop.data import DataError, load_mnist

    try:
        return load_mnist(args.data).x_test
    except DataError as e:
        print(f"no real digits ({e}): the period-2 section is left out")
        return None


def _rescore_artefacts(args: argparse.Namespace) -> None:
    from arena.records import generator_file, read_manifest
    from arena.replicates import REPLICATES
    from training.evaluation.evaluate import EvaluationError, rescore_artefacts, write_statistics

    _extend_reference(args)
    pattern = f"{REPLICATES}/*/*/{METRICS_FILE}" if args.replicates else f"*/{METRICS_FILE}"
    folders = sorted(p.parent for p in args.store.glob(pattern) if not p.parent.name.startswith((".", "_")))
    if args.variant:
        folders = [f for f in folders if f.name == args.variant]
    kept = [f for f in folders if (f / generator_file(read_manifest(f))).is_file()]
    real = _real_test_digits(args)
    for folder in kept:
        try:
            added = rescore_artefacts(folder, args.store, real=real)
        except EvaluationError as e:
            raise UserError(str(e)) from None
        print(f"{folder.relative_to(args.store)}: {'added ' + ', '.join(added) if added else 'nothing to add'}")
    print(f"{len(kept)} of {len(folders)} evaluated runs re-scored; the others have no weights (old metric only)")
    if args.replicates:
        write_statistics(args.store)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from arena.variants import VARIANTS
    from training.evaluation.classifier import EvaluatorError
    from training.evaluation.evaluate import EvaluationError, evaluate_all
    from training.loop.data import DataError, load_mnist

    if args.artefacts_only:
        return _rescore_artefacts(args)
    if args.replicates:
        from training.evaluation.evaluate import evaluate_replicates

        try:
            failed = evaluate_replicates(args.store, load_mnist(args.data), n=args.samples)
        except (DataError, EvaluationError, EvaluatorError) as e:
            raise UserError(str(e)) from None
        if failed:
            raise UserError(
                f"{len(failed)} replicate evaluation(s) failed; they are listed as failed in replicates.json"
            )
        return
    if args.all:
        imported = sorted(
            p.parent.name
            for p in args.store.glob(f"*/{MANIFEST}")
            if not p.parent.name.startswith((".", "_")) and p.parent.name not in VARIANTS
        )
        names = [n for n in VARIANTS if (args.store / n / MANIFEST).is_file()] + imported
        if not names:
            raise UserError(f"no trained models in {args.store}; run `deconv-arena train --all` first")
    else:
        names = [args.variant]
        if not (args.store / args.variant / MANIFEST).is_file():
            how = (
                f"train it first (`deconv-arena train --variant {args.variant}`)"
                if args.variant in VARIANTS
                else f"the variants are {', '.join(VARIANTS)}; import your own with `deconv-arena import`"
            )
            raise UserError(f"{args.variant!r} is not in {args.store}; {how}")
    try:
        evaluate_all(names, args.store, load_mnist(args.data), n=args.samples)
    except (DataError, EvaluationError, EvaluatorError) as e:
        raise UserError(str(e)) from None


def add(sub: argparse._SubParsersAction) -> None:
    for adder in (_add_import, _add_export, _add_evaluate):
        adder(sub)
