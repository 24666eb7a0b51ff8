"""Where a training run's files live: `RunLayout` alone spells the store's and the workdir's folders.

- A served run is installed as `STORE/<variant>/`; its checkpoint lives in `WORKDIR/<variant>/`.
- A replicate (one variant and profile under another seed) is installed as
  `STORE/_replicates/<profile>-seed<N>/<variant>/` — each `<profile>-seed<N>/` is a models store of its own — and its
  checkpoint lives in `WORKDIR/_replicates/<profile>-seed<N>/<variant>/`. A replicate whose training or evaluation
  failed leaves its failure record `<variant>.failed.json` beside that folder, and is listed as failed.
- A sweep's job keeps its log and its result file in `WORKDIR/sweep/`.

The trainer, the evaluator, the sweep's engines and the service's replicate statistics all read this one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from arena.records import MANIFEST, METRICS_FILE

REPLICATES = "_replicates"
CHECKPOINT = "checkpoint.npz"
STATUS = "status.json"  # a few bytes a running job rewrites each epoch (epoch, seconds per epoch)
FAILED = ".failed.json"
JOB_FILES = "sweep"  # WORKDIR/sweep/: each job's log and result file
RUN_DIR = re.compile(r"^(?P<profile>[a-z]+)-seed(?P<seed>\d+)$")


def replicate_store(store: Path, profile: str, seed: int) -> Path:
    """The models store of one profile and seed: every variant's replicate under that seed is installed there."""
    return Path(store) / REPLICATES / f"{profile}-seed{seed}"


def failure_path(rstore: Path, name: str) -> Path:
    """The failure record of the replicate `name` in the replicate store `rstore`."""
    return Path(rstore) / f"{name}{FAILED}"


def replicate_stores(store: Path) -> list[tuple[str, int, Path]]:
    """(profile, seed, replicate store) of every `<profile>-seed<N>/` folder on disk, in name order."""
    root = Path(store) / REPLICATES
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        m = RUN_DIR.match(folder.name)
        if m:
            out.append((m["profile"], int(m["seed"]), folder))
    return out


def runs_in(rstore: Path) -> set[str]:
    """The variants a replicate store holds: installed ones and ones that left a failure record."""
    installed = {p.name for p in rstore.iterdir() if p.is_dir() and (p / MANIFEST).is_file()}
    return installed | {p.name[: -len(FAILED)] for p in rstore.glob(f"*{FAILED}")}


@dataclass(frozen=True)
class RunLayout:
    """One run's folders and files: where it is installed (`folder`), where it checkpoints (`run_dir`), its manifest,
    its failure record, and its job's log and result file."""

    variant: str
    profile: str
    seed: int | None  # None: the served run
    store: Path
    workdir: Path = Path("runs")

    @property
    def replicate(self) -> bool:
        return self.seed is not None

    @property
    def store_root(self) -> Path:
        """The models store the run is installed into: the store itself, or its replicate store."""
        if self.seed is None:
            return Path(self.store)
        return replicate_store(self.store, self.profile, self.seed)

    @property
    def folder(self) -> Path:
        return self.store_root / self.variant

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    @property
    def metrics(self) -> Path:
        return self.folder / METRICS_FILE

    @property
    def failure(self) -> Path:
        """The failure record (replicates only: a served run that failed keeps its previous installation)."""
        return failure_path(self.store_root, self.variant)

    @property
    def work_root(self) -> Path:
        """The workdir the run's trainer is given (it checkpoints in `work_root/<variant>/`)."""
        if self.seed is None:
            return Path(self.workdir)
        return Path(self.workdir) / REPLICATES / replicate_store(self.store, self.profile, self.seed).name

    @property
    def run_dir(self) -> Path:
        return self.work_root / self.variant

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT

    @property
    def status(self) -> Path:
        return self.run_dir / STATUS

    @property
    def slug(self) -> str:
        return f"{self.variant}-{self.profile}-" + ("served" if self.seed is None else f"seed{self.seed}")

    @property
    def log(self) -> Path:
        """The log of the job process that runs it (a vmapped unit: its first run's)."""
        return Path(self.workdir) / JOB_FILES / f"{self.slug}.log"

    @property
    def result(self) -> Path:
        """The result file that job process writes when it ends (its failures, by run); see
        training/sweeps/worker.py."""
        return Path(self.workdir) / JOB_FILES / f"{self.slug}.result.json"
