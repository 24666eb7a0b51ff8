"""models_store/curves.png, the training-curves figure `deconv-arena tables` draws: checkerboard index against epoch
for every variant with training curves, one panel per family, the replicates' 95 % band shaded where they exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arena.ablation import read_json
from arena.readouts import log_floor
from arena.records import read_manifest
from arena.variants import VARIANTS


def _band(stats: dict[str, Any], name: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The replicates' curve of the served run's budget, the points that have an interval."""
    profile = (manifest.get("config") or {}).get("profile") or "paper"
    band = (((stats.get(name) or {}).get(profile) or {}).get("curves") or {}).get("curve_checkerboard_ratio") or []
    return [b for b in band if b.get("low") is not None]


def _draw_variant(ax, store: Path, stats: dict[str, Any], name: str, colour: str) -> bool:
    """One variant's curve (or, without one, its replicate mean) and band on the panel; True when anything was drawn."""
    manifest = read_manifest(store / name, missing_ok=True)
    points = [
        (h["epoch"], h["curve_checkerboard_ratio"])
        for h in manifest.get("history") or []
        if h.get("curve_checkerboard_ratio") is not None
    ]
    band = _band(stats, name, manifest)
    if band:
        floor = log_floor([y for _, y in points] + [b["mean"] for b in band], default=1e-3)
        ax.fill_between(
            [b["epoch"] for b in band],
            [max(b["low"], floor) for b in band],
            [b["high"] for b in band],
            color=colour,
            alpha=0.18,
            lw=0,
        )
    if points:
        ax.plot(*zip(*points), marker="o", ms=3, color=colour, label=name)
    elif band:
        x, y = [b["epoch"] for b in band], [b["mean"] for b in band]
        ax.plot(x, y, ls="--", color=colour, label=f"{name} (replicate mean)")
    return bool(points or band)


def _dress_panel(ax, family: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("checkerboard index (× real digits)")
    ax.axhline(1.0, ls=":", color="black", lw=0.8)
    ax.set_title(
        f"{family.upper()}: 2,000 samples per epoch; shaded: 95 % interval over seeds (cut at the floor)",
        fontsize=9,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(
            0.5,
            0.5,
            "no training curves yet\n(trained before they were recorded)",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=9,
            color="grey",
        )


def plot_curves(store: Path, path: Path | None = None) -> Path | None:
    """Draw the figure into `path` (default: the store's curves.png); None when no model has curves yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = Path(store)
    stats = read_json(store / "replicates.json").get("models", {})
    families = sorted({v.family for v in VARIANTS.values()})
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 3.6), dpi=100, squeeze=False)
    drawn = False
    for ax, family in zip(axes[0], families):
        for i, name in enumerate(n for n, v in VARIANTS.items() if v.family == family):
            drawn = _draw_variant(ax, store, stats, name, f"C{i}") or drawn
        _dress_panel(ax, family)
    if not drawn:
        plt.close(fig)
        return None
    fig.tight_layout()
    out = Path(path or store / "curves.png")
    fig.savefig(out)
    plt.close(fig)
    return out
