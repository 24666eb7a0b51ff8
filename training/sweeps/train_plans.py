"""`deconv-arena train`'s plans: a served run is a plan of one job, replicates (one variant and protocol under other
seeds) a plan of one job per seed. Both go through the front door (training/sweeps/stages.py `run`) in this process, as
a sweep's plans go through it on their engines; where each run lives is arena/layout.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from arena.variants import Variant
from training.loop.config import TrainConfig
from training.sweeps.engines import Inline
from training.sweeps.planning import Plan, PlannedRun
from training.sweeps.stages import Outcome, Policy, run


def train_replicates(
    variant: Variant,
    config: TrainConfig,
    seeds: list[int],
    data,
    store: Path,
    workdir: Path,
    resume: bool,
    log: Callable[[str], None] = print,
    curves: bool = True,
) -> list[int]:
    """Train and evaluate one replicate per seed; returns the seeds that failed (each recorded beside the others)."""
    jobs = tuple(PlannedRun.of_config(variant.name, config, seed) for seed in seeds)
    out = _run(jobs, data, store, workdir, Policy(redo=True, resume=resume, curves=curves), log)
    return [j.seed for j in jobs if j.label in out.failed]


def train_served(
    variant: Variant,
    config: TrainConfig,
    data,
    store: Path,
    workdir: Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    curves: bool = True,
) -> Path:
    """Train the served run and install it into `store/<name>/` (not evaluated); its error is raised as it is."""
    job = PlannedRun.of_config(variant.name, config)
    policy = Policy(redo=True, resume=resume, evaluate=False, curves=curves, raise_errors=True)
    _run((job,), data, store, workdir, policy, log)
    return job.layout(store, workdir).folder


def _run(jobs: tuple[PlannedRun, ...], data, store: Path, workdir: Path, policy: Policy, log) -> Outcome:
    return run(Plan(jobs), Inline(store, workdir, data, policy), store, workdir, policy=policy, log=log)
