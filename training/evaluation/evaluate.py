"""`deconv-arena evaluate`: the same measurements for every generator, written beside it."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena import spectra
from arena.images import render_grid, to_unit
from arena.latents import balanced_labels, every_digit, latents_from_seed
from arena.layout import REPLICATES, RunLayout
from arena.records import (
    MANIFEST,
    SERVED,
    ManifestError,
    RecordError,
    generator_file,
    input_dim,
    read_manifest,
    read_metrics,
    verify_files,
    write_json_atomic,
    write_metrics,
)
from arena.records import classes as manifest_classes
from arena.replicates import INDEX, record_failure, runs, summary_row
from arena.stats import bootstrap_interval
from training.evaluation import measures
from training.evaluation.classifier import Evaluator, load_evaluator, load_evaluator_once
from training.loop import provenance

EVAL_SEED = 20230214  # the report's date: one fixed seed for every model
N_SAMPLES = 10_000


class EvaluationError(Exception):
    pass


def _decoder(model_dir: Path, manifest: dict[str, Any]):
    """(model, fn): fn maps a latent batch to a NumPy batch, compiled once per backend; a generator imported from
    ONNX runs on onnxruntime (model: its ModelProto)."""
    if generator_file(manifest) == SERVED:
        from training.interchange.onnx_import import decoder

        return decoder(model_dir / SERVED)
    import keras

    import training.families.layers  # noqa: F401  (registers the custom layers the generator may use)

    model = keras.saving.load_model(model_dir / generator_file(manifest), compile=False)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(
            lambda z: model(z, training=False),
            input_signature=[tf.TensorSpec([None, input_dim(manifest)], tf.float32)],
            autograph=False,
        )
        return model, lambda z: compiled(z).numpy()
    return model, lambda z: keras.ops.convert_to_numpy(model(z, training=False))


def _generate(fn, latents: np.ndarray, output: str, batch: int = 500) -> np.ndarray:
    return np.concatenate([to_unit(fn(latents[i : i + batch]), output) for i in range(0, len(latents), batch)])


def _time_per_image(fn, latent_dim: int, batch: int, repeats: int) -> float:
    z = latents_from_seed(1, batch, latent_dim)
    fn(z)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(z)
    return (time.perf_counter() - t0) / (repeats * batch) * 1000.0


def _weight_check(model) -> list[dict[str, Any]]:
    """The polyphase check of every stride-2 transposed convolution's kernel (Keras layers or ONNX nodes)."""
    if not hasattr(model, "layers"):
        from training.interchange.onnx_import import transposed_kernels

        return transposed_kernels(model)
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "Conv2DTranspose" and tuple(layer.strides) == (2, 2):
            out.append(
                {
                    "layer": layer.name,
                    "kernel_size": list(layer.kernel_size),
                    **measures.polyphase_sums(layer.kernel.numpy()),
                }
            )
    return out


def artefact_section(samples: np.ndarray, reference: dict[str, np.ndarray]) -> dict[str, Any]:
    """The artefact score blur cannot move (training/evaluation/measures.py `spectral_prominence`): period-2 and
    period-4 energy against what the samples' own neighbouring frequencies predict, scored as excess over real
    digits."""
    if "nyquist_prominence" not in reference:
        raise EvaluationError(
            "the evaluator's reference.npz predates the spectral prominence; run `deconv-arena train-evaluator`"
        )
    out: dict[str, Any] = {"crop_pixels": 2}
    for period, key in ((2, "nyquist"), (4, "period4")):
        mine, real = measures.spectral_prominence(samples, period), float(reference[f"{key}_prominence"])
        out[f"{key}_prominence"] = mine
        out[f"{key}_prominence_real"] = real
        out[f"{key}_excess"] = measures.artefact_excess(mine, real)
    return out


def periodic_section(samples: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """The artefact measure of what a person sees (arena/artefacts.py): the amplitude in grey levels of each 8-bit
    sample's period-2 component and its relative form, with the real test digits' own figures beside them."""
    from arena.artefacts import artefact_scores

    mine, own = artefact_scores(samples), artefact_scores(np.asarray(real, np.float64) / 255.0)
    return {
        "amplitude_grey_levels": mine["amplitude_grey_levels"],
        "relative": mine["relative"],
        "phase_locked_grey_levels": mine["phase_locked_grey_levels"],
        "samples": mine["images"],
        "real_amplitude_grey_levels": own["amplitude_grey_levels"],
        "real_relative": own["relative"],
        "real_phase_locked_grey_levels": own["phase_locked_grey_levels"],
        "real_samples": own["images"],
    }


@dataclass(frozen=True)
class Drawn:
    """What a measure computed from a model's samples alone may use: the samples, the evaluator's reference figures,
    the real test digits (uint8; None: not at hand), the store that holds the evaluators and whether the model is
    served (the spectral pictures are drawn for served models only)."""

    samples: np.ndarray
    reference: dict[str, Any]
    real: np.ndarray | None
    store: Path
    served: bool


# The measures computed from a model's samples alone, by their measures.json section: evaluation writes each, and
# `rescore_artefacts` adds those an older measures.json lacks (a computation may give None: not for this model). A new
# metric is an entry here (its computation) and its declaration in arena/stats.py METRICS (where its section holds it).
SECTIONS: dict[str, Callable[[Drawn], dict[str, Any] | None]] = {
    "artefact": lambda d: artefact_section(d.samples, d.reference),
    "periodic": lambda d: periodic_section(d.samples, d.real) if d.real is not None else None,
    "frechet_independent": lambda d: independent_frechet(d.store, d.samples),
    "spectrum": lambda d: spectrum_section(d.samples, d.reference) if d.served else None,
}


def sample_sections(drawn: Drawn, only: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """The sections of SECTIONS (or of `only`) that apply to this model, computed from its samples."""
    return {k: v for k in (SECTIONS if only is None else only) if (v := SECTIONS[k](drawn)) is not None}


def rescore_artefacts(model_dir: Path, store: Path, n: int = 2000, real: np.ndarray | None = None) -> list[str]:
    """Add to an evaluated model's measures.json the sections of SECTIONS it lacks, from the same samples evaluation
    drew (its seed, its count), leaving every other figure as it is; returns the sections added. `real`: the real
    test digits (uint8), which the period-2 section sets beside the samples; without them it is left out."""
    _, _, reference = load_evaluator_once(store)
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)
    result = read_metrics(model_dir)
    if result.get("generator_sha256") != manifest["files"][generator_file(manifest)]:
        raise EvaluationError(f"{model_dir.name}: measures.json is of another generator; evaluate it again")
    served = REPLICATES not in model_dir.parts  # the spectral pictures are drawn for served models only
    missing = [k for k in SECTIONS if k not in result and (served or k != "spectrum")]
    if not missing:
        return []
    n = int(result.get("samples", n))
    _, fn = _decoder(model_dir, manifest)
    latents = latents_from_seed(int(result.get("seed", EVAL_SEED)), n, manifest["latent_dim"])
    samples = _generate(fn, every_digit(latents, manifest_classes(manifest)), manifest["output"])
    result.update(sample_sections(Drawn(samples, reference, real, Path(store), served), missing))
    write_metrics(model_dir, result, keep_version=True)
    return [k for k in missing if k in result]


def independent_frechet(store: Path, samples: np.ndarray) -> dict[str, Any] | None:
    """The Fréchet distance in the independent classifier's features (None when the store has no such classifier)."""
    from training.evaluation.classifier import INDEPENDENT

    if not (Path(store) / INDEPENDENT / MANIFEST).is_file():
        return None
    ev, manifest, ref = load_evaluator_once(store, INDEPENDENT)
    fm = feature_measures()
    distance = measures.frechet_distance(*fm.gaussian_stats(ev.features(samples)), ref["test_mu"], ref["test_sigma"])
    return {"distance": distance, "evaluator_sha256": manifest["files"]["classifier.keras"], "samples": len(samples)}


def evaluate_model(
    name: str,
    store: Path,
    real_test: np.ndarray,
    real_features: np.ndarray,
    evaluator: Evaluator,
    ev_manifest: dict,
    reference: dict,
    n: int = N_SAMPLES,
    real_labels: np.ndarray | None = None,
    primary_store: Path | None = None,
) -> dict[str, Any]:
    """Every figure for one model; writes only inside `store/<name>/` (`primary_store`: where the evaluators live,
    when `store` is a replicate's). A conditional model (manifest `classes`) is
    asked for every digit in turn, and also gets the measures that use the label (needs `real_labels`)."""
    model_dir = Path(store) / name
    try:
        manifest = read_manifest(model_dir)
        verify_files(model_dir, manifest)
    except ManifestError as e:
        raise EvaluationError(f"{name}: {e}") from None
    model, fn = _decoder(model_dir, manifest)
    t0 = time.perf_counter()
    latents = latents_from_seed(EVAL_SEED, n, manifest["latent_dim"])
    classes = manifest_classes(manifest)
    samples = _generate(fn, every_digit(latents, classes), manifest["output"])
    feats, probs = evaluator.features_and_probs(samples)
    fm = feature_measures()
    result = {
        "model": name,
        "generator_sha256": manifest["files"][generator_file(manifest)],
        "samples": n,
        "seed": EVAL_SEED,
        "evaluator_sha256": ev_manifest["files"]["classifier.keras"],
        "evaluator_test_accuracy": ev_manifest["test_accuracy"],
        **_quality(feats, probs, real_features, reference, fm),
        "checkerboard": _checkerboard(samples, reference, model),
        # the spectral pictures are drawn for served models only (20 KB a run otherwise)
        **sample_sections(Drawn(samples, reference, real_test, Path(primary_store or store), primary_store is None)),
        "cost": _cost(model_dir, manifest, fn),
    }
    if classes:
        if real_labels is None:
            raise EvaluationError(f"{name} is conditional: its evaluation needs the real digits' labels")
        result["conditional"] = _conditional(samples, feats, probs, classes, real_test, real_features, real_labels)
    result["intervals"] = within_run_intervals(samples, feats, probs, real_features, reference, fm)
    result["evaluated_on"] = {
        **provenance.hardware(),
        "feature_measures": fm.device() if fm is not measures else "numpy, float64, CPU",
        "backend": provenance.versions().get("backend"),
        "at": provenance.now_iso(),
    }
    result["seconds"] = round(time.perf_counter() - t0, 2)
    _write_report(model_dir, result, samples, manifest, fn)
    return result


def _quality(feats: np.ndarray, probs: np.ndarray, real_features: np.ndarray, reference: dict, fm) -> dict[str, Any]:
    """The Fréchet distance, KID, PRDC (in the evaluator's features) and legibility (its class probabilities)."""
    n = len(feats)
    kid_mean, kid_std = fm.kid(real_features, feats, subsets=100, subset_size=min(1000, n))
    return {
        "frechet": {
            "distance": measures.frechet_distance(
                *fm.gaussian_stats(feats), reference["test_mu"], reference["test_sigma"]
            ),
            "noise_floor": float(reference["noise_floor_frechet"]),
        },
        "kid": {"mean": kid_mean, "std": kid_std, "subsets": 100, "subset_size": min(1000, n)},
        "prdc": {**fm.prdc(real_features, feats, k=5), "k": 5},
        "legibility": measures.legibility(probs),
    }


def _checkerboard(samples: np.ndarray, reference: dict, model) -> dict[str, Any]:
    real_cb, real_p4 = float(reference["checkerboard_index"]), float(reference["period4_index"])
    cb, p4 = measures.checkerboard_index(samples), measures.period4_index(samples)
    return {
        "nyquist_index": cb,
        "nyquist_index_real": real_cb,
        "nyquist_ratio": cb / real_cb,
        "period4_index": p4,
        "period4_index_real": real_p4,
        "period4_ratio": p4 / real_p4,
        "crop_pixels": 2,
        "transposed_kernels": _weight_check(model),
    }


def _cost(model_dir: Path, manifest: dict[str, Any], fn) -> dict[str, Any]:
    return {
        "params": manifest["params"]["total"],
        "bytes_on_disk": (model_dir / generator_file(manifest)).stat().st_size,
        "ms_per_image_batch1": _time_per_image(fn, input_dim(manifest), 1, 20),
        "ms_per_image_batch64": _time_per_image(fn, input_dim(manifest), 64, 5),
        "seconds_per_epoch": manifest.get("seconds_per_epoch_mean"),
        "epochs_done": manifest.get("epochs_done"),
        "test_elbo": (manifest.get("history") or [{}])[-1].get("test_elbo"),
    }


def spectrum_section(samples: np.ndarray, reference: dict[str, np.ndarray]) -> dict[str, Any]:
    """What the spectral pictures are drawn from (arena/spectra.py): the samples' mean 2-D power spectrum beside the
    real test digits', in log10 and centred (DC in the middle, null), and both azimuthal averages."""
    if "mean_spectrum" not in reference:
        raise EvaluationError(
            "the evaluator's reference.npz predates the 2-D spectrum; run `deconv-arena evaluate --artefacts-only "
            "--all --data mnist.npz`, which adds it"
        )
    mine, real = spectra.mean_spectrum(samples), np.asarray(reference["mean_spectrum"])
    radius, mine_ring = spectra.azimuthal_average(mine)
    _, real_ring = spectra.azimuthal_average(real)
    return {
        "samples": len(samples),
        "real_samples": int(reference["mean_spectrum_samples"]) if "mean_spectrum_samples" in reference else None,
        "crop_pixels": spectra.CROP,
        "size": int(mine.shape[0]),
        "log10_power": {
            "model": _json_floats(spectra.log_spectrum(mine)),
            "real": _json_floats(spectra.log_spectrum(real)),
        },
        "profile": {
            "cycles_per_pixel": _json_floats(radius),
            "model": _json_floats(np.log10(mine_ring)),
            "real": _json_floats(np.log10(real_ring)),
        },
    }


def _json_floats(a: np.ndarray, digits: int = 4) -> list:
    """Nested lists of floats rounded to `digits`, NaN as None (JSON null)."""
    rounded = np.round(np.asarray(a, np.float64), digits)
    return np.where(np.isfinite(rounded), rounded, None).tolist()


def _conditional(samples, feats, probs, classes: int, real_test, real_features, real_labels) -> dict[str, Any]:
    """A conditional model's measures that use the label: sample i asks for digit i mod `classes`."""
    asked = balanced_labels(len(samples), classes)
    acc = measures.conditional_accuracy(probs, asked)
    per_class = measures.per_class(samples, feats, asked, real_test, real_features, real_labels, classes)
    return {
        "accuracy": acc["accuracy"],
        "interval": acc["interval"],
        "samples": acc["samples"],
        "labels": f"sample i asks for digit i mod {classes}",
        "per_class": {**per_class, "accuracy": acc["per_class"]},
    }


RESAMPLES = 100


def feature_measures():
    """Where the Fréchet statistics, KID and PRDC are computed: training/evaluation/measures_jax.py on JAX's
    accelerator, or the NumPy reference (ARENA_EVAL_ON: auto, jax, numpy)."""
    from training.evaluation import measures_jax

    return measures_jax if measures_jax.wanted() else measures


def within_run_intervals(
    samples: np.ndarray,
    feats: np.ndarray,
    probs: np.ndarray,
    real_features: np.ndarray,
    reference: dict,
    fm=measures,
) -> dict[str, Any]:
    """95 % percentile-bootstrap intervals over this run's samples (real test set fixed): how far one run's
    figure could move with another draw of samples from the same generator — not across training seeds."""
    n, real_cb = len(samples), float(reference["checkerboard_index"])
    share = measures.line_energy_share(samples, 2, 2)
    top = probs.max(1)
    mu_r, sigma_r = reference["test_mu"], reference["test_sigma"]
    out = {
        "frechet": bootstrap_interval(
            lambda i: measures.frechet_distance(*fm.gaussian_stats(feats[i]), mu_r, sigma_r), n, RESAMPLES
        ),
        "kid": bootstrap_interval(
            lambda i: fm.kid(real_features, feats[i], subsets=10, subset_size=min(1000, n))[0], n, RESAMPLES // 2
        ),
        "legibility": bootstrap_interval(lambda i: float(top[i].mean()), n, RESAMPLES * 10),
        "checkerboard_ratio": bootstrap_interval(lambda i: float(share[i].mean()) / real_cb, n, RESAMPLES * 10),
    }
    return {
        "level": 0.95,
        "method": f"percentile bootstrap over the {n} samples",
        **{k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in out.items()},
    }


def _write_report(model_dir: Path, result: dict[str, Any], samples: np.ndarray, manifest: dict, fn) -> None:
    """Plots into report/ and measures.json, each replaced atomically; nothing outside this model's folder."""
    report = model_dir / "report"
    tmp = model_dir / ".report.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    render_grid(samples[:64], nrow=8, scale=2).save(tmp / "samples.png")
    if (model_dir / "reconstruction_latents.npy").is_file():
        digits = np.load(model_dir / "reconstruction_digits.npy").astype(np.float32) / 255.0
        recon = to_unit(fn(np.load(model_dir / "reconstruction_latents.npy")), manifest["output"])
        render_grid(np.concatenate([digits, recon]), nrow=len(digits), scale=2).save(tmp / "reconstructions.png")
    old = model_dir / ".report.old"
    shutil.rmtree(old, ignore_errors=True)
    if report.exists():
        report.rename(old)
    tmp.rename(report)
    shutil.rmtree(old, ignore_errors=True)
    write_metrics(model_dir, result)


def evaluate_all(names: list[str], store: Path, data, n: int = N_SAMPLES, log=print) -> dict[str, Any]:
    evaluator, ev_manifest, reference = load_evaluator(store)
    real = data.x_test[:n].astype(np.float32) / 255.0
    real_features = evaluator.features(real)
    results = {}
    t0 = time.perf_counter()
    for name in names:
        results[name] = evaluate_model(
            name, store, real, real_features, evaluator, ev_manifest, reference, n, data.y_test[:n]
        )
        r = results[name]
        log(
            f"{name}: FD {r['frechet']['distance']:.2f} (floor {r['frechet']['noise_floor']:.2f}), "
            f"legibility {r['legibility']['mean_top_probability']:.3f}, checkerboard "
            f"{r['checkerboard']['nyquist_ratio']:.2f}× real, {r['seconds']:.0f} s"
        )
    summary = _update_summary(store, results, ev_manifest)
    plot_comparison(store, summary)
    log(f"evaluated {len(names)} model(s) in {time.perf_counter() - t0:.0f} s")
    return results


def refresh_summary(store: Path, names: list[str]) -> None:
    """Merge the named models' measures.json into summary.json (one writer, after jobs that ran side by side or on
    other nodes each wrote their own model's metrics), then redraw the comparison figure."""

    from training.evaluation.classifier import NAME

    results = {}
    for name in names:
        try:
            results[name] = read_metrics(Path(store) / name)
        except RecordError:
            continue
    if results:
        ev_manifest = read_manifest(Path(store) / NAME)
        plot_comparison(store, _update_summary(store, results, ev_manifest))


def _update_summary(store: Path, results: dict[str, Any], ev_manifest: dict) -> dict[str, Any]:
    """Merge into models_store/summary.json so evaluating one model keeps the others' rows."""
    import json

    path = Path(store) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        summary = {"models": {}}
    for name, r in results.items():
        summary["models"][name] = summary_row(r)
    summary["noise_floor_frechet"] = ev_manifest.get("noise_floor_frechet")
    summary["evaluator_sha256"] = ev_manifest["files"]["classifier.keras"]
    write_json_atomic(path, summary)
    return summary


def plot_comparison(store: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import json

    import matplotlib.pyplot as plt

    from arena.variants import TRANSPOSED, VARIANTS

    names = [n for n in VARIANTS if n in summary["models"]] + sorted(n for n in summary["models"] if n not in VARIANTS)
    try:
        replicates = json.loads((Path(store) / "replicates.json").read_text()).get("models", {})
    except (OSError, ValueError):
        replicates = {}
    rows = [
        ("legibility", "legibility (mean top-class prob.)"),
        ("checkerboard_ratio", "checkerboard index (× real)"),
        ("frechet", "Fréchet distance (features)"),
        ("seconds_per_epoch", "seconds per epoch"),
    ]
    fig, axes = plt.subplots(1, len(rows), figsize=(15, 0.9 + 0.42 * len(names)), dpi=100)
    colors = [
        "tab:red" if VARIANTS.get(n) is not None and VARIANTS[n].operator.stage == TRANSPOSED else "tab:blue"
        for n in names
    ]
    shown_replicates = set()
    for ax, (key, label) in zip(axes, rows):
        shown_replicates |= _comparison_axis(ax, key, label, names, colors, summary, replicates)
    note = (
        "; black: mean and 95 % t-interval over replicate seeds ("
        + ", ".join(f"{n} n={k}" for n, k in sorted(shown_replicates))
        + ")"
        if shown_replicates
        else "; one training run each (no replicates yet)"
    )
    fig.suptitle(
        "deconv-arena: bars = served run (red = transposed convolution, blue = other upsampling)" + note, fontsize=9
    )
    fig.tight_layout()
    fig.savefig(Path(store) / "comparison.png")
    plt.close(fig)


def _comparison_axis(ax, key: str, label: str, names: list[str], colors, summary, replicates) -> set[tuple[str, int]]:
    """One metric's bars (served runs) and replicate intervals; returns the (model, n) whose intervals it drew."""
    shown = set()
    ax.barh(names, [summary["models"][n].get(key) or 0 for n in names], color=colors, alpha=0.75)
    for y, n in enumerate(names):
        profile = (replicates.get(n) or {}).get(summary["models"][n].get("profile") or "paper") or {}
        iv = (profile.get("metrics") or {}).get(key)
        if iv and iv.get("low") is not None:
            xerr = [[iv["mean"] - iv["low"]], [iv["high"] - iv["mean"]]]
            ax.errorbar([iv["mean"]], [y], xerr=xerr, fmt="o", color="black", ms=4, capsize=3)
            shown.add((n, iv["n"]))
    ax.set_xlabel(label)
    ax.invert_yaxis()
    if key == "checkerboard_ratio":
        ax.axvline(1.0, ls=":", color="black")
    return shown


def evaluate_replicates(
    store: Path, data, only: set[tuple[str, str, int]] | None = None, n: int | None = None, log=print
) -> list[int]:
    """Evaluate replicate runs with the primary store's evaluator and the same sample seed, then rewrite
    replicates.json; returns the seeds whose evaluation failed (recorded as failed)."""
    evaluator, ev_manifest, reference = load_evaluator(store)
    n = n or min(N_SAMPLES, len(data.x_test))
    real = data.x_test[:n].astype(np.float32) / 255.0
    real_features = evaluator.features(real)
    failed = []
    for name, profile, seed, run in runs(store):
        if (only is not None and (name, profile, seed) not in only) or not (run / name / MANIFEST).is_file():
            continue
        try:
            r = evaluate_model(
                name, run, real, real_features, evaluator, ev_manifest, reference, n, data.y_test[:n], store
            )
        except Exception as e:  # reported beside the other seeds, never dropped in silence
            record_failure(RunLayout(name, profile, seed, store).failure, "evaluation", e)
            log(f"{name} {run.name}: evaluation FAILED ({type(e).__name__}: {e})")
            failed.append(seed)
            continue
        RunLayout(name, profile, seed, store).failure.unlink(missing_ok=True)
        log(
            f"{name} {run.name}: FD {r['frechet']['distance']:.2f}, "
            f"legibility {r['legibility']['mean_top_probability']:.3f}, "
            f"checkerboard {r['checkerboard']['nyquist_ratio']:.2f}× real"
        )
    write_statistics(store)
    return failed


def write_statistics(store: Path) -> dict[str, Any]:
    """Rewrite replicates.json, then the summary figure (it draws the replicate intervals)."""
    from arena.study import with_studies

    result = with_studies(store)
    write_json_atomic(Path(store) / INDEX, result)
    try:
        summary = json.loads((Path(store) / "summary.json").read_text())
    except (OSError, ValueError):
        return result
    plot_comparison(store, summary)
    return result
