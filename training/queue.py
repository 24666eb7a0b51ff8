"""Run many `deconv-arena train` jobs at once, e.g. on a GPU machine with `KERAS_BACKEND=jax`:

    KERAS_BACKEND=jax python -m training.queue deploy/jobs/ablation.txt --parallel 12 --data mnist.npz

Each line of the job file holds the arguments of one `deconv-arena train` (blank lines and # comments skipped).
A job that finished is marked done and skipped when the queue runs again; one that was cut off resumes from its
last epoch checkpoint (run the same command again). Logs go to WORKDIR/queue/<line>.log. At the end the replicate
statistics (STORE/replicates.json) are rewritten from every replicate on disk, since jobs ran side by side."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def read_jobs(path: Path) -> list[list[str]]:
    lines = [line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines()]
    return [shlex.split(line) for line in lines if line]


def has_checkpoint(argv: list[str], workdir: Path) -> bool:
    """Whether this job left an epoch checkpoint (then it resumes instead of starting over)."""
    from arena.replicates import REPLICATES, seed_list
    from arena.variants import VARIANTS
    from training.config import profile_config

    args = dict(zip(argv[::2], argv[1::2]))
    name = args["--variant"]
    if "--seeds" not in args:
        return (workdir / name / "checkpoint.npz").is_file()
    profile = args.get("--profile", profile_config("paper", VARIANTS[name].family).profile)
    return any(
        (workdir / REPLICATES / f"{profile}-seed{s}" / name / "checkpoint.npz").is_file()
        for s in seed_list(args["--seeds"])
    )


class Children:
    """The queue's running `train` processes. `stop()` (SIGTERM or SIGINT to the queue) terminates them — and only
    them, not other training on the machine — and keeps the jobs not yet started from starting; a stopped job is
    not marked done, so the next run resumes it from its checkpoint."""

    def __init__(self):
        self.lock, self.procs, self.stopping = threading.Lock(), set(), False

    def start(self, argv: list[str], log) -> subprocess.Popen | None:
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
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


def run(
    jobs: list[list[str]],
    parallel: int,
    store: Path,
    workdir: Path,
    data: Path | None,
    children: Children | None = None,
) -> list[int]:
    logs = workdir / "queue"
    logs.mkdir(parents=True, exist_ok=True)
    children = children or Children()

    def one(i: int) -> int:
        done = logs / f"{i:03d}.done"
        if done.is_file():
            return 0
        if children.stopping:
            return -1
        argv = [*jobs[i], "--store", str(store), "--workdir", str(workdir)] + (["--data", str(data)] if data else [])
        if has_checkpoint(jobs[i], workdir):
            argv.append("--resume")
        t0 = time.time()
        with open(logs / f"{i:03d}.log", "a") as log:
            log.write(f"$ deconv-arena train {shlex.join(argv)}\n")
            log.flush()
            proc = children.start([sys.executable, "-m", "deconv_arena.cli", "train", *argv], log)
            if proc is None:
                return -1
            code = children.finish(proc)
        print(f"[{i:03d}] exit {code} after {time.time() - t0:.0f} s: {shlex.join(jobs[i])}", flush=True)
        if code == 0:
            done.touch()
        return code

    with ThreadPoolExecutor(parallel) as pool:
        codes = list(pool.map(one, range(len(jobs))))
    return [i for i, c in enumerate(codes) if c != 0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.queue", description=__doc__.split("\n\n")[0])
    p.add_argument("jobs", type=Path, help="file with one `deconv-arena train` argument list per line")
    p.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="jobs at once (default: one per CPU)")
    p.add_argument("--store", type=Path, default=Path("models_store"))
    p.add_argument("--workdir", type=Path, default=Path("runs"))
    p.add_argument("--data", type=Path)
    args = p.parse_args(argv)
    jobs = read_jobs(args.jobs)
    children = Children()
    signal.signal(signal.SIGTERM, children.stop)
    signal.signal(signal.SIGINT, children.stop)
    failed = run(jobs, max(1, args.parallel), args.store, args.workdir, args.data, children)
    if children.stopping:
        print(
            f"stopped: {len(jobs) - len(failed)} of {len(jobs)} jobs done; run the same command again to resume the rest"
        )
        return 143
    from training.evaluate import write_statistics

    if (args.store / "_replicates").is_dir():
        write_statistics(args.store)
    print(
        f"{len(jobs) - len(failed)} of {len(jobs)} jobs done"
        + (f"; failed (see {args.workdir}/queue/): {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
