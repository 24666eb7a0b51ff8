"""Replicate trainings: one variant and protocol under other seeds, trained, then evaluated alike (the layout of
the replicate store and its statistics live in arena/replicates.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from arena.replicates import REPLICATES, failure_path, record_failure, replicate_store
from arena.variants import Variant
from training.config import TrainConfig
from training.evaluate import evaluate_replicates
from training.runner import train_variant


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
    failed = []
    for seed in seeds:
        rstore = replicate_store(store, config.profile, seed)
        rwork = Path(workdir) / REPLICATES / rstore.name
        try:
            train_variant(
                variant,
                config.replace(seed=seed),
                data,
                rstore,
                rwork,
                resume=resume and (rwork / variant.name / "checkpoint.npz").is_file(),
                log=log,
                curves_from=store if curves else None,
            )
        except Exception as e:  # one seed's failure must not stop the others, and must be reported
            record_failure(rstore, variant.name, "training", e)
            log(
                f"{variant.name} seed {seed}: training FAILED ({type(e).__name__}: "
                f"{e}); recorded in {failure_path(rstore, variant.name)}"
            )
            failed.append(seed)
            continue
        failure_path(rstore, variant.name).unlink(missing_ok=True)
    ok = [s for s in seeds if s not in failed]
    if ok:
        failed += evaluate_replicates(store, data, only={(variant.name, config.profile, s) for s in ok}, log=log)
    return failed
