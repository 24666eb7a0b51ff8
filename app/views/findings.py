"""Sentences written from the data: one per question from its estimate on its primary metric, and the factorial's
effects, rendered from replicates.json by templates (so prose can never claim more than the intervals). All of
these are exploratory (no plan fixed them before their runs): estimates and intervals, no verdict words.
The About page and the comparison page show these sentences; `deconv-arena tables` writes the same ones into the
README and docs/evaluation.md."""

from __future__ import annotations

from typing import Any

from arena.stats import METRIC, estimate_text, p_text, with_note
from arena.variants import FACTORS, FAMILIES, VARIANTS, factorials

PROFILE_ORDER = {"paper": 0, "quick": 1, "smoke": 2}


def _iv(iv: dict[str, Any] | None) -> str:
    if not iv or iv.get("mean") is None:
        return "–"
    text = estimate_text(iv["mean"], iv.get("low"), iv.get("high"))
    return text if iv.get("low") is not None else f"{text} (one seed: no interval)"


def _budget(row: dict[str, Any]) -> str:
    return f"{row['profile']} budget ({row['epochs']} epochs)" if row.get("epochs") else f"{row['profile']} budget"


def seeds_asked_words(t: dict[str, Any]) -> str:
    """What a plan at this spread would need, in words ('' when nothing beyond the seeds used)."""
    d, e = t.get("seeds_for_difference_80"), t.get("seeds_for_equivalence_80")
    asks = [f"{d} seeds to find a difference of {t['delta']:g}"] if d else []
    asks += [f"{e} to show equivalence within ±{t['delta']:g}"] if e else []
    return f"A plan at this spread would need about {' and '.join(asks)} (80 % power)." if asks else ""


def test_sentence(t: dict[str, Any], metric_key: str, a: str, b: str, where: str) -> str:
    """An exploratory result in words: the estimate with its interval and what it rests on, never a verdict (no
    plan fixed the question before these runs; a plan's own runs are judged in arena/study.py)."""
    m = METRIC[metric_key]
    what = with_note(m.score_label, f"{'lower' if m.better != 'higher' else 'higher'} is better")
    more = f" {seeds_asked_words(t)}" if seeds_asked_words(t) else ""
    return (
        f"Exploratory: {a} − {b} on {what} = {_iv(t['score_difference'])}, {t['n']} paired "
        f"seed{'s' if t['n'] != 1 else ''}, {where}.{more}"
    )


def comparison_findings(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Per comparison and budget (and backend), its question and the verdict on its primary metric, in table order."""
    order = {n: i for i, n in enumerate(VARIANTS)}
    rows = sorted(
        stats.get("comparisons") or [], key=lambda r: (order.get(r["a"], 99), PROFILE_ORDER.get(r["profile"], 9))
    )
    out = []
    for r in rows:
        head = {"a": r["a"], "b": r["b"], "question": r["question"], "profile": r["profile"], "metric": r["primary"]}
        if r.get("not_estimable"):
            where = "; ".join(f"seed {s}: {w}" for s, w in r["not_paired"].items())
            sentence = f"Not estimable at the {_budget(r)}: {r['not_estimable']} ({where}). No number is shown."
            out.append(
                {
                    **head,
                    "trained_on": None,
                    "estimate": None,
                    "kind": "not estimable",
                    "test": None,
                    "sentence": sentence,
                }
            )
            continue
        t = r["metrics"].get(r["primary"])
        if not t:
            continue
        where = f"{_budget(r)}, trained on {r['trained_on']}"
        unpaired = (
            f" Seeds {', '.join(r['not_paired'])} trained on different machines, backends or precisions and are "
            "not paired."
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
                "estimate": t["score_difference"],
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


def study_effect_note(e: dict[str, Any]) -> str:
    """What a plan's verdict row rests on beyond its primary, in one sentence: each side's mean (a pair's), the
    verdict at δ/2 and 2δ (sensitivity) and its secondary measures (Holm over them, tested only where the primary
    found a difference)."""
    sens = e.get("sensitivity") or {}
    others = {k: v for k, v in sens.items() if k != "1δ"}
    means = e.get("means") or {}
    parts = (
        [f"Means over the {e['seeds']} seeds: {', '.join(f'{c} {v:.4g}' for c, v in means.items())}."] if means else []
    )
    if others and all(v == e["verdict"] for v in others.values()):
        parts.append(f"The same verdict at {' and '.join(others)}.")
    else:
        parts += [f"At {k}: {v}." for k, v in others.items()]
    tested = e.get("secondaries") or {}
    if e.get("secondaries_note"):
        parts.append(f"Secondary measures {e['secondaries_note']}.")
    elif tested:
        said = []
        for key, s in tested.items():
            label = METRIC[key].label if key in METRIC else key
            if s.get("estimate") is None:
                said.append(f"{label}: {s['verdict']}")
                continue
            said.append(
                f"{label} {estimate_text(s['estimate'], *s['interval'])} (Holm p {p_text(s['p_holm'])}): {s['verdict']}"
            )
        parts.append(f"Secondary measures, Holm over {len(tested)}: {'; '.join(said)}.")
    return " ".join(parts)


def reading_order(studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plans as the pages and the README list them: a plan its own runs have answered first, then one under way,
    then one awaiting its runs; in file order within each. A version replaced by a newer one before any run of it is
    left out (its file stays under studies/; the About page lists every plan file)."""
    newest: dict[str, int] = {}
    for st in studies:  # "gan-operator-network v2" -> its id's newest version
        plan_id, _, version = st["plan"].rpartition(" v")
        newest[plan_id] = max(newest.get(plan_id, 0), int(version) if version.isdigit() else 0)

    def replaced(st: dict[str, Any]) -> bool:
        plan_id, _, version = st["plan"].rpartition(" v")
        return version.isdigit() and int(version) < newest[plan_id] and not st.get("study_runs")

    shown = [st for st in studies if not replaced(st)]
    return sorted(shown, key=lambda st: (not st.get("study"), not st.get("study_runs")))


def study_provenance(st: dict[str, Any]) -> str:
    """Where a plan's own runs trained and by what code, in one sentence; empty before its first run."""
    t = st.get("trained") or {}
    if not st.get("study_runs") or not t:
        return ""
    machines = "; ".join(f"{m} ({n} run{'' if n == 1 else 's'})" for m, n in t["machines"].items())
    cpus = "; ".join(f"{c} ({n})" for c, n in t["cpus"].items())
    diffs = t["with_source_diff"]
    split = t.get("seeds_across_cpus") or []
    return (
        f"Its {st['study_runs']} runs trained on {machines}, CPUs {cpus}, from code at {t['commits']} "
        f"commit{'' if t['commits'] == 1 else 's'} (each run's manifest names its own)"
        + (f"; {diffs} of the runs also record an uncommitted source diff beside their manifest" if diffs else "")
        + (
            f"; the two cells of seed{'' if len(split) == 1 else 's'} {', '.join(map(str, split))} trained on "
            "different CPU models"
            if split
            else ""
        )
        + "."
    )


def study_progress(st: dict[str, Any]) -> str:
    """Where a plan's own runs stand, in one sentence: none yet, some (no look before the last), or all in."""
    if st["study"]:
        return f"All {st['study_runs_planned']} planned runs are in; the rows above are the plan's answer."
    if st["study_runs"]:
        return (
            f"The study is under way: {st['study_runs']} of {st['study_runs_planned']} planned runs are in; the plan "
            f"allows one look, once all are in, so no estimate from them is shown yet. It runs with `{st['command']}`."
        )
    return f"The study itself has not run yet; it runs with `{st['command']}`."
