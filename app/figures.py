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


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def interval_svg(rows: list[dict[str, Any]], label: str, better: str, width: int = 320) -> str:
    """Dot (mean) and bar (95 % interval) per model on one scale, per-seed values as small ticks; inline SVG."""
    from html import escape

    row_h, left, right = 22, 120, 12
    xs = [x for r in rows for x in (r["low"], r["high"], r["mean"], *r["values"]) if x is not None]
    lo, hi = min(xs), max(xs)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    px = lambda x: left + (x - lo) / (hi - lo) * (width - left - right)
    height = row_h * len(rows) + 26
    parts = [f'<svg class="interval" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-label="{escape(label)}: mean and 95% interval per model">']
    parts.append(f'<text x="0" y="12" font-size="11" fill="currentColor">{escape(label)} ({better} is better)</text>')
    for i, r in enumerate(rows):
        y = 26 + i * row_h + row_h / 2
        parts.append(f'<text x="0" y="{y + 4:.1f}" font-size="11" fill="currentColor">{escape(r["name"])}</text>')
        if r["low"] is not None:
            parts.append(f'<line x1="{px(r["low"]):.1f}" x2="{px(r["high"]):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" stroke-width="2"/>')
        for v in r["values"]:
            parts.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{y - 5:.1f}" y2="{y + 5:.1f}" stroke="#888" stroke-width="1"/>')
        parts.append(f'<circle cx="{px(r["mean"]):.1f}" cy="{y:.1f}" r="4" fill="#c0392b"><title>{escape(r["name"])}: {_fmt(r["mean"])} [{_fmt(r["low"])}, {_fmt(r["high"])}], n={r["n"]}</title></circle>')
    parts.append(f'<text x="{left}" y="{height - 1}" font-size="9" fill="#888">{_fmt(lo + pad)}</text><text x="{width - right}" y="{height - 1}" font-size="9" fill="#888" text-anchor="end">{_fmt(hi - pad)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def replicate_view(stats: dict[str, Any] | None, names: list[str]) -> list[dict[str, Any]]:
    """Per training budget: interval charts for the given models (one family) and their comparisons' verdicts."""
    if not stats:
        return []
    models = stats.get("models", {})
    profiles = sorted({p for n in names for p in models.get(n, {})})
    out = []
    for profile in profiles:
        present = [n for n in names if profile in models.get(n, {})]
        charts = []
        for m in stats["metrics"]:
            rows = []
            for n in present:
                s = models[n][profile]["metrics"].get(m["key"])
                if s:
                    rows.append({"name": n, "mean": s["mean"], "low": s["low"], "high": s["high"], "n": s["n"], "values": list(s["values"].values())})
            if rows:
                charts.append({"key": m["key"], "svg": interval_svg(rows, m["label"], m["better"])})
        verdicts = []
        for c in stats.get("comparisons", []):
            if c["profile"] == profile and c["a"] in present and c["b"] in present:
                verdicts.append({**c, "rows": [{"metric": next(x["label"] for x in stats["metrics"] if x["key"] == k), **v} for k, v in c["metrics"].items()]})
        out.append({
            "profile": profile, "charts": charts, "verdicts": verdicts,
            "runs": {n: {k: models[n][profile].get(k) for k in ("seeds", "epochs", "failed", "samples_per_run")} for n in present},
        })
    return out
