"""Conclusions written from the data: one sentence per question from its verdict on its primary metric, and the
factorial's effects, rendered from replicates.json by templates (so prose can never claim more than the intervals).
The About page and the comparison page show these sentences; `deconv-arena tables` writes the same ones into the
README and docs/evaluation.md."""

from __future__ import annotations

from typing import Any

from arena.stats import METRIC
from arena.variants import FACTORS, FAMILIES, VARIANTS, factorials

PROFILE_ORDER = {"paper": 0, "quick": 1, "smoke": 2}


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:+.3g}"


def _iv(iv: dict[str, Any] | None) -> str:
    if not iv or iv.get("low") is None:
        return f"{_num((iv or {}).get('mean'))} (one seed: no interval)"
    return f"{_num(iv['mean'])} [{_num(iv['low'])}, {_num(iv['high'])}]"


def _p(p: float | None) -> str:
    return "p = –" if p is None else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")


def _budget(row: dict[str, Any]) -> str:
    return f"{row['profile']} budget ({row['epochs']} epochs)" if row.get("epochs") else f"{row['profile']} budget"


def seeds_asked_words(t: dict[str, Any]) -> str:
    """The seeds a power calculation asks for, in words ('' when none is asked beyond those used)."""
    d, e = t.get("seeds_for_difference_80"), t.get("seeds_for_equivalence_80")
    asks = [f"{d} seeds to find a difference of {t['delta']:g}"] if d else []
    asks += [f"{e} to show equivalence within ±{t['delta']:g}"] if e else []
    return f"At this spread a power calculation (80 %) asks for about {' and '.join(asks)}." if asks else ""


def test_sentence(t: dict[str, Any], metric_key: str, a: str, b: str, where: str) -> str:
    """One test's verdict in words: a difference, equivalence, or an inconclusive result with the seeds it would
    need."""
    m = METRIC[metric_key]
    what = f"{m.score_label} ({'lower' if m.better != 'higher' else 'higher'} is better)"
    base = f"{a} − {b} on {what} = {_iv(t['score_difference'])}, {t['n']} paired seeds, {where}"
    fam = t.get("family_of_tests") or {}
    holm = f"Holm-adjusted over {fam.get('size', 1)} {fam.get('name', 'tests')}"
    if t["kind"] == "difference":
        return f"{t['winner']} is better: {base}; {_p(t['p'])}, {holm}: {_p(t['p_adjusted'])}."
    if t["kind"] == "equivalent":
        eq = t["equivalence_interval"]
        return (
            f"Equivalent within ±{t['delta']:g}: {base}; the 90 % interval [{_num(eq['low'])}, {_num(eq['high'])}] "
            f"lies inside ±{t['delta']:g} (two one-sided tests, {holm}: {_p(t['p_tost_adjusted'])})."
        )
    more = (
        f" {seeds_asked_words(t)}"
        if seeds_asked_words(t)
        else (
            " No smallest effect of interest is declared for this metric, so equivalence is not tested."
            if t.get("delta") is None
            else ""
        )
    )
    return (
        f"Not settled with {t['n']} seed{'s' if t['n'] != 1 else ''} — neither a difference nor "
        f"equivalence can be claimed: {base}; {_p(t['p'])}, {holm}: {_p(t['p_adjusted'])}.{more}"
    )


def comparison_findings(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Per comparison and budget (and backend), its question and the verdict on its primary metric, in table order."""
    order = {n: i for i, n in enumerate(VARIANTS)}
    rows = sorted(
        stats.get("comparisons") or [], key=lambda r: (order.get(r["a"], 99), PROFILE_ORDER.get(r["profile"], 9))
    )
    out = []
    for r in rows:
        t = r["metrics"].get(r["primary"])
        if not t:
            continue
        where = f"{_budget(r)}, trained on {r['trained_on']}"
        unpaired = (
            f" Seeds {', '.join(r['not_paired'])} trained on different backends and are not paired."
            if r.get("not_paired")
            else ""
        )
        out.append(
            {
                "a": r["a"],
                "b": r["b"],
                "question": r["question"],
                "profile": r["profile"],
                "trained_on": r["trained_on"],
                "metric": r["primary"],
                "verdict": t["verdict"],
                "kind": t["kind"],
                "test": t,
                "sentence": test_sentence(t, r["primary"], r["a"], r["b"], where) + unpaired,
            }
        )
    return out


def factorial_findings(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The effects of each operator × factor design per budget, or why they cannot be estimated yet."""
    out = []
    designs = stats.get("factorials") or []
    for f in factorials():
        factor = FACTORS[f.factor]
        head = {
            "family": f.family,
            "short": FAMILIES[f.family].short,
            "factor": f.factor,
            "levels": [{"key": level, "words": factor.words[level]} for level in f.levels],
        }
        rows = [d for d in designs if d["family"] == f.family and d.get("factor", "network") == f.factor]
        if not rows:
            have = {n: sorted((stats.get("models") or {}).get(n, {})) for n in f.cells.values()}
            missing = [n for n, profiles in have.items() if not profiles]
            out.append(
                {
                    **head,
                    "profile": None,
                    "sentence": (
                        f"The {head['short']} operator × {f.factor} factorial ({', '.join(f.cells.values())}) "
                        "has no budget at which all four cells have replicates on one backend"
                        f"{' (no replicates yet: ' + ', '.join(missing) + ')' if missing else ''}, "
                        f"so the operator's effect cannot yet be separated from the {f.factor}'s. {factor.note}"
                    ),
                }
            )
            continue
        for d in sorted(rows, key=lambda d: PROFILE_ORDER.get(d["profile"], 9)):
            where = f"{_budget(d)}, trained on {d['trained_on']}"
            effects = (d["effects"] or {}).get("frechet") or {}
            lines = [
                f"{effect.capitalize()} effect ({t['meaning']}): " + test_sentence(t, "frechet", *t["sides"], where)
                for effect, t in effects.items()
            ]
            out.append({**head, "profile": d["profile"], "design": d, "sentence": " ".join(lines) + " " + factor.note})
    return out
