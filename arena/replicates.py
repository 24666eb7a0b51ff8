"""The replicate store: one variant and protocol under other seeds, evaluated alike, summarised with intervals.

Where each replicate run lives (a models store of its own per profile and seed, with the failure record of a run
whose training or evaluation failed) is arena/layout.py's; a failed run is listed as failed — never dropped from a
mean in silence. `<store>/replicates.json` holds the statistics the service shows (arena/stats.py).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from arena.layout import REPLICATES, RUN_DIR, failure_path, replicate_store, replicate_stores, runs_in  # noqa: F401 (the layout's names, also read from here)
from arena.readouts import dig
from arena.records import MANIFEST, METRICS_FILE, RecordError, read_manifest, read_metrics, write_json_atomic
from arena.stats import (
    DELTA_SOURCE,
    LEVEL,
    METRIC,
    Metric,
    bounded_interval,
    explore,
    t_interval,
)
from arena.variants import FACTORS, FAMILIES, OPERATORS, Factorial, Variant, comparisons, factorials

INDEX = "replicates.json"


def record_failure(failure: Path, stage: str, error: BaseException) -> None:
    """Write a run's failure record (its path: `RunLayout.failure`): the stage, the error, when, the last frames."""
    failure.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        failure,
        {
            "stage": stage,
            "error": f"{type(error).__name__}: {error}",
            "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "traceback": traceback.format_exception(error)[-3:],
        },
    )


def runs(store: Path) -> list[tuple[str, str, int, Path]]:
    """(variant, profile, seed, folder) of every replicate run on disk, failed ones included."""
    return [(n, profile, seed, run) for profile, seed, run in replicate_stores(store) for n in sorted(runs_in(run))]


def under_a_plan(run: Path, name: str) -> bool:
    """Whether the run was trained under a study's plan (its manifest records the plan): such runs answer their
    plan's questions only, and never enter the exploratory statistics."""
    try:
        return bool(read_manifest(run / name).get("study"))
    except RecordError:
        return False


def collect(store: Path, studies: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """{variant: {profile: {"epochs", "seeds": {seed: summary row}, "failed": {seed: reason}}}} from disk: the runs
    trained outside any plan, or with `studies` every run (a plan's analysis picks its own by their plan's hash)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, profile, seed, run in runs(store):
        if not studies and under_a_plan(run, name):
            continue
        slot = out.setdefault(name, {}).setdefault(
            profile, {"epochs": None, "seeds": {}, "failed": {}, "trained_on": {}, "place": {}}
        )
        failure = failure_path(run, name)
        metrics_path = run / name / METRICS_FILE
        if failure.is_file():
            f = json.loads(failure.read_text())
            slot["failed"][seed] = f"{f['stage']}: {f['error']}"
        elif not metrics_path.is_file():
            slot["failed"][seed] = "trained but not evaluated (run `deconv-arena evaluate --replicates`)"
        else:
            try:
                row = {**summary_row(read_metrics(run / name)), **last_epochs(run / name)}
            except RecordError as e:  # a damaged record marks the seed failed, naming the file and the field
                slot["failed"][seed] = f"evaluation: {e}"
                continue
            bad = [m.key for m in METRIC.values() if row.get(m.key) is not None and not math.isfinite(row[m.key])]
            if bad:  # a NaN marks the seed failed; it never enters (or aborts) the statistics
                slot["failed"][seed] = f"evaluation: non-finite {', '.join(bad)}"
                continue
            slot["seeds"][seed] = row
            slot["place"][seed] = where = place(run / name)
            slot["trained_on"][seed] = _words(where)
            slot["epochs"] = row["epochs_done"]
    return out


LAST_EPOCHS = 5


def last_epochs(run: Path, k: int = LAST_EPOCHS) -> dict[str, float]:
    """Each run's curve metrics averaged over its last k epochs (less checkpoint noise than its final epoch alone)."""
    try:
        history = read_manifest(run).get("history") or []
    except RecordError:
        return {}
    out = {}
    for key, curve, last in (
        ("frechet_last5", "curve_frechet", k),
        ("checkerboard_last5", "curve_checkerboard_ratio", k),
        ("frechet_last10", "curve_frechet", 10),  # the GAN plan v2's primary (a third of the final checkpoint's SD)
    ):
        values = [h[curve] for h in history if h.get(curve) is not None][-last:]
        if len(values) == last:
            out[key] = float(np.mean(values))
    return out


def summary_row(r: dict[str, Any]) -> dict[str, Any]:
    """One model's headline figures, as summary.json and the replicate statistics keep them: every metric declared
    with a `source` in its metrics.json (arena/stats.py METRIC; None where a run was evaluated before it existed),
    then the figures that are not replicate metrics."""
    return {
        **{m.key: dig(r, m.source) for m in METRIC.values() if m.source},
        "share_confident": r["legibility"]["share_confident"],
        "density": r["prdc"]["density"],
        "params": r["cost"]["params"],
        "ms_per_image_batch64": r["cost"]["ms_per_image_batch64"],
        "seconds_per_epoch": r["cost"]["seconds_per_epoch"],
        "epochs_done": r["cost"]["epochs_done"],
        "generator_sha256": r["generator_sha256"],
        "samples": r["samples"],
        "intervals": r.get("intervals"),
    }


def trained_on(run: Path) -> str:
    """Where a run trained, from its manifest: 'CPU, tensorflow, float32' or 'NVIDIA H200, jax, jax precision highest'
    (seeds of one variant may come from different machines; the tables say so)."""
    return _words(place(run))


def _words(where: tuple[str, str, str]) -> str:
    return "unknown" if where[0] == "unknown" else ", ".join(where)


def place(run: Path) -> tuple[str, str, str]:
    """(machine, backend, float32 precision) a run trained with, from its manifest; machine is "CPU" or the GPUs."""
    try:
        m = read_manifest(run)
    except RecordError:
        return ("unknown", "?", "?")
    hw, versions = m.get("hardware") or {}, m.get("versions") or {}
    # manifests from before the JAX backend name no backend, only the TensorFlow version they trained with
    backend = versions.get("backend") or ("tensorflow" if "tensorflow" in versions else "?")
    gpus = hw.get("gpus") or []
    where = ", ".join(g.split(":", 1)[-1] for g in gpus) if gpus else "CPU"
    precision = hw.get("float32_matmul", "float32" if not gpus else "precision not recorded")
    if " default (TF32" in precision:  # 'jax default (TF32 on NVIDIA GPUs of compute capability >= 8.0)'
        precision = f"TF32 ({precision.split(' ', 1)[0]} default)"
    return (where, backend, precision)


def statistics(store: Path) -> dict[str, Any]:
    """Means with t-intervals per variant and budget; per comparison, paired differences of scores with their
    intervals (exploratory; seeds paired only within one backend and precision); the operator × network factorial."""
    data = collect(store)
    models: dict[str, Any] = {}
    for name, profiles in data.items():
        models[name] = {}
        for profile, slot in profiles.items():
            seeds = sorted(slot["seeds"])
            samples = sorted({slot["seeds"][s].get("samples") for s in seeds} - {None})
            entry: dict[str, Any] = {
                "profile": profile,
                "epochs": slot["epochs"],
                "samples_per_run": samples[0] if len(samples) == 1 else samples,
                "seeds": seeds,
                "failed": {str(k): v for k, v in sorted(slot["failed"].items())},
                "metrics": {},
            }
            entry["trained_on"] = {str(s): slot["trained_on"][s] for s in seeds}
            for m in METRIC.values():
                values = {s: slot["seeds"][s][m.key] for s in seeds if slot["seeds"][s].get(m.key) is not None}
                if values:
                    entry["metrics"][m.key] = {
                        **bounded_interval(list(values.values()), m.lowest, m.highest).as_dict(),
                        "values": {str(s): v for s, v in values.items()},
                    }
            entry["curves"] = replicate_curves(store, name, profile)
            models[name][profile] = entry
    compared = [row for v, ref in comparisons() for row in _compare(data, v, ref)]
    designs = [row for f in factorials() for row in _factorial(data, f)]
    _adjust(compared, designs)
    return {
        "level": LEVEL,
        "method": (
            "mean over training seeds with a Student-t 95 % interval; comparisons paired by seed (same "
            "data order and noise) and only between seeds trained on the same backend and precision, "
            "on each metric's score (lower, higher, or |ln ratio| for ratios to real digits), as the paired "
            "difference with its 95 % t-interval. All of it is exploratory: no plan fixed these questions, "
            "margins or seed counts before the runs, so there is no test, no multiplicity correction and no "
            "word of judgement; beside each difference, the seeds a plan of one test at the measured spread "
            f"would need for 80 % power (a difference of δ, equivalence within ±δ; δ: {DELTA_SOURCE}), shown "
            "only when more than the seeds used. Judgements come from a committed plan's own runs (studies/)"
        ),
        "metrics": [
            {"key": m.key, "label": m.label, "better": m.better, "direction": m.direction, "delta": m.delta}
            for m in METRIC.values()
        ],
        "models": models,
        "comparisons": compared,
        "factorials": designs,
        "standing": "exploratory: the comparisons and factorials above were analysed by rules written after their "
        "runs; the studies' answers follow their plans",
    }


def pairing(where: tuple[str, str, str]) -> tuple[str, str, str]:
    """What seeds must share to be paired: the machine (the GPU model, or "CPU"), the backend and the float32
    precision. An H100 and an H200 are two machines: a comparison whose two sides trained on different ones is
    aliased with the machine and gets no estimate. CPU hosts of the project's kind are one machine (the VAE study's
    plan says why: their rounding differences land in the between-seed spread)."""
    return ("CPU" if where[0] == "CPU" else where[0], where[1], where[2])


def _places(data, names: list[str], profile: str) -> dict[str | None, list[int]]:
    """Seeds every named variant has at this budget, grouped by what pairing needs them to share, each group named by
    the machines it trained on; a seed whose runs differ in that goes under None (listed, never paired)."""
    slots = [data[n][profile] for n in names]
    common = sorted(set.intersection(*(set(s["seeds"]) for s in slots)))
    groups: dict[tuple | None, list[int]] = {}
    machines: dict[tuple, set[str]] = {}
    for seed in common:
        keys = {pairing(s["place"][seed]) for s in slots}
        key = keys.pop() if len(keys) == 1 else None
        groups.setdefault(key, []).append(seed)
        if key is not None:
            machines.setdefault(key, set()).update(s["place"][seed][0] for s in slots)
    return {
        (None if key is None else ", ".join([" and ".join(sorted(machines[key])), *key[1:]])): seeds
        for key, seeds in groups.items()
    }


def _test(diffs: list[float], metric: Metric, family: str) -> dict[str, Any]:
    delta = (metric.delta or {}).get(FAMILIES[family].kind)  # a conditional family borrows its kind's margin
    interval = t_interval(diffs).as_dict() if diffs else None
    return {
        "score_difference": interval,
        "n": len(diffs),
        "delta": delta,
        "_diffs": diffs,
    }


def _compare(data, v: Variant, ref: Variant) -> list[dict[str, Any]]:
    rows = []
    for profile in sorted(set(data.get(v.name, {})) & set(data.get(ref.name, {}))):
        a, b = data[v.name][profile], data[ref.name][profile]
        groups = _places(data, [v.name, ref.name], profile)
        mixed = groups.pop(None, [])
        head = {
            "a": v.name,
            "b": ref.name,
            "question": v.question,
            "primary": v.primary,
            "family": v.family,
            "profile": profile,
            "epochs": a["epochs"],
            "not_paired": {str(s): f"{v.name}: {a['trained_on'][s]}; {ref.name}: {b['trained_on'][s]}" for s in mixed},
            "metrics": {},
        }
        if mixed and not groups:  # every seed's two runs trained on different machines: nothing can be estimated
            rows.append(
                {
                    **head,
                    "trained_on": None,
                    "seeds": [],
                    "not_estimable": "every seed's two runs trained on different machines, so the difference cannot "
                    "be told apart from the machine's",
                }
            )
        for place, seeds in groups.items():
            row: dict[str, Any] = {**head, "trained_on": place, "seeds": seeds, "metrics": {}}
            for m in METRIC.values():
                used = [
                    s for s in seeds if a["seeds"][s].get(m.key) is not None and b["seeds"][s].get(m.key) is not None
                ]
                if used:
                    raw = t_interval([a["seeds"][s][m.key] - b["seeds"][s][m.key] for s in used]).as_dict()
                    diffs = [m.score(a["seeds"][s][m.key]) - m.score(b["seeds"][s][m.key]) for s in used]
                    row["metrics"][m.key] = {
                        "difference": raw,
                        "seeds": used,
                        "role": "primary" if m.key == v.primary else "secondary",
                        **_test(diffs, m, v.family),
                    }
            rows.append(row)
    return rows


# Contrasts over the cells (operator, level of the second factor), each a per-seed combination of the four runs:
# what it means and the names of its two sides (A − B, as verdicts and sentences name them), per factor.
_T, _R = (OPERATORS[o].short for o in Factorial.OPERATORS)  # the two operators of the factorials, in words
EFFECT_WORDS = {
    "network": {
        "operator": (f"{_R} − {_T}, averaged over the two networks", (_R, _T)),
        "network": (
            "shallow − tutorial stages, averaged over the two operators",
            ("shallow network", "tutorial network"),
        ),
        "interaction": (
            f"({_R} − {_T}) in the shallow network minus that in the tutorial's",
            ("the shallow network's operator gap", "the tutorial's"),
        ),
    },
    "conditioning": {
        "operator": (f"{_R} − {_T}, averaged over conditional and unconditional", (_R, _T)),
        "conditioning": (
            "conditional − unconditional, averaged over the two operators",
            ("conditional", "unconditional"),
        ),
        "interaction": (
            f"({_R} − {_T}) asked for a digit minus that without a label",
            ("the conditional operator gap", "the unconditional one"),
        ),
    },
}


def effects(factor: str) -> dict[str, tuple[str, tuple[str, str], dict[tuple[str, str], float]]]:
    """{effect: (meaning, sides, weight of each cell)} of an operator × `factor` design: the operator's main effect,
    the factor's, and their interaction."""
    low, high = FACTORS[factor].levels
    t, r = Factorial.OPERATORS
    weights = {
        "operator": {(r, low): 0.5, (r, high): 0.5, (t, low): -0.5, (t, high): -0.5},
        factor: {(t, high): 0.5, (r, high): 0.5, (t, low): -0.5, (r, low): -0.5},
        "interaction": {(r, high): 1, (t, high): -1, (r, low): -1, (t, low): 1},
    }
    return {e: (*EFFECT_WORDS[factor][e], w) for e, w in weights.items()}


FACTORIAL_METRICS = ("frechet", "checkerboard_ratio")


def _factorial(data, f: Factorial) -> list[dict[str, Any]]:
    names = list(f.cells.values())
    rows = []
    for profile in sorted(set.intersection(*(set(data.get(n, {})) for n in names))):
        for place, seeds in _places(data, names, profile).items():
            if place is None:
                continue
            row: dict[str, Any] = {
                "family": f.family,
                "factor": f.factor,
                "levels": list(f.levels),
                "profile": profile,
                "trained_on": place,
                "seeds": seeds,
                "epochs": data[names[0]][profile]["epochs"],
                "cells": {f"{o}|{n}": name for (o, n), name in f.cells.items()},
                "means": {},
                "effects": {},
            }
            for key in FACTORIAL_METRICS:
                m = METRIC[key]
                used = [s for s in seeds if all(data[n][profile]["seeds"][s].get(key) is not None for n in names)]
                if not used:
                    continue
                cell = {c: [data[n][profile]["seeds"][s][key] for s in used] for c, n in f.cells.items()}
                row["means"][key] = {f"{o}|{n}": t_interval(v).as_dict() for (o, n), v in cell.items()}
                row["effects"][key] = {}
                for effect, (meaning, sides, weights) in effects(f.factor).items():
                    diffs = [sum(w * m.score(cell[c][i]) for c, w in weights.items()) for i in range(len(used))]
                    row["effects"][key][effect] = {
                        "meaning": meaning,
                        "sides": list(sides),
                        "seeds": used,
                        "role": "primary" if key == "frechet" else "secondary",
                        **_test(diffs, m, f.family),
                    }
            rows.append(row)
    return rows


def _adjust(compared: list[dict[str, Any]], designs: list[dict[str, Any]]) -> None:
    """Every comparison and factorial effect here is exploratory (no plan fixed it before its runs): an estimate and
    its interval, with no p-value adjusted over a family and no verdict (arena/stats.py `explore`)."""
    for row in compared:
        for key, t in row["metrics"].items():
            t.update(explore(t.pop("_diffs"), METRIC[key], FAMILIES[row["family"]].kind))
    for row in designs:
        for key, effects in row["effects"].items():
            for t in effects.values():
                t.update(explore(t.pop("_diffs"), METRIC[key], FAMILIES[row["family"]].kind))


CURVE_KEYS = ("curve_checkerboard_ratio", "curve_frechet")


def replicate_curves(store: Path, name: str, profile: str) -> dict[str, list[dict[str, Any]]]:
    """Per epoch, the training curves across the seeds that recorded them: mean with a t-interval (the band the
    curve charts draw), and how many seeds it rests on."""
    per_key: dict[str, dict[int, list[float]]] = {k: {} for k in CURVE_KEYS}
    for n, prof, _seed, run in runs(store):
        if n != name or prof != profile:
            continue
        try:
            manifest = read_manifest(run / name)
        except RecordError:
            continue
        if manifest.get("study"):  # a plan's run: never in the exploratory bands
            continue
        history = manifest.get("history") or []
        for h in history:
            for k in CURVE_KEYS:
                if h.get(k) is not None:
                    per_key[k].setdefault(int(h["epoch"]), []).append(float(h[k]))
    return {
        k: [{"epoch": e, **t_interval(v).as_dict()} for e, v in sorted(by_epoch.items())]
        for k, by_epoch in per_key.items()
        if by_epoch
    }


def seed_list(raw: str) -> list[int]:
    """`1,2,3` or `1-5` → seeds; the CLI's parser for --seeds."""
    seeds: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if re.fullmatch(r"\d+-\d+", part):
            lo, hi = map(int, part.split("-"))
            seeds += list(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ValueError(f"--seeds {raw!r}: expected seeds like 1,2,3 or 1-5")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {raw!r}: expected distinct seeds like 1,2,3 or 1-5")
    return seeds


def epoch_jitter(store: Path, family: str, curve: str, last: int, log_scale: bool = False) -> tuple[float, int]:
    """Median |change| of a training curve between consecutive epochs over the last `last` epochs of every shipped run
    of a family (served and replicates), and how many epoch pairs it rests on: the basis of each declared δ."""
    changes: list[float] = []
    store = Path(store)
    for manifest in sorted(store.glob(f"{family}_*/{MANIFEST}")) + sorted(
        store.glob(f"{REPLICATES}/*/{family}_*/{MANIFEST}")
    ):
        try:
            history = read_manifest(manifest.parent).get("history") or []
        except RecordError:
            continue
        values = [h[curve] for h in history if h.get(curve) is not None]
        if len(values) < last + 1:
            continue
        tail = [math.log(v) for v in values[-(last + 1) :]] if log_scale else values[-(last + 1) :]
        changes += [abs(b - a) for a, b in zip(tail, tail[1:])]
    return (float(np.median(changes)), len(changes)) if changes else (float("nan"), 0)
