"""The inline SVG charts of the pages (no script): replicate intervals, training curves, the findings' forest plot,
the factorial's interaction plot and the conditional models' per-digit bars."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from arena.figures import dig, log_floor
from arena.stats import METRIC
from arena.variants import FACTORS


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def within(x: float | None, lowest: float | None, highest: float | None) -> float | None:
    """A value held to the range its measure can take (an interval's end past it is drawn at the bound)."""
    if x is None:
        return None
    if lowest is not None:
        x = max(x, lowest)
    return x if highest is None else min(x, highest)


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) between lo and hi."""
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / count
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def measure_attrs(lo: float, hi: float, lowest: float | None, highest: float | None) -> str:
    """The axis's drawn range and the measure's possible range, for readers of the page's markup (the page test)."""
    attrs = f' data-axis-min="{lo:.6g}" data-axis-max="{hi:.6g}"'
    attrs += f' data-measure-min="{lowest:g}"' if lowest is not None else ""
    return attrs + (f' data-measure-max="{highest:g}"' if highest is not None else "")


def interval_svg(
    rows: list[dict[str, Any]],
    label: str,
    direction: str,
    width: int = 320,
    lowest: float | None = None,
    highest: float | None = None,
) -> str:
    """Dot (mean) and bar (95 % interval) per model on one scale, per-seed values as small ticks, the axis held to
    the range the measure can take (`lowest`, `highest`); inline SVG."""
    row_h, left, right = 22, 120, 12
    rows = [{**r, "low": within(r["low"], lowest, highest), "high": within(r["high"], lowest, highest)} for r in rows]
    xs = [x for r in rows for x in (r["low"], r["high"], r["mean"], *r["values"]) if x is not None]
    lo, hi = min(xs), max(xs)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = within(lo - pad, lowest, highest), within(hi + pad, lowest, highest)
    px = lambda x: left + (x - lo) / (hi - lo) * (width - left - right)
    height = row_h * len(rows) + 26
    parts = [
        f'<svg class="interval" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(label)}: mean and 95% interval per model"'
        f"{measure_attrs(lo, hi, lowest, highest)}>"
    ]
    parts.append(f'<text x="0" y="12" font-size="11" fill="currentColor">{escape(label)} ({escape(direction)})</text>')
    for i, r in enumerate(rows):
        y = 26 + i * row_h + row_h / 2
        parts.append(f'<text x="0" y="{y + 4:.1f}" font-size="11" fill="currentColor">{escape(r["name"])}</text>')
        if r["low"] is not None:
            parts.append(
                f'<line x1="{px(r["low"]):.1f}" x2="{px(r["high"]):.1f}" '
                f'y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" stroke-width="2"/>'
            )
        for v in r["values"]:
            parts.append(
                f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{y - 5:.1f}" '
                f'y2="{y + 5:.1f}" stroke="#888" stroke-width="1"/>'
            )
        parts.append(
            f'<circle cx="{px(r["mean"]):.1f}" cy="{y:.1f}" r="4" fill="#c0392b"><title>{escape(r["name"])}: '
            f"{_fmt(r['mean'])} [{_fmt(r['low'])}, {_fmt(r['high'])}], n={r['n']}</title></circle>"
        )
    for t in nice_ticks(lo, hi):
        parts.append(
            f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="22" y2="{height - 12}" stroke="#eee"/>'
            f'<text x="{px(t):.1f}" y="{height - 1}" font-size="9" fill="#888" text-anchor="middle">{t:g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _interval_rows(models: dict[str, Any], present: list[str], profile: str, key: str) -> list[dict[str, Any]]:
    rows = []
    for n in present:
        s = models[n][profile]["metrics"].get(key)
        if s:
            rows.append(
                {
                    "name": n,
                    "mean": s["mean"],
                    "low": s["low"],
                    "high": s["high"],
                    "n": s["n"],
                    "values": list(s["values"].values()),
                }
            )
    return rows


def _interval_charts(stats: dict[str, Any], present: list[str], profile: str) -> list[dict[str, str]]:
    """One interval chart per replicate metric that any of the present models has at this budget."""
    charts = []
    for m in stats["metrics"]:
        rows = _interval_rows(stats.get("models", {}), present, profile, m["key"])
        if rows:
            direction = METRIC[m["key"]].direction if m["key"] in METRIC else m["better"]
            measure = METRIC.get(m["key"])
            low, high = (measure.lowest, measure.highest) if measure else (None, None)
            charts.append({"key": m["key"], "svg": interval_svg(rows, m["label"], direction, lowest=low, highest=high)})
    return charts


def _verdicts(stats: dict[str, Any], present: list[str], profile: str) -> list[dict[str, Any]]:
    """The comparisons between present models at this budget, each with its rows, the primary metric first."""
    verdicts = []
    for c in stats.get("comparisons", []):
        if c["profile"] == profile and c["a"] in present and c["b"] in present:
            rows = [
                {
                    "metric": METRIC[k].score_label if k in METRIC else k,
                    "direction": METRIC[k].direction if k in METRIC else "",
                    **v,
                }
                for k, v in c["metrics"].items()
            ]
            verdicts.append({**c, "rows": sorted(rows, key=lambda r: r.get("role") != "primary")})
    return verdicts


def _runs(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: entry.get(k) for k in ("seeds", "epochs", "failed", "samples_per_run")},
        "places": sorted(set((entry.get("trained_on") or {}).values())),
    }


def replicate_view(stats: dict[str, Any] | None, names: list[str]) -> list[dict[str, Any]]:
    """Per training budget: interval charts for the given models (one family) and their comparisons' verdicts."""
    if not stats:
        return []
    models = stats.get("models", {})
    profiles = sorted({p for n in names for p in models.get(n, {})})
    out = []
    for profile in profiles:
        present = [n for n in names if profile in models.get(n, {})]
        out.append(
            {
                "profile": profile,
                "charts": _interval_charts(stats, present, profile),
                "verdicts": _verdicts(stats, present, profile),
                "runs": {n: _runs(models[n][profile]) for n in present},
            }
        )
    return out


CURVE_COLOURS = (
    "#c0392b",
    "#2471a3",
    "#229954",
    "#b9770e",
    "#7d3c98",
    "#566573",
    "#d35400",
    "#148f77",
    "#a93226",
    "#1f618d",
)


def _scale(y: float, log_y: bool, floor: float) -> float:
    return math.log10(max(y, floor)) if log_y else y


@dataclass(frozen=True)
class _CurveFrame:
    """A curve chart's axes: epochs and values (padded, on a linear or log scale) to pixels."""

    width: int
    height: int
    log_y: bool
    floor: float
    x0: int
    x1: int
    y0: float
    y1: float
    pad: float
    lowest: float | None = None
    left: int = 44
    right: int = 150
    top: int = 18
    bottom: int = 26

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.width - self.left - self.right)

    def py(self, y: float) -> float:
        f = _scale(y, self.log_y, self.floor)
        return self.top + (1 - (f - self.y0) / (self.y1 - self.y0)) * (self.height - self.top - self.bottom)

    def tick(self, v: float) -> str:
        return f"{10**v:.3g}" if self.log_y else f"{v:.3g}"


def _curve_frame(
    series: dict, bands: dict, width: int, height: int, log_y: bool, lowest: float | None = None
) -> _CurveFrame:
    floor = log_floor(
        [y for v in series.values() for _, y in v] + [y for v in bands.values() for _, lo, hi in v for y in (lo, hi)]
    )
    xs = [x for v in series.values() for x, _ in v] + [x for v in bands.values() for x, _, _ in v]
    ys = [_scale(y, log_y, floor) for v in series.values() for _, y in v] + [
        _scale(y, log_y, floor) for v in bands.values() for _, lo, hi in v for y in (lo, hi)
    ]
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or 1.0
    low = y0 - pad if log_y or lowest is None else max(y0 - pad, lowest)  # never below what the measure can take
    return _CurveFrame(width, height, log_y, floor, min(xs), max(max(xs), min(xs) + 1), low, y1 + pad, pad, lowest)


def _curve_axes(fr: _CurveFrame, label: str) -> str:
    """The chart's opening tag, title, axes and the end values of both axes."""
    width, height, left, right, top, bottom = fr.width, fr.height, fr.left, fr.right, fr.top, fr.bottom
    return (
        f'<svg class="curves" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(label)} against epoch, one line per model"'
        f"{measure_attrs(_unscale(fr, fr.y0), _unscale(fr, fr.y1), fr.lowest, None)}>"
        f'<text x="0" y="11" font-size="11" fill="currentColor">{escape(label)}'
        f"{' (log scale)' if fr.log_y else ''}</text>"
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" '
        f'stroke="#888"/><line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="#888"/>'
        f'<text x="{left}" y="{height - 8}" font-size="9" fill="#888">epoch {fr.x0}</text><text '
        f'x="{width - right}" y="{height - 8}" font-size="9" fill="#888" text-anchor="end">epoch {fr.x1}</text>'
        + "".join(
            f'<line x1="{left}" x2="{width - right}" y1="{fr.py(v):.1f}" y2="{fr.py(v):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{fr.py(v) + 3:.1f}" font-size="9" fill="#888" text-anchor="end">{v:.3g}</text>'
            for v in _y_ticks(fr)
        )
    )


def _unscale(fr: _CurveFrame, v: float) -> float:
    return 10**v if fr.log_y else v


def _y_ticks(fr: _CurveFrame) -> list[float]:
    """Round values inside the axis: powers of ten (and 2 and 5 times them) on a log scale, else about four."""
    lo, hi = _unscale(fr, fr.y0), _unscale(fr, fr.y1)
    if not fr.log_y:
        return nice_ticks(lo, hi)
    out = [m * 10**e for e in range(math.floor(fr.y0), math.ceil(fr.y1) + 1) for m in (1, 2, 5)]
    inside = [v for v in out if lo <= v <= hi]
    return inside if len(inside) <= 6 else [v for v in inside if math.log10(v) % 1 == 0] or inside[:: len(inside) // 4]


def _curve_series(fr: _CurveFrame, i: int, name: str, points: list, band: list | None) -> str:
    """One model's band (if any), line, points and legend entry."""
    colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
    px, py = fr.px, fr.py
    parts = []
    if band:
        outline = [(x, hi) for x, _, hi in band] + [(x, lo) for x, lo, _ in reversed(band)]
        parts.append(
            f'<polygon fill="{colour}" fill-opacity="0.15" '
            f'stroke="none" points="{" ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in outline)}">'
            f"<title>{escape(name)}: replicate spread (95 % t-interval over seeds)</title></polygon>"
        )
    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    parts.append(
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" '
        f'points="{path}"><title>{escape(name)}</title></polyline>'
    )
    for x, y in points:
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.2" fill="{colour}">'
            f"<title>{escape(name)} epoch {x}: {y:.4g}</title></circle>"
        )
    ly = fr.top + 12 + i * 14
    parts.append(
        f'<line x1="{fr.width - fr.right + 8}" x2="{fr.width - fr.right + 22}" '
        f'y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/><text '
        f'x="{fr.width - fr.right + 26}" y="{ly}" font-size="10" fill="currentColor">{escape(name)}</text>'
    )
    return "".join(parts)


def curve_svg(
    series: dict[str, list[tuple[int, float]]],
    label: str,
    width: int = 560,
    height: int = 220,
    log_y: bool = False,
    bands: dict[str, list[tuple[int, float, float]]] | None = None,
    lowest: float | None = None,
) -> str:
    """One line per model (value against epoch) on shared axes, with an optional shaded band per model (the replicate
    spread: (epoch, low, high)); inline SVG, no script. Empty string without data. On a log scale, band sides at or
    below zero are cut at the axis floor (a third of the smallest positive value)."""
    bands = {k: v for k, v in (bands or {}).items() if v and k in series}
    # a model may have replicate bands but no curve of its own
    series = {k: v for k, v in series.items() if v or k in bands}
    if not series:
        return ""
    if lowest is not None:  # a band's side past what the measure can take is drawn at its bound
        bands = {k: [(x, max(lo, lowest), hi) for x, lo, hi in v] for k, v in bands.items()}
    fr = _curve_frame(series, bands, width, height, log_y, lowest)
    parts = [_curve_axes(fr, label)]
    for i, (name, points) in enumerate(sorted(series.items())):
        parts.append(_curve_series(fr, i, name, points, bands.get(name)))
    parts.append("</svg>")
    return "".join(parts)


def _in_deltas(findings: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float, float | None, float | None]]:
    """(finding, mean, low, high) of each finding with a δ: its primary's score difference in units of δ."""
    scaled = []
    for f in findings:
        t = f["test"]
        if not (t and t.get("delta") and t["score_difference"]):
            continue
        d, iv = t["delta"], t["score_difference"]
        scaled.append(
            (
                f,
                iv["mean"] / d,
                (iv["low"] / d) if iv["low"] is not None else None,
                (iv["high"] / d) if iv["high"] is not None else None,
            )
        )
    return scaled


def _forest_backdrop(px, left: int, top: int, rows_h: int) -> str:
    """The ±δ equivalence band, the zero line and the chart's title."""
    return (
        f'<rect x="{px(-1):.1f}" y="{top - 4}" width="{px(1) - px(-1):.1f}" '
        f'height="{rows_h + 4}" fill="#2471a3" fill-opacity="0.12"/>'
        f'<line x1="{px(0):.1f}" x2="{px(0):.1f}" y1="{top - 4}" '
        f'y2="{top + rows_h}" stroke="#888" stroke-dasharray="3 3"/>'
        f'<text x="{left}" y="12" font-size="11" fill="currentColor">A − B '
        "on the primary metric, in units of δ (shaded: ±δ)</text>"
    )


def forest_svg(findings: list[dict[str, Any]], width: int = 560) -> str:
    """One row per question: the paired difference of its primary metric's score (A − B) as dot and 95 % bar, on
    a scale in units of that metric's δ (so different metrics share one axis), with the ±δ equivalence band shaded."""
    scaled = _in_deltas(findings)
    if not scaled:
        return ""
    row_h, left, right, top = 24, 250, 16, 22
    xs = [x for _, m, lo, hi in scaled for x in (m, lo, hi, -1.0, 1.0) if x is not None]
    lo_x, hi_x = min(xs), max(xs)
    pad = (hi_x - lo_x) * 0.05
    lo_x, hi_x = lo_x - pad, hi_x + pad
    px = lambda x: left + (x - lo_x) / (hi_x - lo_x) * (width - left - right)  # noqa: E731
    height = top + row_h * len(scaled) + 24
    parts = [
        f'<svg class="forest" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="paired differences of each '
        "question's primary metric, in units of its smallest effect of interest\">",
        _forest_backdrop(px, left, top, row_h * len(scaled)),
    ]
    for i, (f, m, lo, hi) in enumerate(scaled):
        y = top + i * row_h + row_h / 2
        label = f"{f['a']} − {f['b']} ({f['profile']})"
        parts.append(f'<text x="0" y="{y + 4:.1f}" font-size="11" fill="currentColor">{escape(label)}</text>')
        if lo is not None:
            parts.append(
                f'<line x1="{px(lo):.1f}" x2="{px(hi):.1f}" y1="{y:.1f}" '
                f'y2="{y:.1f}" stroke="currentColor" stroke-width="2"/>'
            )
        iv = f["test"]["score_difference"]
        interval = f" [{iv['low']:+.3g}, {iv['high']:+.3g}]" if iv["low"] is not None else ""
        parts.append(
            f'<circle cx="{px(m):.1f}" cy="{y:.1f}" r="4" fill="#555">'
            f"<title>{escape(label)}: {iv['mean']:+.3g}{interval} (exploratory)</title></circle>"
        )
    axis_y = top + row_h * len(scaled) + 16
    for tick in (-1, 0, 1):
        parts.append(
            f'<text x="{px(tick):.1f}" y="{axis_y}" font-size="9" fill="#888" text-anchor="middle">{tick:+d}δ</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def interaction_svg(design: dict[str, Any], key: str = "frechet", width: int = 300, height: int = 190) -> str:
    """The factorial's cell means (95 % bars) of one metric: the second factor's levels on the x axis, one line per
    operator."""
    means = design["means"].get(key)
    if not means:
        return ""
    factor = FACTORS[design.get("factor", "network")]
    networks, operators = factor.levels, ("transpose", "resize")
    values = [v for iv in means.values() for v in (iv["mean"], iv["low"], iv["high"]) if v is not None]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 46, 90, 18, 26
    px = {n: left + i * (width - left - right) for i, n in enumerate(networks)}
    py = lambda v: top + (hi - v) / (hi - lo) * (height - top - bottom)  # noqa: E731
    parts = [
        f'<svg class="interaction" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="cell means of {escape(METRIC[key].label)} by '
        f'{escape(design.get("factor", "network"))} and operator">'
    ]
    parts.append(
        f'<text x="0" y="11" font-size="10" fill="currentColor">{escape(METRIC[key].label)} '
        f"({escape(METRIC[key].direction)})</text>"
    )
    for o, colour in zip(operators, ("#c0392b", "#2471a3")):
        pts = [(px[n], py(means[f"{o}|{n}"]["mean"])) for n in networks]
        parts.append(
            f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" '
            f'fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for n in networks:
            iv = means[f"{o}|{n}"]
            if iv["low"] is not None:
                parts.append(
                    f'<line x1="{px[n]:.1f}" x2="{px[n]:.1f}" y1="{py(iv["low"]):.1f}" '
                    f'y2="{py(iv["high"]):.1f}" stroke="{colour}"/>'
                )
        parts.append(
            f'<text x="{pts[-1][0] + 8:.1f}" y="{pts[-1][1] + 4:.1f}" font-size="10" '
            f'fill="{colour}">{"transposed" if o == "transpose" else "resize"}</text>'
        )
    for n in networks:
        parts.append(
            f'<text x="{px[n]:.1f}" y="{height - 8}" font-size="10" '
            f'fill="currentColor" text-anchor="middle">{escape(factor.words[n].split(" (")[0])}</text>'
        )
    parts.append(
        f'<text x="0" y="{py(hi - pad) + 4:.1f}" font-size="9" fill="#888">{_fmt(hi - pad)}</text>'
        f'<text x="0" y="{py(lo + pad) + 4:.1f}" font-size="9" fill="#888">{_fmt(lo + pad)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# Per-class measures of a conditional model (metrics.json `conditional.per_class`): what each chart shows.
PER_CLASS = (
    ("accuracy", "conditional accuracy: read as the digit asked for", "higher", None),
    ("frechet", "Fréchet distance to real digits of that class", "lower", None),
    ("checkerboard_ratio", "checkerboard index (× real digits of that class)", "closer to 1", 1.0),
    ("diversity_ratio", "diversity within the class (× real digits of that class)", "closer to 1", 1.0),
)


def per_class_svg(
    models: dict[str, dict[str, Any]],
    key: str,
    label: str,
    better: str,
    reference: float | None,
    width: int = 560,
    height: int = 200,
) -> str:
    """Grouped bars: for each digit 0–9, one bar per model (its `conditional.per_class[key]`), with a dashed line at
    `reference` (what real digits give). Inline SVG, no script; empty string when no model has the measure."""
    series = {n: v for n, v in models.items() if v and v.get(key) and any(x is not None for x in v[key])}
    if not series:
        return ""
    values = [x for v in series.values() for x in v[key] if x is not None] + ([reference] if reference else [])
    y1 = max(values) * 1.08 or 1.0
    classes = max(len(v[key]) for v in series.values())
    left, right, top, bottom = 40, 150, 18, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / classes
    bar = slot * 0.8 / len(series)
    py = lambda y: top + (1 - y / y1) * plot_h  # noqa: E731
    parts = [
        f'<svg class="curves" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(label)} for each digit, one bar per model">',
        f'<text x="0" y="11" font-size="11" fill="currentColor">{escape(label)} ({escape(better)} is better)</text>',
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" fill="#888" text-anchor="end">{y1:.3g}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="9" fill="#888" text-anchor="end">0</text>',
    ]
    for d in range(classes):
        parts.append(
            f'<text x="{left + (d + 0.5) * slot:.1f}" y="{height - 10}" font-size="10" fill="currentColor" '
            f'text-anchor="middle">{d}</text>'
        )
    for i, (name, v) in enumerate(sorted(series.items())):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        for d, y in enumerate(v[key]):
            if y is None:
                continue
            x = left + d * slot + slot * 0.1 + i * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{py(y):.1f}" width="{bar:.1f}" height="{top + plot_h - py(y):.1f}" '
                f'fill="{colour}"><title>{escape(name)}, digit {d}: {y:.4g}</title></rect>'
            )
        ly = top + 12 + i * 14
        parts.append(
            f'<rect x="{width - right + 8}" y="{ly - 9}" width="12" height="10" fill="{colour}"/><text '
            f'x="{width - right + 26}" y="{ly}" font-size="10" fill="currentColor">{escape(name)}</text>'
        )
    if reference is not None:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(reference):.1f}" y2="{py(reference):.1f}" '
            f'stroke="#888" stroke-dasharray="4 3"><title>real digits: {reference:g}</title></line>'
        )
    parts.append("</svg>")
    return "".join(parts)


def per_class_charts(metrics: dict[str, dict[str, Any] | None]) -> list[str]:
    """The per-class bar charts of the conditional models among `metrics` (name -> metrics.json), one per measure."""
    per = {n: dig(m, "conditional.per_class") for n, m in metrics.items()}
    per = {n: v for n, v in per.items() if v}
    if not per:
        return []
    charts = [per_class_svg(per, key, label, better, ref) for key, label, better, ref in PER_CLASS]
    return [c for c in charts if c]
