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

import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from arena.manifest import install_dir, staging_dir
from training.sweep import (
    Job,
    Outcome,
    Plan,
    evaluate_unit,
    finish,
    job_environment,
    record,
    state,
    train_unit,
    unit_label,
)

EVALUATOR = "_evaluator"
TEST_HOLD = "ARENA_SWEEP_TEST_HOLD"  # tests: a folder; the first attempt of each training task waits there


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


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _hold_for_test(unit: tuple[Job, ...]) -> Callable[[str], None]:
    """The log of a training task. Under TEST_HOLD, the first task of the sweep to finish an epoch's checkpoint
    claims TEST_HOLD/worker.pid (its unit and pid) and waits there: the test kills that worker."""
    folder = os.environ.get(TEST_HOLD)

    def log(line: str) -> None:
        print(line, flush=True)
        if folder and " epoch 1/" in line:
            try:
                fd = os.open(Path(folder) / "worker.pid", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return
            os.write(fd, f"{unit[0].slug} {os.getpid()}".encode())
            os.close(fd)
            time.sleep(120)

    return log


def train_task(jobs: list[dict], evaluator: bytes, data, workdir: str) -> dict[str, Any]:
    """Runs in a Ray worker: train the unit in a scratch store and return each run as tar bytes."""
    from training.sweep import limit_threads

    limit_threads()
    unit = tuple(Job.from_dict(d) for d in jobs)
    with tempfile.TemporaryDirectory(prefix="arena-sweep-") as tmp:
        scratch = Path(tmp)
        if evaluator:
            unpack(evaluator, scratch / EVALUATOR)
        train_unit(unit, scratch, Path(workdir), data, _hold_for_test(unit))
        return {"runs": {j.label: pack(j.model_dir(scratch)) for j in unit}, "node": _node(), "pid": os.getpid()}


def evaluate_task(job: dict, run: bytes, evaluator: bytes, data) -> dict[str, Any]:
    """Runs in a Ray worker: evaluate one installed run; returns the run folder with its metrics and report."""
    from training.sweep import limit_threads

    limit_threads()
    j = Job.from_dict(job)
    with tempfile.TemporaryDirectory(prefix="arena-eval-") as tmp:
        scratch = Path(tmp)
        unpack(evaluator, scratch / EVALUATOR)
        unpack(run, j.model_dir(scratch))
        if evaluate_unit((j,), scratch, data, print):
            raise RuntimeError(f"evaluation of {j.label} failed (see the task's log)")
        return {"run": pack(j.model_dir(scratch)), "node": _node()}


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
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install 'deconv-arena[ray]'") from None
    from training.data import load_mnist

    store, workdir = Path(store), Path(workdir)
    t0, out = time.monotonic(), Outcome()
    env = job_environment(max(1, int(cpus)), None, None)
    for k in ("KERAS_BACKEND", TEST_HOLD, "MNIST_NPZ"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    address = address or os.environ.get("RAY_ADDRESS")
    ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=True, configure_logging=False)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        log(f"Ray: {len(nodes)} nodes, {ray.cluster_resources().get('CPU', 0):g} CPUs; {plan.describe()}")
        data = ray.put(load_mnist(data_path))
        ev_dir = store / EVALUATOR
        evaluator = ray.put(pack(ev_dir) if ev_dir.is_dir() else b"")
        opts = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": retries}
        train = ray.remote(train_task).options(**opts)
        evaluate = ray.remote(evaluate_task).options(**opts)
        pending: dict[Any, tuple[str, tuple[Job, ...]]] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        for unit in plan.units(vmap):
            states = {j: state(j, store, workdir) for j in unit}
            out.skipped += [j.label for j in unit if states[j] == "done"]
            for j in unit:
                if states[j] == "evaluate":
                    pending[evaluate.remote(j.as_dict(), pack(j.model_dir(store)), evaluator, data)] = (
                        "evaluate",
                        (j,),
                    )
            unit = tuple(j for j in unit if states[j] in ("new", "resume"))
            if unit:
                ref = train.remote([j.as_dict() for j in unit], evaluator, data, str(workdir.resolve()))
                pending[ref] = ("train", unit)
        log(f"{len(out.skipped)} already done, {len(pending)} tasks submitted")
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            stage, unit = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # noqa: BLE001 (a task that failed after its retries: recorded, the rest go on)
                cause = getattr(e, "cause", None) or e
                for j in unit:
                    record(j, store, stage if stage == "evaluate" else "training", cause)
                    out.failed[j.label] = f"{stage}: {type(cause).__name__}: {cause}"
                log(f"FAILED {stage} {unit_label(unit)}: {type(cause).__name__}: {cause}")
                continue
            if stage == "train":
                for j in unit:
                    blob = result["runs"][j.label]
                    install(blob, j.model_dir(store))
                    out.where[j.label] = result["node"]
                    pending[evaluate.remote(j.as_dict(), blob, evaluator, data)] = ("evaluate", (j,))
                log(f"trained {unit_label(unit)} on node {result['node'][:8]}")
            else:
                (j,) = unit
                install(result["run"], j.model_dir(store))
                if j.seed is not None:
                    (j.store_root(store) / f"{j.variant}.failed.json").unlink(missing_ok=True)
                out.done.append(j.label)
                log(f"evaluated {j.label} on node {result['node'][:8]}")
    finally:
        ray.shutdown()
    finish(plan, store, out)
    out.seconds = time.monotonic() - t0
    return out
