"""The engines the front door (training/sweeps/stages.py `run`) runs a plan's units on, each with `run(units, log) ->
Outcome` and `stop()`: `Inline`, this process, one unit after another (`deconv-arena train`), and `Local`, a process
per unit (`python -m training.sweeps.worker`), `parallel` side by side, each with its share of the cores and of the
GPU's memory (`deconv-arena sweep`). The Ray engine is training/sweeps/ray_engine.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from arena.layout import RunLayout
from training.sweeps.planning import Plan, PlannedRun, unit_label
from training.sweeps.stages import SWEEP, Outcome, Policy, Progress, job_environment, record, run, run_unit
from training.sweeps.worker import read_result


class Inline:
    """Each unit's stages in this process, one after another, logging to `log`."""

    capacity = ""

    def __init__(self, store: Path, workdir: Path, data, policy: Policy = SWEEP):
        self.store, self.workdir, self.data, self.policy = Path(store), Path(workdir), data, policy
        self.stopping = False

    def run(self, units: list[tuple[PlannedRun, ...]], log: Callable[[str], None]) -> Outcome:
        out = Outcome()
        for unit in units:
            if self.stopping:
                out.stopped += [j.label for j in unit]
                continue
            failed = run_unit(unit, self.store, self.workdir, self.data, log, self.policy)
            for j in unit:
                if j.label in failed:
                    out.failed[j.label] = failed[j.label]
                else:
                    out.done.append(j.label)
        return out

    def stop(self, *_signal) -> None:
        self.stopping = True


class JobProcesses:
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


class Local:
    """Each unit in its own job process (training/sweeps/worker.py), `parallel` side by side; a unit's result is the
    file its process writes (arena/layout.py `RunLayout.result`), and a process that ended without one failed its
    jobs."""

    def __init__(
        self,
        store: Path,
        workdir: Path,
        data: Path | None,
        parallel: int = 1,
        gpu: bool = False,
        children: JobProcesses | None = None,
        interval: float = 30.0,
        policy: Policy = SWEEP,
    ):
        self.store, self.workdir, self.data, self.policy = Path(store), Path(workdir), data, policy
        self.parallel, self.gpu, self.interval = max(1, parallel), gpu, interval
        self.children = children or JobProcesses()
        self.capacity = f", {self.parallel} at once"

    def stop(self, *_signal) -> None:
        self.children.stop()

    def run(self, units: list[tuple[PlannedRun, ...]], log: Callable[[str], None]) -> Outcome:
        out = Outcome()
        with Progress(self.workdir, log, self.interval) as progress, ThreadPoolExecutor(self.parallel) as pool:
            list(pool.map(lambda unit: self._one(unit, out, progress, log), units))
        return out

    def _one(self, unit: tuple[PlannedRun, ...], out: Outcome, progress: Progress, log: Callable[[str], None]) -> None:
        layout = unit[0].layout(self.store, self.workdir)
        layout.log.parent.mkdir(parents=True, exist_ok=True)
        layout.result.unlink(missing_ok=True)  # an earlier sitting's result says nothing of this one
        with open(layout.log, "a") as f:
            proc = self.children.start(self._argv(unit, layout), f, self._environment(unit))
            if proc is None:
                out.stopped += [j.label for j in unit]
                return
            progress.running.add(unit)
            log(f"started {unit_label(unit)} (log: {layout.log})")
            code = self.children.finish(proc)
            progress.running.discard(unit)
        if self.children.stopping and code != 0:
            out.stopped += [j.label for j in unit]
            return
        self._collect(unit, code, layout, out)
        log(f"finished {unit_label(unit)}: exit {code}")

    def _argv(self, unit: tuple[PlannedRun, ...], layout: RunLayout) -> list[str]:
        spec = {
            "jobs": [j.as_dict() for j in unit],
            "store": str(self.store),
            "workdir": str(self.workdir),
            "data": self.data,
            "result": str(layout.result),
            "policy": self.policy.as_dict(),
        }
        return [sys.executable, "-m", "training.sweeps.worker", json.dumps(spec, default=str)]

    def _environment(self, unit: tuple[PlannedRun, ...]) -> dict[str, str]:
        threads = max(1, (os.cpu_count() or 1) // self.parallel)
        share = 0.9 / self.parallel if self.gpu else None
        return {**os.environ, **job_environment(threads, share, unit[0].precision)}

    def _collect(self, unit: tuple[PlannedRun, ...], code: int, layout: RunLayout, out: Outcome) -> None:
        failed = read_result(layout.result)
        for j in unit:
            if failed is None:  # the process died before it could write its result (killed, out of memory)
                why = f"the job's process exited with status {code} without its result (see {layout.log})"
                record(j, self.store, "training", RuntimeError(why))
                out.failed[j.label] = why
            elif j.label in failed:
                out.failed[j.label] = failed[j.label]
            else:
                out.done.append(j.label)


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
    children: JobProcesses | None = None,
    interval: float = 30.0,
) -> Outcome:
    """The front door on the local engine."""
    engine = Local(store, workdir, data, parallel, gpu, children, interval)
    return run(plan, engine, store, workdir, vmap=vmap, deadline=deadline, log=log)
