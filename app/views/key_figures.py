"""The key figures shown under each grid: where each comes from and what it means, in one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arena.readouts import dig


@dataclass(frozen=True)
class Figure:
    label: str
    source: str  # "metrics" or "manifest"
    path: str
    fmt: str
    help: str


FIGURES = (
    Figure(
        "Legibility",
        "metrics",
        "legibility.mean_top_probability",
        "{:.3f}",
        "Mean top-class probability our MNIST classifier gives the samples (1 = every sample clearly a digit).",
    ),
    Figure(
        "Checkerboard index",
        "metrics",
        "checkerboard.nyquist_ratio",
        "{:.2f}× real",
        "Share of non-DC spectral energy on the Nyquist lines, relative to real MNIST "
        "(1× = like real digits; above 1: a checkerboard; below 1: smoother than "
        "real, e.g. blur). Closer to 1× is better: comparisons score it as |ln ratio|.",
    ),
    Figure(
        "Fréchet distance",
        "metrics",
        "frechet.distance",
        "{:.2f}",
        "Fréchet distance between classifier features of 10,000 samples and the "
        "MNIST test set (lower is closer; real-vs-real noise floor in the metrics).",
    ),
    Figure(
        "Conditional accuracy",
        "metrics",
        "conditional.accuracy",
        "{:.1%}",
        "Conditional models: share of samples our MNIST classifier reads as the digit they were asked for "
        "(every digit asked for equally often), with its 95 % Wilson interval over the samples.",
    ),
    Figure(
        "Parameters",
        "manifest",
        "params.total",
        "{:,}",
        "Parameters of the generator or decoder, as the report counted them.",
    ),
    Figure(
        "Seconds / epoch",
        "manifest",
        "seconds_per_epoch_mean",
        "{:.1f} s",
        "Mean wall time of the training loop per epoch on the machine that trained it (see the model page).",
    ),
    Figure(
        "Epochs trained",
        "manifest",
        "epochs_done",
        "{}",
        "Epochs this model was trained for; the report's protocol is 50 for the GANs and 10 for the VAEs.",
    ),
)


def figures_for(manifest: dict[str, Any], metrics: dict[str, Any] | None) -> list[dict[str, str]]:
    out = []
    for f in FIGURES:
        value = dig(metrics if f.source == "metrics" else manifest, f.path)
        if value is None:
            continue
        text = f.fmt.format(value)
        interval = dig(metrics, "conditional.interval") if f.path == "conditional.accuracy" else None
        if interval:
            text += f" [{interval[0]:.1%}, {interval[1]:.1%}]"
        if f.path == "epochs_done" and manifest.get("paper_epochs"):
            text += f" of {manifest['paper_epochs']}"
        if f.path == "seconds_per_epoch_mean":  # a time is a fact about a machine: say which
            text += f" ({machine(manifest)})"
        out.append({"label": f.label, "value": text, "help": f.help, "raw": value})
    return out


def rests_on(manifest: dict[str, Any], metrics: dict[str, Any] | None) -> str | None:
    """What a card's figures rest on: one training run (its seed) and its evaluation's sample count."""
    seed, samples = dig(manifest, "seeds.init_and_order"), dig(metrics, "samples")
    if samples is None:
        return None
    run = f"one training run (seed {seed})" if seed is not None else "one training run"
    return f"{run}; its metrics on {samples:,} samples"


def machine(manifest: dict[str, Any]) -> str:
    """The machine a run trained on, in a few words: its GPU if it had one, else its CPU's name."""
    hardware = manifest.get("hardware") or {}
    gpus = hardware.get("gpus") or []
    if gpus:
        return str(gpus[0]).removeprefix("gpu:")
    return f"CPU: {hardware.get('cpu') or 'unknown'}"


def legend() -> list[dict[str, str]]:
    return [{"label": f.label, "help": f.help} for f in FIGURES]
