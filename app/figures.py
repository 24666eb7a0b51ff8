"""The key figures shown under each grid: where each comes from and what it means, in one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    label: str
    source: str  # "metrics" or "manifest"
    path: str
    fmt: str
    help: str


FIGURES = (
    Figure("Legibility", "metrics", "legibility.mean_top_probability", "{:.3f}", "Mean top-class probability our MNIST classifier gives the samples (1 = every sample clearly a digit)."),
    Figure("Checkerboard index", "metrics", "checkerboard.nyquist_ratio", "{:.2f}× real", "Share of non-DC spectral energy on the Nyquist lines, relative to real MNIST (1× = like real digits; above 1 = checkerboard)."),
    Figure("Fréchet distance", "metrics", "frechet.distance", "{:.2f}", "Fréchet distance between classifier features of 10,000 samples and the MNIST test set (lower is closer; real-vs-real noise floor in the metrics)."),
    Figure("Parameters", "manifest", "params.total", "{:,}", "Parameters of the generator or decoder, as the report counted them."),
    Figure("Seconds / epoch", "manifest", "seconds_per_epoch_mean", "{:.1f} s", "Mean wall time of the training loop per epoch on the machine that trained it (see the model page)."),
    Figure("Epochs trained", "manifest", "epochs_done", "{}", "Epochs this model was trained for; the report's protocol is 50 for the GANs and 10 for the VAEs."),
)


def dig(data: dict[str, Any] | None, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def figures_for(manifest: dict[str, Any], metrics: dict[str, Any] | None) -> list[dict[str, str]]:
    out = []
    for f in FIGURES:
        value = dig(metrics if f.source == "metrics" else manifest, f.path)
        if value is None:
            continue
        text = f.fmt.format(value)
        if f.path == "epochs_done" and manifest.get("paper_epochs"):
            text += f" of {manifest['paper_epochs']}"
        out.append({"label": f.label, "value": text, "help": f.help})
    return out


def legend() -> list[dict[str, str]]:
    return [{"label": f.label, "help": f.help} for f in FIGURES]
