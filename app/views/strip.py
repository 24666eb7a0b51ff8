"""The comparison page's findings strip: one short row per question above the grids — what is compared, the
estimate with its interval as a small forest mark, and the verdict where a plan decided it, else "exploratory".
The long sentences stay in the findings section and on /about; this is the answer at a glance."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from app.views.findings import comparison_findings, reading_order
from arena.stats import METRIC, estimate_text
from arena.variants import VARIANTS

MARK_SPAN = 3.0  # the mark's axis runs from −3δ to +3δ; an interval past it ends in an arrow


def forest_mark(mean: float, low: float | None, high: float | None, delta: float, label: str) -> str:
    """A 120×16 inline SVG: the ±δ band shaded, zero dashed, the 95 % interval as a bar and the estimate as a dot,
    in units of δ (so every metric shares the scale); whatever lies past ±MARK_SPAN δ is drawn at the edge, and an
    arrowhead there says the interval (or the estimate) runs on beyond it."""
    w, h, pad = 120, 16, 8
    span = lambda v: max(-MARK_SPAN, min(MARK_SPAN, v / delta))  # noqa: E731
    px = lambda v: pad + (span(v) + MARK_SPAN) / (2 * MARK_SPAN) * (w - 2 * pad)  # noqa: E731
    parts = [
        f'<svg class="mark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{escape(label)}">',
        f'<rect x="{px(-delta):.1f}" y="2" width="{px(delta) - px(-delta):.1f}" height="{h - 4}" fill="#2471a3" '
        'fill-opacity="0.15"/>',
        f'<line x1="{px(0):.1f}" x2="{px(0):.1f}" y1="1" y2="{h - 1}" stroke="#888" stroke-dasharray="2 2"/>',
    ]
    if low is not None and high is not None:
        parts.append(
            f'<line x1="{px(low):.1f}" x2="{px(high):.1f}" y1="{h / 2}" y2="{h / 2}" stroke="currentColor" '
            'stroke-width="2"/>'
        )
    ends = [v for v in (low, high, mean) if v is not None]
    for side, past in ((-1, min(ends) / delta < -MARK_SPAN), (1, max(ends) / delta > MARK_SPAN)):
        if past:  # an arrowhead at the edge the values run past
            tip = 0 if side < 0 else w
            base = tip - side * 6
            parts.append(
                f'<polygon class="past" points="{tip},{h / 2} {base},{h / 2 - 4} {base},{h / 2 + 4}" '
                'fill="currentColor"/>'
            )
    parts.append(f'<circle cx="{px(mean):.1f}" cy="{h / 2}" r="3.5" fill="currentColor"/></svg>')
    return "".join(parts)


def strip_rows(stats: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The strip's rows: each plan (its verdict, or how far its runs are), then the comparisons at each variant's
    report budget on their primary metric (exploratory), the report's pairs first."""
    stats = stats or {}
    rows = []
    for st in reading_order(stats.get("studies") or []):
        if st.get("study"):
            for q in st["study"]:
                for e in q["effects"]:
                    rows.append(_row(e.get("contrast") or e["effect"], q["primary"], e, q["delta"], e["verdict"], st))
        else:
            rows.append(
                {
                    "what": f"plan {st['plan']}",
                    "metric": st["title"],
                    "value": None,
                    "mark": "",
                    "word": f"{st['study_runs']} of {st['study_runs_planned']} runs in; its verdict when all are",
                    "kind": "plan",
                    "report": True,
                }
            )
    for f in comparison_findings(stats):
        if f["profile"] != "paper":
            continue
        what = f"{f['a']} − {f['b']}"
        report = VARIANTS[f["a"]].report if f["a"] in VARIANTS else False
        if f["test"] is None:
            rows.append(
                {
                    "what": what,
                    "metric": METRIC[f["metric"]].score_label,
                    "value": None,
                    "mark": "",
                    "word": "not estimable: trained on different machines",
                    "kind": "not estimable",
                    "report": report,
                }
            )
            continue
        t = f["test"]
        iv = t["score_difference"]
        e = {"estimate": iv["mean"], "interval": [iv["low"], iv["high"]], "seeds": t["n"]}
        rows.append(
            {**_row(what, f["metric"], e, t.get("delta"), None, None), "report": report, "on": f.get("trained_on")}
        )
    # one pair measured on two machines is two exploratory rows: each says where its runs trained (a plan's row of
    # the same pair is told apart by its standing: the plan and its seeds)
    count = Counter(r["what"] for r in rows if r.get("on"))
    for r in rows:
        if count[r["what"]] > 1 and r.get("on"):
            r["metric"] += f"; trained on {r['on']}"
    return sorted(rows, key=lambda r: not r["report"])


def _row(what: str, metric: str, e: dict[str, Any], delta: float | None, verdict: str | None, st) -> dict[str, Any]:
    low, high = e["interval"]
    value = estimate_text(e["estimate"], low, high) + (" (one seed)" if low is None else "")
    label = f"{what}: {value} on {METRIC[metric].score_label}"
    return {
        "what": what,
        "metric": f"{METRIC[metric].score_label}, {METRIC[metric].direction}",
        "value": value,
        "mark": forest_mark(e["estimate"], low, high, delta, label) if delta else "",
        "delta": delta,  # the mark's unit: the plan's δ, else the metric's declared one (arena.stats.METRIC)
        "word": f"{verdict} (plan {st['plan']}, {e['seeds']} seeds)" if verdict else f"exploratory, {e['seeds']} seeds",
        "kind": "verdict" if verdict else "exploratory",
        "report": True,
    }
