"""Figures read out of a model's files: a value by its dotted path in a manifest or metrics.json, a training curve
from a manifest's history, and where a log-scale chart of such values stops. The pages' charts (app/views/) and the
curves figure (training/evaluation/curves_figure.py) draw them."""

from __future__ import annotations

from typing import Any


def dig(data: dict[str, Any] | None, path: str) -> Any:
    """The value at a dotted path ('frechet.distance'), or None where any step is missing."""
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def training_curves(manifest: dict[str, Any] | None, key: str) -> list[tuple[int, float]]:
    """(epoch, value) of one training-curve key from a manifest's history; epochs without it are skipped."""
    return [(int(h["epoch"]), float(h[key])) for h in (manifest or {}).get("history") or [] if h.get(key) is not None]


def log_floor(values, default: float = 1e-6) -> float:
    """Where a log-scale chart stops: a third of the smallest positive value drawn. A replicate band whose t-interval
    reaches zero or below (few seeds, noisy epochs) is cut there rather than stretching the axis without end."""
    positive = [y for y in values if y > 0]
    return min(positive) / 3 if positive else default


# The per-epoch record's columns in words (a manifest's history keys; the training loops write them).
HISTORY_WORDS = {
    "seconds": "seconds",
    "gen_loss": "generator loss",
    "disc_loss": "discriminator loss",
    "loss": "training loss (−ELBO per image)",
    "test_elbo": "test ELBO per image",
    "curve_frechet": "Fréchet distance (2,000 samples)",
    "curve_checkerboard_ratio": "checkerboard index (× real, 2,000 samples)",
    "curve_seconds": "seconds to measure the curves",
}
LOSSES = ("gen_loss", "disc_loss", "loss", "test_elbo")  # drawn as the loss chart of a model page
