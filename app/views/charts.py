"""The pages' charts: Vega-Lite specs built with Altair, each with the same data as a table.

A page draws a chart in the browser with the vendored vega-embed (app/static/vendor, no CDN), which also offers it
as SVG or PNG; without JavaScript the chart is its data table. Every chart's table downloads as CSV. The axis that
carries a measure is held to the range the measure can take (arena/stats.py `Metric.lowest`/`highest`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import altair as alt

from arena.readouts import dig, log_floor
from arena.stats import METRIC, with_note
from arena.variants import FACTORS, OPERATORS, VARIANTS, Factorial

HEIGHT = 220  # px; the width follows the page's column (Vega-Lite "container")
ROW = 28  # px a row in the charts with one row per model or question
FOREST_ROW = 46  # px a row of the forest plot: the question's name above its bar
LINE = 15  # px a line of text in a chart
CHAR_PX = 7.5  # px a character of FONT-px text takes at most, on average over a name (measured: 6.8)
TITLE_CHARS = 42  # a title line's length: the chart's width on a 390 px phone
FONT = 12  # px: axis labels, titles and legends stay legible on a 390 px phone
COLOURS = (
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


def model_colour(name: str) -> str | None:
    """A model's colour on every chart: its place in its family in the variant table, so each family's report pair
    is red (transposed convolution) and blue (resize-convolution) and a family's five models are five colours."""
    v = VARIANTS.get(name)
    if v is None:
        return None
    return COLOURS[[n for n, w in VARIANTS.items() if w.family == v.family].index(name) % len(COLOURS)]


def operator_colour(key: str) -> str:
    """An operator's colour where a chart draws one line per operator: the colour its report pair's model has."""
    return COLOURS[list(OPERATORS).index(key) % len(COLOURS)]


def series_colours(names: list[str], **fixed: str) -> alt.Scale:
    """The colour scale of one chart's series: a model its own colour (model_colour), a series named in `fixed`
    that colour, any other series the palette's first colours that no other series of the chart has."""
    chosen = {n: fixed.get(n) or model_colour(n) for n in names}
    spare = iter(c for c in COLOURS if c not in chosen.values())
    return alt.Scale(domain=list(names), range=[chosen[n] or next(spare) for n in names])


CONFIG = {
    "font": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "axis": {"labelFontSize": FONT, "titleFontSize": FONT, "labelLimit": 180, "titleFontWeight": "normal"},
    # room on the right for a tick label or axis title centred near the plot's right end (vega's fit-x leaves none)
    "padding": {"left": 5, "top": 5, "bottom": 5, "right": 24},
    "legend": {
        "labelFontSize": FONT,
        "titleFontSize": FONT,
        "orient": "bottom",
        "columns": 1,
        "labelLimit": 300,
        "symbolOpacity": 1,
    },
    "title": {"fontSize": FONT + 1, "anchor": "start", "fontWeight": "normal"},
    "view": {"stroke": None},
    "range": {"category": list(COLOURS)},
}


@dataclass(frozen=True)
class Chart:
    """A chart as a page ships it: its Vega-Lite spec and the data it draws as a table (columns in words)."""

    name: str  # the downloads' file name (SVG, PNG, CSV): what the chart shows, in lower-case ASCII
    title: str
    spec: dict[str, Any]
    columns: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)
    axis: str | None = None  # "x" or "y": the axis that carries a measure with a bounded range
    lowest: float | None = None
    highest: float | None = None

    @property
    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()

    def cells(self) -> list[list[str]]:
        """The table's rows as the page prints them (numbers to 4 significant digits; a missing value as –)."""
        return [["–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in r] for r in self.rows]


MEMO_SIZE = 1024  # charts kept per kind; the store's charts are a few hundred


def memoized(build):
    """A chart is a pure function of its data, and Altair takes 10-30 ms to build one: each distinct input is built
    once per process (the comparison page draws about a hundred charts, each from data that changes only when the
    store does). Inputs that are not JSON are built every time."""
    cache: dict[str, Any] = {}

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        try:
            key = json.dumps([args, kwargs], sort_keys=True, allow_nan=True)
        except TypeError:
            return build(*args, **kwargs)
        if key not in cache:
            if len(cache) >= MEMO_SIZE:
                cache.clear()
            cache[key] = build(*args, **kwargs)
        return cache[key]

    return wrapper


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("×", "x").replace("é", "e")).strip("-")[:80] or "chart"


def vega_spec(chart: alt.TopLevelMixin, title: str, height: int = HEIGHT) -> dict[str, Any]:
    """The chart's Vega-Lite spec: the column's width, `height` px, the title in lines that fit a phone."""
    spec = chart.properties(
        title=textwrap.wrap(title, TITLE_CHARS),
        width="container",
        height=height,
        autosize={"type": "fit-x", "contains": "padding"},
    ).to_dict(validate=False)
    spec["config"] = CONFIG
    return spec


def within(x: float | None, lowest: float | None, highest: float | None) -> float | None:
    """A value held to the range its measure can take (an interval's end past it is drawn at the bound)."""
    if x is None:
        return None
    if lowest is not None:
        x = max(x, lowest)
    return x if highest is None else min(x, highest)


def padded(values: list[float], lowest: float | None, highest: float | None, share: float = 0.08) -> list[float]:
    """An axis's domain: the values' range with a margin, never past what the measure can take."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * share or abs(hi) * 0.1 or 1.0
    return [within(lo - pad, lowest, highest), within(hi + pad, lowest, highest)]


def rounded(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


# Replicate intervals ------------------------------------------------------------------------------------------------
@memoized
def interval_chart(
    rows: list[dict[str, Any]], label: str, direction: str, lowest: float | None = None, highest: float | None = None
) -> Chart:
    """Per model: the mean over seeds (dot), its 95 % interval (bar) and each seed's value (tick), on one axis held
    to the range the measure can take."""
    rows = [{**r, "low": within(r["low"], lowest, highest), "high": within(r["high"], lowest, highest)} for r in rows]
    xs = [x for r in rows for x in (r["low"], r["high"], r["mean"], *r["values"]) if x is not None]
    x = alt.Scale(domain=padded(xs, lowest, highest), nice=False, zero=False)
    words = with_note(label, direction)
    y = alt.Y("model:N", title=None, sort=None)
    means = [{"model": r["name"], "mean": r["mean"], "low": r["low"], "high": r["high"], "n": r["n"]} for r in rows]
    seeds = [{"model": r["name"], "seed value": v} for r in rows for v in r["values"]]
    base = alt.Chart(alt.Data(values=means))
    chart = alt.layer(
        alt.Chart(alt.Data(values=seeds))
        .mark_tick(color="#888", thickness=1, size=12)
        .encode(x=alt.X("seed value:Q", scale=x, title=None), y=y, tooltip=["model:N", "seed value:Q"]),
        base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", scale=x), x2="high:Q", y=y),
        base.mark_point(filled=True, size=60, color=COLOURS[0]).encode(
            x=alt.X("mean:Q", scale=x),
            y=y,
            tooltip=[
                "model:N",
                alt.Tooltip("mean:Q", format=".4g"),
                "low:Q",
                "high:Q",
                alt.Tooltip("n:Q", title="seeds"),
            ],
        ),
    )
    return Chart(
        name=slug(f"replicates {label}"),
        title=words,
        spec=vega_spec(chart, words, height=ROW * len(rows) + 40),
        columns=("model", "seeds", "mean", "95 % low", "95 % high", "each seed"),
        rows=[
            (r["name"], r["n"], *(rounded(r[k]) for k in ("mean", "low", "high")), " ".join(f"{v:.4g}" for v in vs))
            for r in rows
            for vs in [r["values"]]
        ],
        axis="x",
        lowest=lowest,
        highest=highest,
    )


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


def _interval_charts(stats: dict[str, Any], present: list[str], profile: str) -> list[Chart]:
    """One interval chart per replicate metric that any of the present models has at this budget."""
    charts = []
    for m in stats["metrics"]:
        rows = _interval_rows(stats.get("models", {}), present, profile, m["key"])
        if rows:
            measure = METRIC.get(m["key"])
            direction = measure.direction if measure else m["better"]
            low, high = (measure.lowest, measure.highest) if measure else (None, None)
            chart = interval_chart(rows, m["label"], direction, lowest=low, highest=high)
            charts.append(dataclasses.replace(chart, name=slug(f"{profile} {m['key']} replicates")))
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


def log_ticks(low: float, high: float, least: int = 3) -> list[float]:
    """Round ticks for a log axis from `low` to `high`: the decades, else 1-2-5 in each decade, else every digit, else
    every half digit — the first of these that gives `least` ticks (a band within one decade still gets a readable
    axis)."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for steps in ((1,), (1, 2, 5), tuple(range(1, 10)), tuple(x / 2 for x in range(2, 20))):
        ticks = [float(f"{m}e{e}") for e in decades for m in steps if low <= m * 10.0**e <= high]
        if len(ticks) >= least:
            break
    return ticks


# Curves against epoch ------------------------------------------------------------------------------------------------
@memoized
def curve_chart(
    series: dict[str, list[tuple[int, float]]],
    label: str,
    log_y: bool = False,
    bands: dict[str, list[tuple[int, float, float]]] | None = None,
    lowest: float | None = None,
    series_name: str = "model",
) -> Chart | None:
    """One line per model (value against epoch) on shared axes, with an optional shaded band per model (the replicate
    spread: (epoch, low, high)). None without data. On a log scale, band sides at or below zero are cut at the axis
    floor (a third of the smallest positive value)."""
    bands = {k: v for k, v in (bands or {}).items() if v and k in series}
    series = {k: v for k, v in series.items() if v or k in bands}  # a model may have bands but no curve of its own
    if not series:
        return None
    if lowest is not None:  # a band's side past what the measure can take is drawn at its bound
        bands = {k: [(x, max(lo, lowest), hi) for x, lo, hi in v] for k, v in bands.items()}
    values = [y for v in series.values() for _, y in v]
    values += [y for v in bands.values() for _, lo, hi in v for y in (lo, hi)]
    floor = log_floor(values)
    if log_y:
        bands = {k: [(x, max(lo, floor), max(hi, floor)) for x, lo, hi in v] for k, v in bands.items()}
        values = [max(y, floor) for y in values]
        domain = [min(values) / 1.3, max(values) * 1.3]
        scale = alt.Scale(type="log", domain=domain, nice=False)
        ticks = alt.Axis(values=log_ticks(*domain), format="~g")
    else:
        scale = alt.Scale(domain=padded(values, lowest, None), nice=False, zero=False)
        ticks = alt.Axis()
    words = label + (" (log scale)" if log_y else "")
    who = series_name
    points = [{who: m, "epoch": x, "value": y} for m, v in sorted(series.items()) for x, y in v]
    spread = [{who: m, "epoch": x, "low": lo, "high": hi} for m, v in sorted(bands.items()) for x, lo, hi in v]
    colour = alt.Color(f"{who}:N", title=None, sort=sorted(series), scale=series_colours(sorted(series)))
    epoch = alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d"))
    layers = []
    if spread:
        layers.append(
            alt.Chart(alt.Data(values=spread))
            .mark_area(opacity=0.15)
            .encode(x=epoch, y=alt.Y("low:Q", scale=scale, title=None, axis=ticks), y2="high:Q", color=colour)
        )
    if points:  # a model may have its replicates' band but no curve of its own
        layers.append(
            alt.Chart(alt.Data(values=points))
            .mark_line(point=alt.OverlayMarkDef(size=18))
            .encode(
                x=epoch,
                y=alt.Y("value:Q", scale=scale, title=None, axis=ticks),
                color=colour,
                tooltip=[f"{who}:N", "epoch:Q", alt.Tooltip("value:Q", format=".4g")],
            )
        )
    band_at = {(m, x): (lo, hi) for m, v in bands.items() for x, lo, hi in v}
    keys = sorted({(m, x) for m, v in series.items() for x, _ in v} | set(band_at))
    value_at = {(m, x): y for m, v in series.items() for x, y in v}
    empty = (None, None) if band_at else ()
    return Chart(
        name=slug(label),
        title=words,
        spec=vega_spec(alt.layer(*layers), words),
        columns=(who, "epoch", label, *(("replicates' 95 % low", "replicates' 95 % high") if band_at else ())),
        rows=[
            (m, x, rounded(value_at.get((m, x))), *(rounded(b) for b in band_at.get((m, x), empty))) for m, x in keys
        ],
        axis="y",
        lowest=lowest,
    )


# The findings' forest plot and interaction plots -------------------------------------------------------------------
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


@memoized
def forest_chart(findings: list[dict[str, Any]]) -> Chart | None:
    """One row per question: the paired difference of its primary metric's score (A − B) as dot and 95 % bar, on
    a scale in units of that metric's δ (so different metrics share one axis), with the ±δ equivalence band shaded."""
    scaled = _in_deltas(findings)
    if not scaled:
        return None
    same = Counter((f["a"], f["b"], f["profile"]) for f, *_ in scaled)

    def parts(f: dict[str, Any]) -> tuple[str, str]:  # a pair measured on two machines: a row per machine, named
        where = f", {str(f.get('trained_on')).split(',')[0]}" if same[f["a"], f["b"], f["profile"]] > 1 else ""
        return f"{f['a']} − {f['b']}", f"({f['profile']}{where})"

    def lines(pair: str, qualifier: str) -> list[str]:  # one line where a phone's width holds it, else two or more
        whole = f"{pair} {qualifier}"
        return [whole] if len(whole) <= TITLE_CHARS else textwrap.wrap(pair, TITLE_CHARS) + [qualifier]

    rows = [
        {
            "question": " ".join(parts(f)),
            # its name's lines from the last (next to the bar) up: line0 the last, line1 the one above it, ...
            **{f"line{i}": line for i, line in enumerate(reversed(lines(*parts(f))))},
            "mean": m,
            "low": lo,
            "high": hi,
            "delta": f["test"]["delta"],
            "difference": f["test"]["score_difference"]["mean"],
        }
        for f, m, lo, hi in scaled
    ]
    depth = max(sum(k.startswith("line") for k in r) for r in rows)  # the most lines a name takes
    for r in rows:
        r.update({f"line{i}": r.get(f"line{i}", "") for i in range(depth)})
    xs = [x for r in rows for x in (r["mean"], r["low"], r["high"], -1.0, 1.0) if x is not None]
    domain = padded(xs, None, None, 0.05)
    x = alt.Scale(domain=domain, nice=False, zero=False)
    # each question's name stands on its own line above its bar, across the plot's whole width: a label column
    # beside the bars left a phone 40 px of axis and cut the longer names short ("…pape…")
    y = alt.Y("question:N", title=None, sort=None, axis=None)
    base = alt.Chart(alt.Data(values=rows))
    title = "A − B on the primary metric, in units of δ (shaded: ±δ)"
    chart = alt.layer(
        alt.Chart(alt.Data(values=[{"from": -1, "to": 1}]))
        .mark_rect(color="#2471a3", opacity=0.12)
        .encode(x=alt.X("from:Q", scale=x, title=["A − B", "in units of δ"]), x2="to:Q"),
        alt.Chart(alt.Data(values=[{"zero": 0}])).mark_rule(strokeDash=[3, 3], color="#888").encode(x="zero:Q"),
        *(
            base.mark_text(
                align="left",
                baseline="bottom",
                dy=-7 - LINE * i,
                fontSize=FONT,
                # the whole name on one line where the chart's width holds it, else its lines
                text=alt.ExprRef(
                    f"length(datum.question) * {CHAR_PX} <= width ? {'datum.question' if i == 0 else repr('')}"
                    f" : datum.line{i}"
                ),
            ).encode(x=alt.X(datum=domain[0], type="quantitative", scale=x), y=y)
            for i in range(depth)
        ),
        base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", scale=x), x2="high:Q", y=y),
        base.mark_point(filled=True, size=60, color="#555").encode(
            x=alt.X("mean:Q", scale=x),
            y=y,
            tooltip=[
                "question:N",
                alt.Tooltip("difference:Q", title="A − B", format="+.3g"),
                alt.Tooltip("delta:Q", title="δ", format=".3g"),
            ],
        ),
    )
    return Chart(
        name="findings-forest-plot",
        title=title,
        spec=vega_spec(chart, title, height=(FOREST_ROW + LINE * (depth - 1)) * len(rows)),
        columns=("question", "δ", "A − B", "A − B in δ", "95 % low in δ", "95 % high in δ"),
        rows=[
            (r["question"], r["delta"], *(rounded(r[k]) for k in ("difference", "mean", "low", "high"))) for r in rows
        ],
    )


@memoized
def interaction_chart(design: dict[str, Any], key: str = "frechet") -> Chart | None:
    """The factorial's cell means (95 % bars) of one metric: the second factor's levels on the x axis, one line per
    operator."""
    means = design["means"].get(key)
    if not means:
        return None
    factor_name = design.get("factor", "network")
    factor, metric = FACTORS[factor_name], METRIC[key]
    levels = [factor.words[n].split(" (")[0] for n in factor.levels]
    rows = [
        {"operator": OPERATORS[o].words, "level": factor.words[n].split(" (")[0], **means[f"{o}|{n}"]}
        for o in Factorial.OPERATORS
        for n in factor.levels
    ]
    values = [v for r in rows for v in (r["mean"], r["low"], r["high"]) if v is not None]
    y = alt.Scale(domain=padded(values, metric.lowest, metric.highest, 0.1), nice=False, zero=False)
    x = alt.X("level:N", title=factor_name, sort=levels, axis=alt.Axis(labelAngle=0))
    words = [OPERATORS[o].words for o in Factorial.OPERATORS]
    colour = alt.Color(
        "operator:N",
        title=None,
        sort=words,
        scale=alt.Scale(domain=words, range=[operator_colour(o) for o in Factorial.OPERATORS]),
    )
    base = alt.Chart(alt.Data(values=rows))
    title = f"{with_note(metric.label, metric.direction)} by {factor_name} and operator"
    chart = alt.layer(
        base.mark_line(point=True).encode(
            x=x,
            y=alt.Y("mean:Q", scale=y, title=metric.label),
            color=colour,
            tooltip=["operator:N", "level:N", alt.Tooltip("mean:Q", format=".4g"), "low:Q", "high:Q"],
        ),
        base.mark_rule().encode(x=x, y=alt.Y("low:Q", scale=y), y2="high:Q", color=colour),
    )
    return Chart(
        name=slug(f"interaction {key} {factor_name}"),
        title=title,
        spec=vega_spec(chart, title, height=200),
        columns=("operator", factor_name, "mean", "95 % low", "95 % high"),
        rows=[(r["operator"], r["level"], rounded(r["mean"]), rounded(r["low"]), rounded(r["high"])) for r in rows],
        axis="y",
        lowest=metric.lowest,
        highest=metric.highest,
    )


# A conditional model's measures per digit ----------------------------------------------------------------------------
# Per-class measures of a conditional model (metrics.json `conditional.per_class`): what each chart shows, which way
# is better, what real digits give, and the range the measure can take.
PER_CLASS = (
    ("accuracy", "conditional accuracy: read as the digit asked for", "higher", None, (0.0, 1.0)),
    ("frechet", "Fréchet distance to real digits of that class", "lower", None, (0.0, None)),
    ("checkerboard_ratio", "checkerboard index (× real digits of that class)", "closer to 1", 1.0, (0.0, None)),
    ("diversity_ratio", "diversity within the class (× real digits of that class)", "closer to 1", 1.0, (0.0, None)),
)


@memoized
def per_class_chart(
    models: dict[str, dict[str, Any]],
    key: str,
    label: str,
    better: str,
    reference: float | None,
    bounds: tuple[float | None, float | None] = (None, None),
) -> Chart | None:
    """Grouped bars: for each digit 0–9, one bar per model (its `conditional.per_class[key]`), with a dashed line at
    `reference` (what real digits give). None when no model has the measure."""
    series = {n: v for n, v in models.items() if v and v.get(key) and any(x is not None for x in v[key])}
    if not series:
        return None
    rows = [{"model": n, "digit": d, "value": y} for n, v in sorted(series.items()) for d, y in enumerate(v[key])]
    top = max([r["value"] for r in rows if r["value"] is not None] + ([reference] if reference else [])) * 1.08
    y = alt.Scale(domain=[0, within(top, *bounds) or 1.0], nice=False)
    title = with_note(label, f"{better} is better")
    layers = [
        alt.Chart(alt.Data(values=[r for r in rows if r["value"] is not None]))
        .mark_bar()
        .encode(
            x=alt.X("digit:O", title="digit asked for", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("model:N", sort=sorted(series)),
            y=alt.Y("value:Q", scale=y, title=None),
            color=alt.Color("model:N", title=None, sort=sorted(series), scale=series_colours(sorted(series))),
            tooltip=["model:N", "digit:O", alt.Tooltip("value:Q", format=".4g")],
        )
    ]
    if reference is not None:
        layers.append(
            alt.Chart(alt.Data(values=[{"real digits": reference}]))
            .mark_rule(strokeDash=[4, 3], color="#888")
            .encode(y=alt.Y("real digits:Q", scale=y), tooltip=["real digits:Q"])
        )
    return Chart(
        name=slug(f"per digit {key}"),
        title=title,
        spec=vega_spec(alt.layer(*layers), title, height=200),
        columns=("model", "digit", label),
        rows=[(r["model"], r["digit"], rounded(r["value"])) for r in rows],
        axis="y",
        lowest=bounds[0],
        highest=bounds[1],
    )


def per_class_charts(metrics: dict[str, dict[str, Any] | None]) -> list[Chart]:
    """The per-class bar charts of the conditional models among `metrics` (name -> metrics.json), one per measure."""
    per = {n: dig(m, "conditional.per_class") for n, m in metrics.items()}
    per = {n: v for n, v in per.items() if v}
    if not per:
        return []
    charts = [per_class_chart(per, key, label, better, ref, bounds) for key, label, better, ref, bounds in PER_CLASS]
    return [c for c in charts if c]


# People's ratings ---------------------------------------------------------------------------------------------------
@memoized
def rating_chart(question: str, rows: list[dict[str, Any]]) -> Chart | None:
    """One question's Bradley-Terry ratings: each model's rating with its 95 % interval where the display rule gives
    one (app/ratings/ranking.py), on the Elo-like scale."""
    shown = [r for r in rows if r.get("lower") is not None]
    if not shown:
        return None
    xs = [v for r in shown for v in (r["lower"], r["upper"], r["rating"])]
    x = alt.Scale(domain=padded(xs, None, None, 0.05), nice=False, zero=False)
    y = alt.Y("model:N", title=None, sort=None)
    data = [{"model": r["model"], "rating": r["rating"], "low": r["lower"], "high": r["upper"]} for r in shown]
    base = alt.Chart(alt.Data(values=data))
    title = f"{question}: rating with its 95 % interval"
    chart = alt.layer(
        base.mark_rule(strokeWidth=6, opacity=0.35, color="#1a5fb4").encode(
            x=alt.X("low:Q", scale=x, title="rating (Elo-like scale)"), x2="high:Q", y=y
        ),
        base.mark_point(filled=True, size=60, color="#1a5fb4").encode(
            x=alt.X("rating:Q", scale=x),
            y=y,
            tooltip=["model:N", alt.Tooltip("rating:Q", format=".0f"), "low:Q", "high:Q"],
        ),
    )
    return Chart(
        name=slug(f"ratings {question}"),
        title=title,
        spec=vega_spec(chart, title, height=ROW * len(data) + 40),
        columns=("model", "rating", "95 % low", "95 % high"),
        rows=[(d["model"], rounded(d["rating"], 5), rounded(d["low"], 5), rounded(d["high"], 5)) for d in data],
    )
