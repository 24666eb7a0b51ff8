"""The sweep's Ray engine (`pip install 'deconv-arena[ray]'`): each unit's training and each run's evaluation is a
Ray task with resource requests, retried when its worker dies; results come back to the driver, which alone writes
the store.

- The driver puts MNIST and the store's evaluator into Ray's object store once; a task unpacks the evaluator into a
  scratch store of its own, trains there and returns the installed runs as tar bytes. The driver installs each
  returned run atomically (staging folder, then a rename), once: a retried task's result replaces nothing twice.
- Checkpoints go to --workdir on the worker's node. On one machine (or a shared filesystem) a retried task resumes
  from the last epoch its killed attempt finished; on a cluster without one it starts that run over.
- `--address` / $RAY_ADDRESS joins a running cluster; without either, Ray starts a local one for the sweep."""

from __future__ import annotations

import functools
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

from arena.records import install_dir, staging_dir
from training.sweeps.planning import Plan, PlannedRun, unit_label
from training.sweeps.stages import (
    EVALUATOR,
    SWEEP,
    Outcome,
    Policy,
    Progress,
    evaluate_unit,
    job_environment,
    record,
    run,
    state,
    train_unit,
)


class RayUnavailable(Exception):
    pass


def pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", dereference=True) as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def unpack(blob: bytes, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")


def install(blob: bytes, target: Path) -> None:
    """Unpack a returned run into a staging folder beside `target`, then swap it in."""
    staging = staging_dir(target.parent, target.name)
    try:
        unpack(blob, staging)
        install_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def node_id() -> str:
    """The Ray node this task runs on."""
    import ray

    return ray.get_runtime_context().get_node_id()


def task_log(unit: tuple[PlannedRun, ...]) -> Callable[[str], None]:
    """The log of a unit's training task: each line to the task's output, which Ray forwards to the driver."""
    return functools.partial(print, flush=True)


def train_task(jobs: list[dict], evaluator: bytes, data, workdir: str, policy: dict) -> dict[str, Any]:
    """Runs in a Ray worker: train the unit in a scratch store and return each run as tar bytes."""
    from training.sweeps.stages import limit_threads

    limit_threads()
    unit = tuple(PlannedRun.from_dict(d) for d in jobs)
    with tempfile.TemporaryDirectory(prefix="arena-sweep-") as tmp:
        scratch = Path(tmp)
        if evaluator:
            unpack(evaluator, scratch / EVALUATOR)
        train_unit(unit, scratch, Path(workdir), data, task_log(unit), Policy(**policy))
        runs = {j.label: pack(j.layout(scratch).folder) for j in unit}
        return {"runs": runs, "node": node_id(), "pid": os.getpid()}


def evaluate_task(job: dict, run: bytes, evaluator: bytes, data) -> dict[str, Any]:
    """Runs in a Ray worker: evaluate one installed run; returns the run folder with its metrics and report."""
    from training.sweeps.stages import limit_threads

    limit_threads()
    j = PlannedRun.from_dict(job)
    with tempfile.TemporaryDirectory(prefix="arena-eval-") as tmp:
        scratch = Path(tmp)
        unpack(evaluator, scratch / EVALUATOR)
        unpack(run, j.layout(scratch).folder)
        if evaluate_unit((j,), scratch, data, print):
            raise RuntimeError(f"evaluation of {j.label} failed (see the task's log)")
        return {"run": pack(j.layout(scratch).folder), "node": node_id()}


class RayEngine:
    """Each unit's training, then each run's evaluation, as Ray tasks with resource requests, retried `retries`
    times when a worker dies; the driver installs what the tasks return (and alone writes the store)."""

    capacity = ""

    def __init__(
        self,
        store: Path,
        workdir: Path,
        data_path: Path | None,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        retries: int = 3,
        policy: Policy = SWEEP,
    ):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise RayUnavailable("--engine ray needs Ray: pip install 'deconv-arena[ray]'") from None
        self.store, self.workdir, self.data_path, self.policy = Path(store), Path(workdir), data_path, policy
        self.address, self.retries = address or os.environ.get("RAY_ADDRESS"), retries
        self.opts = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": retries}
        self.pending: dict[Any, tuple[str, tuple[PlannedRun, ...]]] = {}
        self.stopping = False

    def stop(self, *_signal) -> None:
        """Cancel the tasks not yet returned (a training task's checkpoints stay: the next run resumes them)."""
        import ray

        self.stopping = True
        for ref in list(self.pending):
            ray.cancel(ref, force=True)

    def run(self, units: list[tuple[PlannedRun, ...]], log: Callable[[str], None]) -> Outcome:
        import ray

        env = job_environment(max(1, int(self.opts["num_cpus"])), None, None)
        env.update({k: os.environ[k] for k in ("KERAS_BACKEND", "MNIST_NPZ") if os.environ.get(k)})
        ray.init(address=self.address, runtime_env={"env_vars": env}, log_to_driver=True, configure_logging=False)
        try:
            nodes = [n for n in ray.nodes() if n["Alive"]]
            log(f"Ray: {len(nodes)} nodes, {ray.cluster_resources().get('CPU', 0):g} CPUs")
            return self._drive(ray, units, log)
        finally:
            ray.shutdown()

    def _drive(self, ray, units: list[tuple[PlannedRun, ...]], log: Callable[[str], None]) -> Outcome:
        from training.loop.data import load_mnist

        out = Outcome()
        self.data = ray.put(load_mnist(self.data_path))
        ev_dir = self.store / EVALUATOR
        self.evaluator = ray.put(pack(ev_dir) if ev_dir.is_dir() else b"")
        self.train = ray.remote(train_task).options(**self.opts)
        self.evaluate = ray.remote(evaluate_task).options(**self.opts)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for unit in units:
            self._submit(unit)
        log(f"{len(self.pending)} tasks submitted")
        with Progress(self.workdir, log) as progress:
            progress.running.update(u for stage, u in self.pending.values() if stage == "train")
            while self.pending:
                [ref], _ = ray.wait(list(self.pending), num_returns=1)
                stage, unit = self.pending.pop(ref)
                progress.running.discard(unit)
                self._returned(ray, ref, stage, unit, out, log)
        return out

    def _submit(self, unit: tuple[PlannedRun, ...]) -> None:
        """A training task for the unit's runs to train; an evaluation task for each installed, unevaluated run."""
        states = {j: state(j, self.store, self.workdir) for j in unit}
        for j in unit:
            if states[j] == "evaluate":
                self._evaluate(j, pack(j.layout(self.store).folder))
        if unit := tuple(j for j in unit if states[j] in ("new", "resume")):
            work = str(self.workdir.resolve())
            ref = self.train.remote([j.as_dict() for j in unit], self.evaluator, self.data, work, self.policy.as_dict())
            self.pending[ref] = ("train", unit)

    def _evaluate(self, job: PlannedRun, run: bytes) -> None:
        self.pending[self.evaluate.remote(job.as_dict(), run, self.evaluator, self.data)] = ("evaluate", (job,))

    def _returned(
        self, ray, ref, stage: str, unit: tuple[PlannedRun, ...], out: Outcome, log: Callable[[str], None]
    ) -> None:
        """Install what a task returned (and submit a trained run's evaluation), or record its failure."""
        try:
            result = ray.get(ref)
        except Exception as e:  # noqa: BLE001 (a task that failed after its retries: recorded, the rest go on)
            if self.stopping:
                out.stopped += [j.label for j in unit]
                return
            cause = getattr(e, "cause", None) or e
            for j in unit:
                record(j, self.store, stage if stage == "evaluate" else "training", cause)
                out.failed[j.label] = f"{stage}: {type(cause).__name__}: {cause}"
            log(f"FAILED {stage} {unit_label(unit)}: {type(cause).__name__}: {cause}")
            return
        if stage == "train":
            for j in unit:
                install(result["runs"][j.label], j.layout(self.store).folder)
                out.where[j.label] = result["node"]
                self._evaluate(j, result["runs"][j.label])
            log(f"trained {unit_label(unit)} on node {result['node'][:8]}")
            return
        (j,) = unit
        install(result["run"], j.layout(self.store).folder)
        if j.seed is not None:
            j.layout(self.store).failure.unlink(missing_ok=True)
        out.done.append(j.label)
        log(f"evaluated {j.label} on node {result['node'][:8]}")


def run_ray(
    plan: Plan,
    store: Path,
    workdir: Path,
    data_path: Path | None,
    vmap: bool = False,
    address: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    retries: int = 3,
    log: Callable[[str], None] = print,
) -> Outcome:
    """The front door on the Ray engine."""
    engine = RayEngine(store, workdir, data_path, address, cpus, gpus, retries)
    return run(plan, engine, store, workdir, vmap=vmap, log=log)
