"""The About page's tables (the ablation table's columns, the conditional models' rows); `deconv-arena tables`
writes the same into docs/evaluation.md."""

from __future__ import annotations

from pathlib import Path

from arena.records import read_manifest, read_metrics
from arena.replicates import trained_on
from arena.stats import wilson_interval
from arena.variants import VARIANTS

COLUMNS = (
    ("variant", "variant"),
    ("reference", "compared with"),
    ("frechet", "Fréchet ↓"),
    ("kid", "KID ↓"),
    ("legibility", "legibility ↑"),
    ("recall", "recall ↑"),
    ("checkerboard_ratio", "checkerboard trained (× real)"),
    ("checkerboard_init", "checkerboard at init (× real)"),
    ("cv_trained", "polyphase CV trained"),
    ("cv_init", "polyphase CV at init"),
    ("params", "params"),
    ("seconds_per_epoch", "s/epoch"),
    ("trained_on", "trained on"),
    ("epochs", "epochs"),
)

SHOWN_DIGIT = 7  # the digit the README quotes on its own (the issue's `label=7`)


def _share(p: float, n: int) -> str:
    lo, hi = wilson_interval(round(p * n), n)
    return f"{p:.1%} [{lo:.1%}, {hi:.1%}]"


COND_COLUMNS = (
    "model",
    "trained",
    "read as the digit asked for",
    f"digit {SHOWN_DIGIT}",
    "weakest digit",
    "checkerboard per digit (× real, min – max)",
    "diversity within the digit (× real, min – max)",
)


def conditional_rows(store: Path) -> list[list[str]]:
    """Each served conditional model, from its metrics.json: how often the evaluator reads the digit asked for (all
    digits, digit 7, the weakest digit) with Wilson intervals over the samples, and the per-digit spread of the
    checkerboard index and of within-class diversity."""
    rows = []
    for name in [n for n, v in VARIANTS.items() if v.classes]:
        c = read_metrics(Path(store) / name, missing_ok=True).get("conditional")
        if not c:
            rows.append([name, "not trained or not evaluated yet"] + ["–"] * (len(COND_COLUMNS) - 2))
            continue
        per = c["per_class"]
        counts, acc = per["samples"], per["accuracy"]
        weakest = min(range(len(acc)), key=lambda d: acc[d])
        spread = [
            f"{min(v for v in per[k] if v is not None):.2f} – {max(v for v in per[k] if v is not None):.2f}"
            for k in ("checkerboard_ratio", "diversity_ratio")
        ]
        epochs = read_manifest(Path(store) / name, missing_ok=True).get("epochs_done")
        rows.append(
            [
                name,
                f"{epochs} epochs, {trained_on(Path(store) / name)}",
                f"{_share(c['accuracy'], c['samples'])} of {c['samples']:,}",
                f"{_share(acc[SHOWN_DIGIT], counts[SHOWN_DIGIT])} of {counts[SHOWN_DIGIT]:,}",
                f"{weakest}: {_share(acc[weakest], counts[weakest])}",
                *spread,
            ]
        )
    return rows
