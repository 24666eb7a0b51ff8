"""A job's process (`python -m training.sweeps.worker SPEC`), started by the local engine (training/sweeps/engines.py):
it runs one unit's stages (training/sweeps/stages.py `run_unit`) and hands back its result as a file — JSON, written
atomically: the unit's failures by job label — which the engine reads once the process has ended. A process that dies
before writing it (killed, out of memory) leaves none, and the engine records its jobs as failed."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from arena.records import write_json_atomic
from training.sweeps.planning import PlannedRun
from training.sweeps.stages import Policy, limit_threads, run_unit


def write_result(path: Path, failed: dict[str, str]) -> None:
    write_json_atomic(path, {"failed": failed})


def read_result(path: Path) -> dict[str, str] | None:
    """The failures (by job label) a job process wrote when it ended; None when it wrote no result."""
    try:
        return dict(json.loads(Path(path).read_text())["failed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(spec_text: str) -> int:
    # Everything the job will run, imported now: a job lives for hours, and a module first imported at its end would
    # come from whatever checkout is on disk by then (a job started before a `git pull` failed that way).
    import training.evaluation.evaluate  # noqa: F401
    import training.loop.epochs  # noqa: F401
    import training.loop.vmapped  # noqa: F401
    from training.loop.data import load_mnist

    spec = json.loads(spec_text)
    limit_threads()
    unit = tuple(PlannedRun.from_dict(d) for d in spec["jobs"])
    data = load_mnist(Path(spec["data"]) if spec.get("data") else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped job leaves its checkpoint, nothing else
    policy = Policy(**spec.get("policy", {}))
    failed = run_unit(unit, Path(spec["store"]), Path(spec["workdir"]), data, policy=policy)
    write_result(Path(spec["result"]), failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
