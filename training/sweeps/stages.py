"""The one front door for training: `run(plan, engine)` walks a plan's jobs (training/sweeps/planning.py) through the
stages — what is done is skipped, the rest trained (resumed where a checkpoint is), evaluated, failures recorded — on an
engine: this process (`deconv-arena train`), a process per unit side by side, or a Ray cluster (`deconv-arena sweep`,
training/sweeps/engines.py and training/sweeps/ray_engine.py). Every engine has the same `run(units, log) -> Outcome`
and `stop()`; where each run's files live is arena/layout.py's.

A sweep is idempotent: a job whose run is installed with the same settings and evaluated is skipped; one with a
checkpoint resumes from it; one installed but not evaluated is only evaluated. Each run is installed atomically
(staging folder, then a rename); a failed replicate is recorded beside the others as failed, with its error.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from arena.layout import REPLICATES
from arena.records import RecordError, read_manifest
from arena.replicates import record_failure
from arena.variants import VARIANTS
from training.sweeps.planning import Plan, PlannedRun, unit_label

THREADS = "ARENA_JOB_THREADS"  # a job's share of the cores, applied to TensorFlow's pools in the job's process
# the store's classifier (training/evaluation/classifier.py NAME): the curves and the evaluation need it
EVALUATOR = "_evaluator"


@dataclass(frozen=True)
class Policy:
    """What the stages do with a job's earlier run. The sweep's (the default) skips finished runs, only evaluates
    installed ones and resumes wherever every run of a unit has a checkpoint; `deconv-arena train` trains every job
    again, resumes only with --resume, and leaves a served run unevaluated with its error raised as it is."""

    redo: bool = False  # train every job, finished or not
    resume: bool | None = None  # None: wherever a checkpoint is (never under a study); else --resume or not
    evaluate: bool = True
    curves: bool | None = None  # None: where the store has an evaluator; else --no-curves or not
    raise_errors: bool = False  # a failure is raised, not recorded (a served run's `train`)
    # the analysis plan file the runs are trained under (`sweep --study`): each manifest records it, with its
    # SHA-256, and its stopping rule holds: a run cut off is trained again whole, never resumed
    study: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SWEEP = Policy()


# ---- what a job's run looks like on disk


def state(job: PlannedRun, store: Path, workdir: Path) -> str:
    """ "done" (installed with these settings and evaluated), "evaluate" (installed, not evaluated), "resume" (a
    checkpoint to continue from) or "new"."""
    layout = job.layout(store, workdir)
    try:
        manifest = read_manifest(layout.folder)
    except RecordError:
        manifest = None
    config = job.config()
    if manifest and manifest.get("config") == config.as_dict() and manifest.get("epochs_done", 0) >= config.epochs:
        return "done" if layout.metrics.is_file() else "evaluate"
    return "resume" if layout.checkpoint.is_file() else "new"


def progress_line(unit: tuple[PlannedRun, ...], workdir: Path) -> str | None:
    """A running unit's epoch, seconds per epoch and ETA, from its first run's status file."""
    from training.loop.epochs import eta_text

    try:
        p = json.loads(unit[0].layout(Path(), workdir).status.read_text())
    except (OSError, ValueError):
        return None
    if not p or not p.get("epoch"):
        return None
    line = f"epoch {p['epoch']}/{p['epochs']}"
    if p.get("seconds_per_epoch"):
        left = (p["epochs"] - p["epoch"]) * p["seconds_per_epoch"]
        line += f", {p['seconds_per_epoch']:.1f} s/epoch, ETA {eta_text(left)}"
    return line


class Progress:
    """While an engine runs: every `interval` seconds, a line for each running unit whose progress moved."""

    def __init__(self, workdir: Path, log: Callable[[str], None], interval: float = 30.0):
        self.workdir, self.log, self.interval = Path(workdir), log, interval
        self.running: set[tuple[PlannedRun, ...]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()

    def _watch(self) -> None:
        shown: dict[tuple[PlannedRun, ...], str] = {}
        while not self._stop.wait(self.interval):
            for unit in list(self.running):
                line = progress_line(unit, self.workdir)
                if line and shown.get(unit) != line:
                    shown[unit] = line
                    self.log(f"  {unit_label(unit)}: {line}")


# ---- the stages, run inside a job's process (local engine), task (Ray) or this process (train)


def train_unit(
    unit: tuple[PlannedRun, ...],
    store: Path,
    workdir: Path,
    data,
    log: Callable[[str], None] = print,
    policy: Policy = SWEEP,
) -> None:
    """Train the unit's runs (resuming as the policy says) and install them into `store`."""
    from training.loop.epochs import train_variant

    variant = VARIANTS[unit[0].variant]
    resume = _resume(unit, store, workdir, policy, log)
    study = _study_record(policy)
    curves = store if policy.curves or (policy.curves is None and (Path(store) / EVALUATOR).is_dir()) else None
    if len(unit) > 1:
        from training.loop.vmapped import train_vmapped

        seeds = [j.seed for j in unit]
        train_vmapped(
            variant, unit[0].config(), seeds, data, store, workdir, resume, log, curves_from=curves, study=study
        )
        return
    layout = unit[0].layout(store, workdir)
    train_variant(
        variant, unit[0].config(), data, layout.store_root, layout.work_root, resume, log, curves, study=study
    )


def _study_record(policy: Policy) -> dict[str, Any] | None:
    """The plan the policy trains under, as each manifest records it (its file, id, version and SHA-256)."""
    from arena.plans import load_plan

    return load_plan(Path(policy.study)).record() if policy.study else None


def _resume(
    unit: tuple[PlannedRun, ...], store: Path, workdir: Path, policy: Policy, log: Callable[[str], None]
) -> bool:
    if (
        policy.resume is not None
    ):  # `train --resume`: a replicate without a checkpoint starts over, a served run says so
        return policy.resume and all(j.seed is None or j.layout(store, workdir).checkpoint.is_file() for j in unit)
    # a study's stopping rule decides: v1 of the GAN plan discards a cut-off run, the VAE plan resumes it
    from arena.plans import load_plan

    states = [state(j, store, workdir) for j in unit]
    resumable = not policy.study or load_plan(Path(policy.study)).resumable
    resume = all(st == "resume" for st in states) and resumable
    if not resume and "resume" in states:
        log(f"{unit_label(unit)}: checkpoint discarded (the study's plan never resumes a run); training again from 0")
    return resume


def evaluate_unit(
    unit: tuple[PlannedRun, ...], store: Path, data, log: Callable[[str], None] = print
) -> list[PlannedRun]:
    """Evaluate the unit's installed runs; returns the jobs whose evaluation failed (recorded for replicates)."""
    from training.evaluation.evaluate import evaluate_all, evaluate_replicates

    served = [j for j in unit if j.seed is None]
    failed: list[PlannedRun] = []
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


def record(job: PlannedRun, store: Path, stage: str, error: BaseException) -> None:
    """A failed replicate is listed as failed (replicates.json); a served run keeps its previous installation."""
    if job.seed is not None:
        record_failure(job.layout(store).failure, stage, error)


def run_unit(
    unit: tuple[PlannedRun, ...],
    store: Path,
    workdir: Path,
    data,
    log: Callable[[str], None] = print,
    policy: Policy = SWEEP,
) -> dict[str, str]:
    """Both stages of one unit in this process; failures recorded, never raised (unless the policy raises them).
    Returns {job label: why} of the jobs that failed."""
    to_train = unit if policy.redo else tuple(j for j in unit if state(j, store, workdir) != "evaluate")
    failed = _train_stage(to_train, store, workdir, data, log, policy) if to_train else {}
    trained = tuple(j for j in unit if j.label not in failed)
    if trained and policy.evaluate:
        for j in evaluate_unit(trained, store, data, log):
            failed[j.label] = "evaluation failed (see the log)"
    return failed


def _train_stage(unit, store: Path, workdir: Path, data, log, policy: Policy) -> dict[str, str]:
    try:
        train_unit(unit, store, workdir, data, log, policy)
    except Exception as e:  # noqa: BLE001 (recorded as the job's failure)
        if policy.raise_errors:
            raise
        for j in unit:
            record(j, store, "training", e)
        where = f"; recorded in {unit[0].layout(store).failure}" if len(unit) == 1 and unit[0].seed is not None else ""
        log(f"{unit_label(unit)}: training FAILED ({type(e).__name__}: {e}){where}")
        return {j.label: f"training: {type(e).__name__}: {e}" for j in unit}
    for j in unit:
        if j.seed is not None:
            j.layout(store).failure.unlink(missing_ok=True)
    return {}


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


# ---- the front door


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
        from training.loop.epochs import eta_text

        text = (
            f"sweep: {len(self.done)} done, {len(self.failed)} failed, {len(self.skipped)} skipped (already done)"
            + (f", {len(self.stopped)} stopped (run the same command again to resume)" if self.stopped else "")
            + f" in {eta_text(self.seconds)}"
        )
        return text + "".join(f"\n  failed: {k}: {v}" for k, v in self.failed.items())


class Engine(Protocol):
    """Where a plan's units run: this process, a process per unit, or a Ray cluster."""

    capacity: str  # how many run at once, for the plan's opening line ("" when one after another)

    def run(self, units: list[tuple[PlannedRun, ...]], log: Callable[[str], None]) -> Outcome:
        """Run each unit's stages; its Outcome says which jobs were done, failed or stopped."""
        ...

    def stop(self, *_signal) -> None:
        """Stop the running units (they resume on the next run) and start no other."""
        ...


def pending(plan: Plan, store: Path, workdir: Path, vmap: bool, policy: Policy) -> tuple[list[str], list[tuple]]:
    """(labels of the finished jobs, skipped; the units left to run, without them)."""
    skipped, todo = [], []
    for unit in plan.units(vmap):
        done = set() if policy.redo else {j for j in unit if state(j, store, workdir) == "done"}
        skipped += [j.label for j in unit if j in done]
        if rest := tuple(j for j in unit if j not in done):
            todo.append(rest)
    return skipped, todo


def run(
    plan: Plan,
    engine: Engine,
    store: Path,
    workdir: Path,
    vmap: bool = False,
    policy: Policy = SWEEP,
    deadline: float | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Run a plan to completion on `engine`: finished jobs skipped, the rest run (with `deadline`, stopped after so
    many seconds: run the same plan again to resume), then the store's shared files written once."""
    store, workdir, t0 = Path(store), Path(workdir), time.monotonic()
    skipped, todo = pending(plan, store, workdir, vmap, policy)
    log(f"{plan.describe()}: {len(skipped)} already done, {sum(map(len, todo))} to run{engine.capacity}")
    timer = threading.Timer(deadline, engine.stop) if deadline else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        out = engine.run(todo, log)
    finally:
        if timer:
            timer.cancel()
    out.skipped = skipped
    if policy.evaluate:
        finish(plan, store, out)
    out.seconds = time.monotonic() - t0
    return out


def finish(plan: Plan, store: Path, out: Outcome) -> None:
    """Once, by the one process that owns the store, after jobs that ran side by side: the served runs' rows of
    summary.json and the replicate statistics."""
    from training.evaluation.evaluate import refresh_summary, write_statistics

    served = [j.variant for j in plan.jobs if j.seed is None and j.label in out.done]
    if served:
        refresh_summary(store, served)
    if any(j.seed is not None for j in plan.jobs) and (store / REPLICATES).is_dir():
        write_statistics(store)
