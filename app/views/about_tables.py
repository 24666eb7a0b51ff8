"""The About page's tables (the ablation table's columns, the conditional models' rows); `deconv-arena tables`
writes the same into docs/evaluation.md."""

from __future__ import annotations

from pathlib import Path

from arena.records import read_manifest, read_metrics
from arena.replicates import trained_on
from arena.stats import wilson_interval
from arena.variants import VARIANTS

COLUMNS = (  # (key, group, label): a group's columns share a heading on the page ("group: label" in Markdown)
    ("variant", None, "variant"),
    ("reference", None, "compared with"),
    ("frechet", None, "Fréchet ↓"),
    ("kid", None, "KID ↓"),
    ("legibility", None, "legibility ↑"),
    ("recall", None, "recall ↑"),
    ("checkerboard_ratio", "checkerboard (× real)", "trained"),
    ("checkerboard_init", "checkerboard (× real)", "at init"),
    ("cv_trained", "polyphase CV", "trained"),
    ("cv_init", "polyphase CV", "at init"),
    ("params", None, "params"),
    ("seconds_per_epoch", None, "s/epoch"),
    ("trained_on", None, "trained on"),
    ("epochs", None, "epochs"),
)


# the page shows a variant's reference beneath its name ("vs gan_transpose"): its own column left "trained on" 80 px
PAGE_COLUMNS = tuple(
    ("variant", None, "variant (vs its reference)") if key == "variant" else (key, group, label)
    for key, group, label in COLUMNS
    if key != "reference"
)


def column_label(group: str | None, label: str) -> str:
    """A column's heading on one line (Markdown)."""
    return f"{group}: {label}" if group else label


def header_rows() -> list[list[tuple[str, int, int]]]:
    """The page's two heading rows as (text, columns spanned, rows spanned): a group's heading over its columns'.
    (Its columns: PAGE_COLUMNS.)"""
    top: list[tuple[str, int, int]] = []
    below: list[tuple[str, int, int]] = []
    for i, (_, group, label) in enumerate(PAGE_COLUMNS):
        if group is None:
            top.append((label, 1, 2))
            continue
        if i == 0 or PAGE_COLUMNS[i - 1][1] != group:
            top.append((group, sum(g == group for _, g, _ in PAGE_COLUMNS), 1))
        below.append((label, 1, 1))
    return [top, below]


def machine_notes(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The ablation rows with "trained on" cut to the machine where one machine always trained with one setup
    (backend, precision), and those setups said once below the table: the whole setup in every row made the
    table twice its box's width at 1366 px."""
    setups: dict[str, set[str]] = {}
    for r in rows:
        if r.get("trained_on"):
            setups.setdefault(r["machine"], set()).add(r["trained_on"])
    short = {m for m, s in setups.items() if len(s) == 1}
    cut = [{**r, "trained_on": r["machine"]} if r.get("machine") in short else r for r in rows]
    return cut, [next(iter(setups[m])) for m in setups if m in short]


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
