"""The replicate store: one variant and protocol under other seeds, evaluated alike, summarised with intervals.

Layout: `<store>/_replicates/<profile>-seed<N>/<variant>/` is a models store of its own (manifest, metrics,
report; the generator too, though GAN weights are not committed). A replicate whose training or evaluation
failed leaves `<variant>.failed.json` there instead, and is listed as failed — never dropped from a mean in
silence. `<store>/replicates.json` holds the statistics the service shows (arena/stats.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import traceback
from pathlib import Path
from typing import Any

from arena.manifest import write_json_atomic
from arena.stats import LEVEL, METRICS, paired_difference, t_interval, verdict
from arena.variants import comparisons

REPLICATES = "_replicates"
INDEX = "replicates.json"
RUN_DIR = re.compile(r"^(?P<profile>[a-z]+)-seed(?P<seed>\d+)$")


def replicate_store(store: Path, profile: str, seed: int) -> Path:
    return Path(store) / REPLICATES / f"{profile}-seed{seed}"


def failure_path(rstore: Path, name: str) -> Path:
    return rstore / f"{name}.failed.json"


def record_failure(rstore: Path, name: str, stage: str, error: BaseException) -> None:
    rstore.mkdir(parents=True, exist_ok=True)
    write_json_atomic(failure_path(rstore, name), {
        "stage": stage, "error": f"{type(error).__name__}: {error}", "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "traceback": traceback.format_exception(error)[-3:],
    })


def runs(store: Path) -> list[tuple[str, str, int, Path]]:
    """(variant, profile, seed, folder) of every replicate run on disk, failed ones included."""
    root = Path(store) / REPLICATES
    out = []
    for run in sorted(root.iterdir()) if root.is_dir() else []:
        m = RUN_DIR.match(run.name)
        if not m:
            continue
        names = {p.name for p in run.iterdir() if p.is_dir() and (p / "manifest.json").is_file()} | {p.name[: -len(".failed.json")] for p in run.glob("*.failed.json")}
        out += [(n, m["profile"], int(m["seed"]), run) for n in sorted(names)]
    return out


def collect(store: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{variant: {profile: {"epochs", "seeds": {seed: summary row}, "failed": {seed: reason}}}} from disk."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, profile, seed, run in runs(store):
        slot = out.setdefault(name, {}).setdefault(profile, {"epochs": None, "seeds": {}, "failed": {}, "trained_on": {}})
        failure = failure_path(run, name)
        metrics_path = run / name / "metrics.json"
        if failure.is_file():
            f = json.loads(failure.read_text())
            slot["failed"][seed] = f"{f['stage']}: {f['error']}"
        elif not metrics_path.is_file():
            slot["failed"][seed] = "trained but not evaluated (run `deconv-arena evaluate --replicates`)"
        else:
            row = summary_row(json.loads(metrics_path.read_text()))
            slot["seeds"][seed] = row
            slot["trained_on"][seed] = trained_on(run / name)
            slot["epochs"] = row["epochs_done"]
    return out


def summary_row(r: dict[str, Any]) -> dict[str, Any]:
    """One model's headline figures, as summary.json and the replicate statistics keep them."""
    return {
        "frechet": r["frechet"]["distance"], "kid": r["kid"]["mean"], "legibility": r["legibility"]["mean_top_probability"],
        "share_confident": r["legibility"]["share_confident"], "checkerboard_ratio": r["checkerboard"]["nyquist_ratio"],
        "period4_ratio": r["checkerboard"]["period4_ratio"], **{k: r["prdc"][k] for k in ("precision", "recall", "density", "coverage")},
        "params": r["cost"]["params"], "ms_per_image_batch64": r["cost"]["ms_per_image_batch64"], "seconds_per_epoch": r["cost"]["seconds_per_epoch"],
        "epochs_done": r["cost"]["epochs_done"], "generator_sha256": r["generator_sha256"], "samples": r["samples"],
        "intervals": r.get("intervals"),
    }


def trained_on(run: Path) -> str:
    """Where a run trained, from its manifest: 'CPU, tensorflow, float32' or 'NVIDIA H200, jax, jax precision highest'
    (seeds of one variant may come from different machines; the tables say so)."""
    try:
        m = json.loads((run / "manifest.json").read_text())
    except (OSError, ValueError):
        return "unknown"
    hw, versions = m.get("hardware") or {}, m.get("versions") or {}
    # manifests from before the JAX backend name no backend, only the TensorFlow version they trained with
    backend = versions.get("backend") or ("tensorflow" if "tensorflow" in versions else "?")
    gpus = hw.get("gpus") or []
    where = ", ".join(g.split(":", 1)[-1] for g in gpus) if gpus else "CPU"
    precision = hw.get("float32_matmul", "float32" if not gpus else "precision not recorded")
    if " default (TF32" in precision:  # 'jax default (TF32 on NVIDIA GPUs of compute capability >= 8.0)'
        precision = f"TF32 ({precision.split(' ', 1)[0]} default)"
    return f"{where}, {backend}, {precision}"


def statistics(store: Path) -> dict[str, Any]:
    """Means with t-intervals per variant and budget, and paired differences with verdicts per comparison."""
    data = collect(store)
    models: dict[str, Any] = {}
    for name, profiles in data.items():
        models[name] = {}
        for profile, slot in profiles.items():
            seeds = sorted(slot["seeds"])
            samples = sorted({slot["seeds"][s].get("samples") for s in seeds} - {None})
            entry: dict[str, Any] = {"profile": profile, "epochs": slot["epochs"], "samples_per_run": samples[0] if len(samples) == 1 else samples, "seeds": seeds, "failed": {str(k): v for k, v in sorted(slot["failed"].items())}, "metrics": {}}
            entry["trained_on"] = {str(s): slot["trained_on"][s] for s in seeds}
            for m in METRICS:
                values = {s: slot["seeds"][s][m.key] for s in seeds if slot["seeds"][s].get(m.key) is not None}
                if values:
                    entry["metrics"][m.key] = {**t_interval(list(values.values())).as_dict(), "values": {str(s): v for s, v in values.items()}}
            entry["curves"] = replicate_curves(store, name, profile)
            models[name][profile] = entry
    compared = []
    for v, ref in comparisons():
        for profile in sorted(set(data.get(v.name, {})) & set(data.get(ref.name, {}))):
            a, b = data[v.name][profile]["seeds"], data[ref.name][profile]["seeds"]
            common = sorted(set(a) & set(b))
            if not common:
                continue
            row: dict[str, Any] = {"a": v.name, "b": ref.name, "question": v.question, "profile": profile, "seeds": common, "metrics": {}}
            for m in METRICS:
                va = {s: a[s][m.key] for s in common if a[s].get(m.key) is not None}
                vb = {s: b[s][m.key] for s in common if b[s].get(m.key) is not None}
                if va and vb:
                    diff, used = paired_difference(va, vb)
                    row["metrics"][m.key] = {"difference": diff.as_dict(), "seeds": used, "verdict": verdict(diff, m.better, v.name, ref.name)}
            compared.append(row)
    return {
        "level": LEVEL,
        "method": "mean over training seeds with a Student-t 95 % interval; comparisons paired by seed (same data order and noise), "
        "a winner named only when the paired difference's interval excludes zero",
        "metrics": [{"key": m.key, "label": m.label, "better": m.better} for m in METRICS],
        "models": models,
        "comparisons": compared,
    }


CURVE_KEYS = ("curve_checkerboard_ratio", "curve_frechet")


def replicate_curves(store: Path, name: str, profile: str) -> dict[str, list[dict[str, Any]]]:
    """Per epoch, the training curves across the seeds that recorded them: mean with a t-interval (the band the
    curve charts draw), and how many seeds it rests on."""
    per_key: dict[str, dict[int, list[float]]] = {k: {} for k in CURVE_KEYS}
    for n, prof, _seed, run in runs(store):
        if n != name or prof != profile:
            continue
        try:
            history = json.loads((run / name / "manifest.json").read_text()).get("history") or []
        except (OSError, ValueError):
            continue
        for h in history:
            for k in CURVE_KEYS:
                if h.get(k) is not None:
                    per_key[k].setdefault(int(h["epoch"]), []).append(float(h[k]))
    return {k: [{"epoch": e, **t_interval(v).as_dict()} for e, v in sorted(by_epoch.items())] for k, by_epoch in per_key.items() if by_epoch}


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

