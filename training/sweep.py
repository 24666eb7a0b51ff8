"""`deconv-arena sweep`: a grid of trainings — variants × seeds × profile — planned from the variant table (or a
small TOML file) and run to completion, on this machine (`local`) or on a Ray cluster (`ray`, training/sweep_ray.py).

A job is one run: a replicate (variant, profile, seed), or with `served` the variant's served run. The sweep is
idempotent: a job whose run is installed with the same settings and evaluated is skipped; one with a checkpoint
resumes from it; one installed but not evaluated is only evaluated. Each run is installed atomically (staging
folder, then a rename); a failed job is recorded beside the others as a failed replicate with its error.

A plan file holds the same choices as the command line, as one table or several `[[group]]` tables:

    factorial = "gan"     # or family = "vae", comparison = "gan_upsample_matched", variants = ["gan_transpose"]
    seeds = "1-10"        # or [1, 2, 3]; omit with served = true
    profile = "paper"     # paper | quick | smoke
    epochs = 50           # optional overrides: epochs, batch_size, learning_rate, train_limit
    precision = "highest" # optional: JAX's float32 matmul precision for the jobs (JAX_DEFAULT_MATMUL_PRECISION)
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from arena.manifest import MANIFEST
from arena.replicates import REPLICATES, record_failure, replicate_store, seed_list
from arena.variants import FAMILIES, VARIANTS, comparisons, factorials
from training.config import PROFILES, TrainConfig, profile_config

OVERRIDES = ("epochs", "batch_size", "learning_rate", "train_limit")
SELECTORS = ("factorial", "family", "comparison", "variants")
PLAN_KEYS = (*SELECTORS, "seeds", "profile", "served", "precision", *OVERRIDES)
PRECISIONS = ("default", "high", "highest")
THREADS = "ARENA_JOB_THREADS"  # a job's share of the cores, applied to TensorFlow's pools in the job's process


class PlanError(ValueError):
    """A plan a user got wrong; the message names the value and what is accepted."""


@dataclass(frozen=True)
class Job:
    """One run of the grid."""

    variant: str
    profile: str
    seed: int | None  # None: the served run (store/<variant>, the profile's seed)
    overrides: tuple[tuple[str, Any], ...] = ()
    precision: str | None = None

    @property
    def label(self) -> str:
        return f"{self.variant} {self.profile} " + ("served" if self.seed is None else f"seed {self.seed}")

    @property
    def slug(self) -> str:
        return f"{self.variant}-{self.profile}-" + ("served" if self.seed is None else f"seed{self.seed}")

    def config(self) -> TrainConfig:
        c = profile_config(self.profile, VARIANTS[self.variant].family).replace(**dict(self.overrides))
        return c if self.seed is None else c.replace(seed=self.seed)

    def store_root(self, store: Path) -> Path:
        """The store its run is installed into: the primary store, or its replicate store."""
        return Path(store) if self.seed is None else replicate_store(store, self.profile, self.seed)

    def model_dir(self, store: Path) -> Path:
        return self.store_root(store) / self.variant

    def run_dir(self, workdir: Path) -> Path:
        """Its checkpoint folder (where `deconv-arena train` puts the same run's)."""
        if self.seed is None:
            return Path(workdir) / self.variant
        return Path(workdir) / REPLICATES / f"{self.profile}-seed{self.seed}" / self.variant

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "overrides": dict(self.overrides)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Job":
        return cls(d["variant"], d["profile"], d["seed"], tuple(sorted(d["overrides"].items())), d.get("precision"))

    def unit_key(self) -> tuple:
        """Jobs with the same key differ only by seed: one vmapped program can train them together."""
        return (self.variant, self.profile, self.overrides, self.precision, self.seed is None)


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]

    def units(self, vmap: bool) -> list[tuple[Job, ...]]:
        """What runs as one process or task: each job alone, or with `vmap` the replicates of one variant and
        settings together (served runs always alone)."""
        if not vmap:
            return [(j,) for j in self.jobs]
        groups: dict[tuple, list[Job]] = {}
        for j in self.jobs:
            groups.setdefault(j.unit_key() if j.seed is not None else (j,), []).append(j)
        return [tuple(g) for g in groups.values()]

    def describe(self) -> str:
        names = sorted({j.variant for j in self.jobs}, key=list(VARIANTS).index)
        seeds = sorted({j.seed for j in self.jobs if j.seed is not None})
        return f"{len(self.jobs)} runs: {', '.join(names)}" + (f" × seeds {_ranges(seeds)}" if seeds else "")


def _ranges(seeds: list[int]) -> str:
    out, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        out.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(out)


def select(
    factorial: str | None = None,
    family: str | None = None,
    comparison: str | None = None,
    variants: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """Variant names from the table, in table order: a family's factorial cells, a whole family, a comparison
    (the variant and its reference), or names."""
    chosen: set[str] = set()
    if factorial is not None:
        cells = {f.family: f for f in factorials()}
        if factorial not in cells:
            raise PlanError(f"factorial {factorial!r}: the table declares one for {', '.join(sorted(cells)) or 'none'}")
        chosen |= set(cells[factorial].cells.values())
    if family is not None:
        if family not in FAMILIES:
            raise PlanError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
        chosen |= {n for n, v in VARIANTS.items() if v.family == family}
    if comparison is not None:
        pairs = {v.name: (v.name, r.name) for v, r in comparisons()}
        if comparison not in pairs:
            raise PlanError(f"comparison {comparison!r}: name a variant that has a reference ({', '.join(pairs)})")
        chosen |= set(pairs[comparison])
    for name in variants:
        if name not in VARIANTS:
            raise PlanError(f"variant {name!r} is not in the variant table ({', '.join(VARIANTS)})")
        chosen.add(name)
    if not chosen:
        raise PlanError(f"the plan selects no variant: give one of {', '.join(SELECTORS)}")
    return [n for n in VARIANTS if n in chosen]


def plan_group(
    *,
    seeds: list[int] | str | None = None,
    profile: str = "paper",
    served: bool = False,
    precision: str | None = None,
    factorial: str | None = None,
    family: str | None = None,
    comparison: str | None = None,
    variants: list[str] | tuple[str, ...] = (),
    **overrides: Any,
) -> list[Job]:
    if profile not in PROFILES:
        raise PlanError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    if precision is not None and precision not in PRECISIONS:
        raise PlanError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise PlanError(f"unknown setting {unknown[0]!r}; accepted: {', '.join(PLAN_KEYS)}")
    for k, v in overrides.items():
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        if not ok or (k != "learning_rate" and not isinstance(v, int)):
            kind = "a number > 0" if k == "learning_rate" else "an integer ≥ 1"
            raise PlanError(f"{k} = {v!r}: must be {kind}")
    if isinstance(seeds, str):
        try:
            seeds = seed_list(seeds)
        except ValueError as e:
            raise PlanError(f"seeds: {e}") from None
    if served == bool(seeds):
        raise PlanError("give seeds (replicates) or served = true (the served runs), not both, not neither")
    if seeds is not None and (
        not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise PlanError(f'seeds = {seeds!r}: a list of integers or a range such as "1-10"')
    names = select(factorial, family, comparison, variants)
    frozen = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
    prec = None if precision in (None, "default") else precision
    if served:
        return [Job(n, profile, None, frozen, prec) for n in names]
    return [Job(n, profile, s, frozen, prec) for s in seeds for n in names]


def plan(groups: list[dict[str, Any]]) -> Plan:
    jobs: list[Job] = []
    for g in groups:
        for j in plan_group(**g):
            if j not in jobs:
                jobs.append(j)
    return Plan(tuple(jobs))


def interleaved(p: Plan) -> Plan:
    """A study's order: seed by seed, every cell of a seed before the next seed (so a drift in the machine over the
    sitting touches every cell alike)."""
    return Plan(tuple(sorted(p.jobs, key=lambda j: (j.seed is not None, j.seed or 0))))


def read_plan(path: Path) -> Plan:
    """A TOML plan file (see the module docstring)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise PlanError(f"plan file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"plan file {path} is not valid TOML ({e})") from None
    groups = doc.pop("group", [])
    if doc:
        groups = [doc, *groups]
    for g in groups:
        unknown = sorted(set(g) - set(PLAN_KEYS))
        if unknown:
            raise PlanError(f"plan file {path}: unknown key {unknown[0]!r}; accepted: {', '.join(PLAN_KEYS)}")
    if not groups:
        raise PlanError(f"plan file {path} plans nothing; see `deconv-arena sweep --help` for its keys")
    try:
        return plan(groups)
    except PlanError as e:
        raise PlanError(f"plan file {path}: {e}") from None


# ---- what a job's run looks like on disk


def state(job: Job, store: Path, workdir: Path) -> str:
    """ "done" (installed with these settings and evaluated), "evaluate" (installed, not evaluated), "resume" (a
    checkpoint to continue from) or "new"."""
    from training.runner import CHECKPOINT

    mdir = job.model_dir(store)
    try:
        manifest = json.loads((mdir / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    config = job.config()
    if manifest and manifest.get("config") == config.as_dict() and manifest.get("epochs_done", 0) >= config.epochs:
        return "done" if (mdir / "metrics.json").is_file() else "evaluate"
    return "resume" if (job.run_dir(workdir) / CHECKPOINT).is_file() else "new"


def progress(job: Job, workdir: Path) -> dict[str, Any] | None:
    from training.runner import STATUS

    try:
        return json.loads((job.run_dir(workdir) / STATUS).read_text())
    except (OSError, ValueError):
        return None


def progress_line(unit: tuple[Job, ...], workdir: Path) -> str | None:
    from training.runner import eta_text

    p = progress(unit[0], workdir)
    if not p or not p.get("epoch"):
        return None
    line = f"epoch {p['epoch']}/{p['epochs']}"
    if p.get("seconds_per_epoch"):
        left = (p["epochs"] - p["epoch"]) * p["seconds_per_epoch"]
        line += f", {p['seconds_per_epoch']:.1f} s/epoch, ETA {eta_text(left)}"
    return line


def unit_label(unit: tuple[Job, ...]) -> str:
    if len(unit) == 1:
        return unit[0].label
    return f"{unit[0].variant} {unit[0].profile} seeds {_ranges(sorted(j.seed for j in unit))} (one program)"


# ---- the stages, run inside a job's process (local engine) or task (Ray)


def train_unit(unit: tuple[Job, ...], store: Path, workdir: Path, data, log: Callable[[str], None] = print) -> None:
    """Train the unit's runs (resuming where every one has a checkpoint) and install them into `store`."""
    from arena.plans import ENV
    from training.runner import train_variant

    variant = VARIANTS[unit[0].variant]
    # a study's stopping rule: a run cut off by a call's end is discarded and trained again whole, never resumed
    states = [state(j, store, workdir) for j in unit]
    resume = all(st == "resume" for st in states) and not os.environ.get(ENV)
    if not resume and "resume" in states:
        log(f"{unit_label(unit)}: checkpoint discarded (study runs are never resumed); training again from epoch 0")
    curves = store if (Path(store) / "_evaluator").is_dir() else None
    if len(unit) > 1:
        from training.vmapped import train_vmapped

        train_vmapped(
            variant, unit[0].config(), [j.seed for j in unit], data, store, workdir, resume, log, curves_from=curves
        )
        return
    job = unit[0]
    train_variant(
        variant, job.config(), data, job.store_root(store), job.run_dir(workdir).parent, resume, log, curves_from=curves
    )


def evaluate_unit(unit: tuple[Job, ...], store: Path, data, log: Callable[[str], None] = print) -> list[Job]:
    """Evaluate the unit's installed runs; returns the jobs whose evaluation failed (recorded for replicates)."""
    from training.evaluate import evaluate_all, evaluate_replicates

    served = [j for j in unit if j.seed is None]
    failed: list[Job] = []
    for j in served:
        try:
            evaluate_all([j.variant], store, data, log=log)
        except Exception as e:  # noqa: BLE001 (reported beside the others)
            log(f"{j.label}: evaluation FAILED ({type(e).__name__}: {e})")
            failed.append(j)
    reps = [j for j in unit if j.seed is not None]
    if reps:
        bad = set(evaluate_replicates(store, data, only={(j.variant, j.profile, j.seed) for j in reps}, log=log))
        failed += [j for j in reps if j.seed in bad]
    return failed


def record(job: Job, store: Path, stage: str, error: BaseException) -> None:
    """A failed replicate is listed as failed (replicates.json); a served run keeps its previous installation."""
    if job.seed is not None:
        record_failure(job.store_root(store), job.variant, stage, error)


def job_environment(threads: int | None, gpu_share: float | None, precision: str | None) -> dict[str, str]:
    """Environment of one job: its share of the cores (BLAS/OpenMP pools, TensorFlow's thread pools via
    ARENA_JOB_THREADS), of the GPU's memory (JAX), and the float32 matmul precision."""
    env: dict[str, str] = {"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if threads:
        n = str(threads)
        env.update(OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n, **{THREADS: n})
    if gpu_share:
        env.update(XLA_PYTHON_CLIENT_PREALLOCATE="false", XLA_PYTHON_CLIENT_MEM_FRACTION=f"{gpu_share:.3f}")
    if precision:
        env["JAX_DEFAULT_MATMUL_PRECISION"] = precision
    return env


def limit_threads() -> None:
    """Apply ARENA_JOB_THREADS to TensorFlow's pools (before any TensorFlow op runs)."""
    n = int(os.environ.get(THREADS) or 0)
    if n and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(min(n, 2))


# ---- the local engine


@dataclass
class Outcome:
    """What became of each job."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    where: dict[str, str] = field(default_factory=dict)  # job label -> node that ran it (Ray)

    def summary(self) -> str:
        from training.runner import eta_text

        text = (
            f"sweep: {len(self.done)} done, {len(self.failed)} failed, {len(self.skipped)} skipped (already done)"
            + (f", {len(self.stopped)} stopped (run the same command again to resume)" if self.stopped else "")
            + f" in {eta_text(self.seconds)}"
        )
        return text + "".join(f"\n  failed: {k}: {v}" for k, v in self.failed.items())


class Children:
    """The sweep's running job processes. `stop()` (SIGTERM/SIGINT to the sweep, or its deadline) terminates them —
    and only them — and keeps jobs not yet started from starting; a stopped job resumes on the next run."""

    def __init__(self):
        self.lock, self.procs, self.stopping = threading.Lock(), set(), False

    def start(self, argv: list[str], log, env: dict[str, str]) -> subprocess.Popen | None:
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            self.procs.add(proc)
            return proc

    def finish(self, proc: subprocess.Popen) -> int:
        code = proc.wait()
        with self.lock:
            self.procs.discard(proc)
        return code

    def stop(self, *_signal) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.procs:
                proc.terminate()


def run_local(
    plan: Plan,
    store: Path,
    workdir: Path,
    data: Path | None,
    parallel: int = 1,
    vmap: bool = False,
    gpu: bool = False,
    deadline: float | None = None,
    log: Callable[[str], None] = print,
    children: Children | None = None,
    interval: float = 30.0,
) -> Outcome:
    """Each unit in its own process (`python -m training.sweep`), `parallel` side by side, each with its share of
    the cores (and of the GPU's memory with `gpu`)."""
    store, workdir = Path(store), Path(workdir)
    t0, out = time.monotonic(), Outcome()
    children = children or Children()
    threads = max(1, (os.cpu_count() or 1) // parallel)
    todo = []
    for unit in plan.units(vmap):
        states = {j: state(j, store, workdir) for j in unit}
        out.skipped += [j.label for j in unit if states[j] == "done"]
        unit = tuple(j for j in unit if states[j] != "done")
        if unit:
            todo.append(unit)
    logs = workdir / "sweep"
    logs.mkdir(parents=True, exist_ok=True)
    log(f"{plan.describe()}: {len(out.skipped)} already done, {sum(map(len, todo))} to run, {parallel} at once")
    timer = threading.Timer(deadline, children.stop) if deadline else None
    if timer:
        timer.daemon = True
        timer.start()
    running: dict[tuple[Job, ...], str] = {}

    def one(unit: tuple[Job, ...]) -> None:
        label = unit_label(unit)
        env = {**os.environ, **job_environment(threads, 0.9 / parallel if gpu else None, unit[0].precision)}
        spec = {"jobs": [j.as_dict() for j in unit], "store": str(store), "workdir": str(workdir), "data": data}
        with open(logs / f"{unit[0].slug}.log", "a") as f:
            proc = children.start([sys.executable, "-m", "training.sweep", json.dumps(spec, default=str)], f, env)
            if proc is None:
                out.stopped += [j.label for j in unit]
                return
            running[unit] = ""
            log(f"started {label} (log: {logs / (unit[0].slug + '.log')})")
            code = children.finish(proc)
            running.pop(unit, None)
        if children.stopping and code != 0:
            out.stopped += [j.label for j in unit]
            return
        result = _read_result(logs / f"{unit[0].slug}.log")
        for j in unit:
            if j.label in result.get("failed", {}):
                out.failed[j.label] = result["failed"][j.label]
            elif code == 0:
                out.done.append(j.label)
            else:  # the process died before it could record anything (killed, out of memory)
                why = f"the job's process exited with status {code} (see {logs / (unit[0].slug + '.log')})"
                record(j, store, "training", RuntimeError(why))
                out.failed[j.label] = why
        log(f"finished {label}: exit {code}")

    stop_monitor = threading.Event()

    def monitor() -> None:
        shown: dict[tuple[Job, ...], str] = {}
        while not stop_monitor.wait(interval):
            for unit in list(running):
                line = progress_line(unit, workdir)
                if line and shown.get(unit) != line:
                    shown[unit] = line
                    log(f"  {unit_label(unit)}: {line}")

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(max(1, parallel)) as pool:
            list(pool.map(one, todo))
    finally:
        stop_monitor.set()
        if timer:
            timer.cancel()
    finish(plan, store, out)
    out.seconds = time.monotonic() - t0
    return out


def finish(plan: Plan, store: Path, out: Outcome) -> None:
    """Once, by the one process that owns the store, after jobs that ran side by side: the served runs' rows of
    summary.json and the replicate statistics."""
    from training.evaluate import refresh_summary, write_statistics

    served = [j.variant for j in plan.jobs if j.seed is None and j.label in out.done]
    if served:
        refresh_summary(store, served)
    if any(j.seed is not None for j in plan.jobs) and (store / REPLICATES).is_dir():
        write_statistics(store)


RESULT = "SWEEP-RESULT "


def _read_result(path: Path) -> dict[str, Any]:
    """The last result line a job process printed into its log (its failures, by job label)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.startswith(RESULT)]
    except OSError:
        return {}
    return json.loads(lines[-1][len(RESULT) :]) if lines else {}


def run_unit(unit: tuple[Job, ...], store: Path, workdir: Path, data, log: Callable[[str], None] = print) -> dict:
    """Both stages of one unit in this process; failures recorded, never raised. Returns {"failed": {label: why}}."""
    failed: dict[str, str] = {}
    to_train = tuple(j for j in unit if state(j, store, workdir) != "evaluate")
    if to_train:
        try:
            train_unit(to_train, store, workdir, data, log)
        except Exception as e:  # noqa: BLE001 (recorded as the job's failure)
            for j in to_train:
                record(j, store, "training", e)
                failed[j.label] = f"training: {type(e).__name__}: {e}"
            log(f"{unit_label(to_train)}: training FAILED ({type(e).__name__}: {e})")
    trained = tuple(j for j in unit if j.label not in failed)
    if trained:
        for j in evaluate_unit(trained, store, data, log):
            failed[j.label] = "evaluation failed (see the log)"
    return {"failed": failed}


def _job_main(spec_text: str) -> int:
    # Everything the job will run, imported now: a job lives for hours, and a module first imported at its end would
    # come from whatever checkout is on disk by then (a job started before a `git pull` failed that way).
    import training.evaluate  # noqa: F401
    import training.runner  # noqa: F401
    import training.vmapped  # noqa: F401
    from training.data import load_mnist

    spec = json.loads(spec_text)
    limit_threads()
    unit = tuple(Job.from_dict(d) for d in spec["jobs"])
    data = load_mnist(Path(spec["data"]) if spec.get("data") else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped job leaves its checkpoint, nothing else
    result = run_unit(unit, Path(spec["store"]), Path(spec["workdir"]), data)
    print(RESULT + json.dumps(result), flush=True)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(_job_main(sys.argv[1]))
