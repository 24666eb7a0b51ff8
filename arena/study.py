"""The analysis a plan (arena/plans.py) prescribes, from statsmodels rather than by hand.

- A factorial question: the two-way model with interaction in randomised blocks (every seed trains every cell, so
  seed is a block; a machine/backend column, where runs differ in it and the design lets it be estimated, is a
  block too), fitted by ordinary least squares with ±½ contrast coding, so each coefficient is an effect in the
  metric's own units: operator = resize minus transposed averaged over the networks, network = the resize GAN's
  stages minus the transposed GAN's, interaction = the operator effect in the one network minus in the other.
- A pair question: the paired difference by seed (DescrStatsW: t test and two one-sided tests).
- Per question: Holm over its own family only; the four-way verdict on the primary at the plan's δ (difference when
  the Holm-adjusted p < α, equivalent when the Holm-adjusted TOST p < α, else not settled); secondaries only where
  their effect's primary verdict is a difference (gatekeeping); seeds needed from power (difference at 80 % power
  and the family's first Holm level; equivalence at δ), shown only when more than the seeds at hand; and the
  verdict at δ/2, δ and 2δ (sensitivity).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from arena.records import read_manifest
from arena.stats import METRIC, Metric, holm, seeds_for_difference, seeds_for_equivalence, tost_from

EFFECT_WORDS = {
    "operator": ("resize-convolution", "transposed convolution"),
    "network": ("the 3×3 network (the resize GAN's stages)", "the 5×5 network (the transposed GAN's stages)"),
    "interaction": ("the operator's effect depends on the network", None),
}


class Confounded(ValueError):
    """The runs at hand cannot estimate an effect apart from where they trained."""


@dataclass(frozen=True)
class Estimate:
    """One effect on one metric's score scale (positive: more of the score for the +½ level)."""

    effect: str
    estimate: float
    se: float
    df: float
    low: float
    high: float
    p: float
    n_seeds: int

    def tost_p(self, delta: float) -> float:
        """The larger of the two one-sided p-values against ±δ (both must be small for equivalence)."""
        return tost_from(self.estimate, self.se, self.df, delta)


def factorial_fit(rows: Iterable[dict[str, Any]], alpha: float) -> dict[str, Estimate]:
    """rows: {"seed", "operator" (a key of Factorial.OPERATORS: the second is coded +½), "network" ("B"/"A"), "score",
    optional "block"} -> the operator, network and interaction estimates of the blocked two-way model."""
    import pandas as pd
    import statsmodels.formula.api as smf

    frame = pd.DataFrame(list(rows))
    from arena.variants import Factorial

    frame["op"] = np.where(frame["operator"] == Factorial.OPERATORS[1], 0.5, -0.5)
    frame["net"] = np.where(frame["network"] == "B", 0.5, -0.5)
    terms = "op * net + C(seed)"
    # a machine that changes within a seed is a block of its own; one that holds whole seeds is absorbed by C(seed)
    if "block" in frame and (frame.groupby("seed")["block"].nunique() > 1).any():
        terms += " + C(block)"
    with warnings.catch_warnings():  # a rank-deficient design is refused just below, not warned about
        warnings.simplefilter("ignore")
        fit = smf.ols(f"score ~ {terms}", data=frame).fit()
    if np.linalg.matrix_rank(fit.model.exog) < fit.model.exog.shape[1]:
        raise Confounded(
            "the design cannot separate the effects from the machine: a cell trained on a machine no other cell "
            "of its seed used"
        )
    ci = fit.conf_int(alpha)
    out = {}
    # with ±½ codes, op·net is ±¼ and its coefficient is the operator effect in network B minus in network A
    for effect, name in (("operator", "op"), ("network", "net"), ("interaction", "op:net")):
        out[effect] = Estimate(
            effect,
            float(fit.params[name]),
            float(fit.bse[name]),
            float(fit.df_resid),
            float(ci.loc[name, 0]),
            float(ci.loc[name, 1]),
            float(fit.pvalues[name]),
            int(frame["seed"].nunique()),
        )
    return out


def paired_fit(diffs: list[float], alpha: float) -> Estimate:
    from statsmodels.stats.weightstats import DescrStatsW

    values = np.asarray(diffs, np.float64)
    if np.ptp(values) == 0:  # every seed gave the same difference: no spread, so no t test (it would read p = 0)
        raise ValueError(f"{len(values)} paired seeds with identical differences ({values[0]:g}): no spread to test")
    d = DescrStatsW(values)
    low, high = d.tconfint_mean(alpha)
    t, p, df = d.ttest_mean(0.0)
    return Estimate("pair", float(d.mean), float(d.std_mean), float(df), float(low), float(high), float(p), len(diffs))


def verdict(
    est: Estimate,
    metric: Metric,
    delta: float,
    p_adj: float | None,
    tost_adj: float | None,
    alpha: float,
    pair: tuple[str, str] | None = None,
):
    """The four-way verdict for one effect: which level (or which of a pair's models) is better, equivalent within
    ±δ, or not settled."""
    lower_wins = metric.better in ("lower", "real")
    if p_adj is not None and p_adj < alpha:
        plus_better = (est.estimate < 0) == lower_wins
        if est.effect == "interaction":
            return {"kind": "difference", "words": EFFECT_WORDS["interaction"][0]}
        if est.effect == "pair":
            a, b = pair or ("a", "b")
            return {"kind": "difference", "words": f"{a if plus_better else b} better", "a_better": plus_better}
        words = EFFECT_WORDS[est.effect][0 if plus_better else 1]
        return {"kind": "difference", "words": f"{words} better"}
    if tost_adj is not None and tost_adj < alpha:
        return {"kind": "equivalent", "words": f"equivalent within ±{delta:g}"}
    return {"kind": "not settled", "words": "not settled"}


def judge(
    estimates: dict[str, Estimate], metric: Metric, delta: float, alpha: float, pair: tuple[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Holm over this family (the dict's effects) for the difference and the equivalence tests; verdicts; power;
    sensitivity at δ/2, δ, 2δ."""
    names = list(estimates)
    p_adj = dict(zip(names, holm([estimates[n].p for n in names])))
    out = {}
    for scale in (0.5, 1.0, 2.0):
        tost_adj = dict(zip(names, holm([estimates[n].tost_p(delta * scale) for n in names])))
        for n in names:
            row = out.setdefault(n, {"sensitivity": {}})
            v = verdict(estimates[n], metric, delta * scale, p_adj[n], tost_adj[n], alpha, pair)
            row["sensitivity"][f"{scale:g}δ"] = v["words"]
            if scale == 1.0:
                e = estimates[n]
                sd = e.se * math.sqrt(e.n_seeds)
                need_d = seeds_for_difference(sd, delta, alpha / len(names))
                need_e = seeds_for_equivalence(sd, delta, alpha / len(names))
                row.update(
                    {
                        "effect": n,
                        "estimate": e.estimate,
                        "interval": [e.low, e.high],
                        "se": e.se,
                        "df": e.df,
                        "seeds": e.n_seeds,
                        "p": e.p,
                        "p_holm": p_adj[n],
                        "tost_p_holm": tost_adj[n],
                        "delta": delta,
                        "verdict": v["words"],
                        "kind": v["kind"],
                        # shown only when more than the seeds at hand (else the interval already says it)
                        "seeds_for_difference_80": (
                            need_d if need_d and need_d > e.n_seeds and v["kind"] != "difference" else None
                        ),
                        "seeds_for_equivalence_80": (
                            need_e if need_e and need_e > e.n_seeds and v["kind"] != "equivalent" else None
                        ),
                    }
                )
    return out


def score(metric_key: str, row: dict[str, Any]) -> float | None:
    value = row.get(metric_key)
    return None if value is None else METRIC[metric_key].score(value)


# ---- a plan applied to a store ------------------------------------------------------------------------------------


def _runs_of(store, plan, cells) -> dict[tuple[str, int], dict[str, Any]]:
    """{(cell, seed): {"row", "block", "study"}} for the plan's cells and profile, from the replicate store."""
    from pathlib import Path

    from arena.replicates import collect, replicate_store

    data = collect(Path(store), studies=True)
    profile = plan.sweep.get("profile", "paper")
    out = {}
    for cell in cells:
        slot = (data.get(cell) or {}).get(profile) or {}
        for seed, row in slot.get("seeds", {}).items():
            run = replicate_store(store, profile, seed) / cell
            manifest = read_manifest(run)
            hardware = manifest.get("hardware") or {}
            out[(cell, seed)] = {
                "row": row,
                "block": " / ".join(map(str, slot["place"][seed])),
                "study": (manifest.get("study") or {}).get("sha256"),
                "created_at": manifest.get("created_at"),
                "machine": slot["trained_on"][seed],  # collect() already read where it trained
                "cpu": f"{hardware.get('cpu')}, {hardware.get('cpu_count')} cores",
                "commit": manifest.get("git_commit"),
                "source_diff": bool(manifest.get("source_diff")),
            }
    return out


def _cell_factors(cells: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """cell -> (operator, network level) from the variant table's operator × network factorial with these cells."""
    from arena.variants import factorials

    for f in factorials():
        if f.factor == "network" and set(f.cells.values()) == set(cells):
            return {name: (op, "B" if level == f.levels[1] else "A") for (op, level), name in f.cells.items()}
    raise ValueError(f"the cells {', '.join(cells)} are not an operator × network factorial of the variant table")


def _factorial_rows(runs: dict, cells: tuple[str, ...], factors: dict, key: str) -> list[dict[str, Any]]:
    """One row per cell of every seed that has all the cells measured on `key`."""
    seeds = sorted({s for (_, s) in runs})
    complete = [s for s in seeds if all(score(key, (runs.get((c, s)) or {}).get("row", {})) is not None for c in cells)]
    return [
        {
            "seed": s,
            "operator": factors[c][0],
            "network": factors[c][1],
            "block": runs[(c, s)]["block"],
            "score": score(key, runs[(c, s)]["row"]),
        }
        for s in complete
        for c in cells
    ]


def _estimates(q, plan, runs: dict, cells: tuple[str, ...], factors: dict, key: str) -> dict[str, Estimate]:
    """A question's effects on one metric: the paired difference of its contrast, or the factorial's effects in its
    family. ValueError (or Confounded) when the runs cannot estimate them."""
    if q.contrast:
        diffs = [x - y for x, y in _paired_scores(q, runs, key)]
        if len(diffs) < 2:
            raise ValueError(f"{len(diffs)} paired seeds")
        return {"pair": paired_fit(diffs, plan.alpha)}
    r = _factorial_rows(runs, cells, factors, key)
    if len({x["seed"] for x in r}) < 2:
        raise ValueError(
            f"{len({x['seed'] for x in r})} seeds with all four cells measured: runs whose weights were not kept "
            "carry only the metrics of their time"
        )
    return {k: v for k, v in factorial_fit(r, plan.alpha).items() if k in q.family}


def _secondaries(row: dict[str, Any], q, plan, runs: dict, cells: tuple[str, ...], factors: dict) -> None:
    """The secondaries of one effect, Holm over them, tested only where its primary found a difference."""
    row["secondaries"] = {}
    if row["kind"] != "difference":
        row["secondaries_note"] = "not tested: the primary is not settled (gatekeeping)"
        return
    tested = {}
    for key in q.secondaries:
        try:
            tested[key] = _estimates(q, plan, runs, cells, factors, key)[row["effect"]]
        except (ValueError, KeyError, Confounded) as e:
            row["secondaries"][key] = {"verdict": f"not measured ({e})"}
    if tested:
        p = dict(zip(tested, holm([e.p for e in tested.values()])))
        for key, e in tested.items():
            v = verdict(e, METRIC[key], math.inf, p[key], None, plan.alpha, q.contrast)
            row["secondaries"][key] = {
                "estimate": e.estimate,
                "interval": [e.low, e.high],
                "p_holm": p[key],
                "verdict": v["words"],
            }


def _question(q, plan, runs: dict, cells: tuple[str, ...], exploratory: bool = False) -> dict[str, Any]:
    """A question answered from `runs`: with the plan's verdicts from its own runs, or (`exploratory`, from runs
    the plan did not fix) estimates and intervals only: no Holm, no equivalence test, no verdict word."""
    metric = METRIC[q.primary]
    factors = {} if q.contrast else _cell_factors(cells)  # a pair question needs no factorial
    base = {"id": q.id, "text": q.text, "primary": q.primary, "primary_label": metric.label, "delta": q.delta}
    try:
        estimates = _estimates(q, plan, runs, cells, factors, q.primary)
    except (ValueError, Confounded) as e:
        return {**base, "effects": [], "unavailable": str(e)}
    pair = {"contrast": f"{q.contrast[0]} − {q.contrast[1]}", "means": _pair_means(q, runs)} if q.contrast else {}
    if exploratory:
        rows = [
            {
                "effect": e.effect,
                "estimate": e.estimate,
                "interval": [e.low, e.high],
                "seeds": e.n_seeds,
                "kind": "exploratory",
                "verdict": None,
                **pair,
            }
            for e in estimates.values()
        ]
        return {**base, "effects": rows}
    judged = judge(estimates, metric, q.delta, plan.alpha, q.contrast)
    effects = list(judged.values())
    for row in effects:
        row.update(pair)
        _secondaries(row, q, plan, runs, cells, factors)
    return {**base, "effects": effects}


def _paired_scores(q, runs: dict, key: str) -> list[tuple[float, float]]:
    """A pair question's (A, B) scores on `key`, one per seed that measured both, in seed order."""
    a, b = q.contrast
    seeds = sorted(s for (c, s) in runs if c == a and (b, s) in runs)
    both = [(score(key, runs[(a, s)]["row"]), score(key, runs[(b, s)]["row"])) for s in seeds]
    return [(x, y) for x, y in both if x is not None and y is not None]


def _pair_means(q, runs: dict) -> dict[str, float]:
    """Each side of a pair question: its mean primary score over the seeds the paired difference rests on (what the
    difference is a difference of)."""
    both = _paired_scores(q, runs, q.primary)
    a, b = q.contrast
    return {a: sum(x for x, _ in both) / len(both), b: sum(y for _, y in both) / len(both)} if both else {}


def _where_and_by_what(runs: dict) -> dict[str, Any]:
    """Where the study's runs trained (machine: device, backend, precision; CPU model) and by what code (the commits
    their manifests name, and how many recorded an uncommitted source diff), each with its count of runs; and the
    seeds whose cells trained on different CPU models (a pair the design means to train on one host)."""
    from collections import Counter, defaultdict

    cpus_of_seed = defaultdict(set)
    for (_cell, seed), r in runs.items():
        cpus_of_seed[seed].add(r["cpu"])
    return {
        "machines": dict(Counter(r["machine"] for r in runs.values())),
        "cpus": dict(Counter(r["cpu"] for r in runs.values())),
        "seeds_across_cpus": sorted(s for s, cpus in cpus_of_seed.items() if len(cpus) > 1),
        "commits": len({(r["commit"] or "unknown").removesuffix("-dirty") for r in runs.values()}),
        "with_source_diff": sum(r["source_diff"] for r in runs.values()),
    }


def analyse(plan, store) -> dict[str, Any]:
    """The plan's questions answered twice: from the study's own runs (manifests naming this plan's SHA-256), and,
    labelled exploratory, from the earlier runs of the same cells. Never pooled."""
    import datetime as dt

    from arena.plans import committed_at, standing

    cells = plan.cells
    runs = _runs_of(store, plan, cells)
    mine = {k: v for k, v in runs.items() if v["study"] == plan.sha256 and k[1] in plan.seeds}
    earlier = {k: v for k, v in runs.items() if v["study"] is None}
    stamps = [dt.datetime.fromisoformat(r["created_at"]) for r in mine.values() if r.get("created_at")]
    first = min(stamps) if stamps else None
    committed = committed_at(plan.path)
    complete = len(mine) == len(plan.seeds) * len(cells)
    out = {
        "plan": plan.name,
        "file": f"studies/{plan.path.name}",
        "sha256": plan.sha256,
        "title": plan.title,
        "standing": standing(plan, first, committed),
        "committed_at": committed.isoformat() if committed else None,
        "seeds_planned": len(plan.seeds),
        "study_runs": len(mine),
        "study_runs_planned": len(plan.seeds) * len(cells),
        "command": plan.command,
        "trained": _where_and_by_what(mine),
        # one look: the plan's questions are answered from its runs only once every planned run is in
        "study": [_question(q, plan, mine, cells) for q in plan.questions] if complete else [],
        "exploratory": [_question(q, plan, earlier, cells, exploratory=True) for q in plan.questions],
    }
    return out


def with_studies(store) -> dict[str, Any]:
    """replicates.json: the exploratory statistics (arena/replicates.py) and, under `studies`, each plan's answers."""
    from arena import plans
    from arena.replicates import statistics

    out = statistics(store)
    out["studies"] = [analyse(plan, store) for plan in plans.plans()] if plans.STUDIES.is_dir() else []
    return out
