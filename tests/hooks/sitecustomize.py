"""Tests only (tests/test_sweep_ray.py): imported by every Python process of the test's Ray cluster (this folder is
on the PYTHONPATH the test gives `ray start` and the sweep). With ARENA_SWEEP_TEST_HOLD set to a folder, each training
task's log is wrapped once training/sweeps/ray_engine.py is imported: a task that finishes its first epoch's
checkpoint writes HOLD/epoch1-<run> (its pid and node); the first of them also claims HOLD/worker.pid and waits there
(up to 200 s) while holding its node's only CPU, so the next task to reach that point ran on the other node. The
product has no such switch."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from pathlib import Path

MODULE = "training.sweeps.ray_engine"
FOLDER = os.environ.get("ARENA_SWEEP_TEST_HOLD")


def _held_log(module):
    task_log = module.task_log

    def held(unit):
        log = task_log(unit)

        def line(text: str) -> None:
            log(text)
            if " epoch 1/" not in text:
                return
            slug, mark = unit[0].layout(Path()).slug, f"{os.getpid()} {module.node_id()}"
            (Path(FOLDER) / f"epoch1-{slug}").write_text(mark)
            try:
                fd = os.open(Path(FOLDER) / "worker.pid", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return
            os.write(fd, f"{slug} {mark}".encode())
            os.close(fd)
            time.sleep(200)

        return line

    return held


class _Wrap(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            module.task_log = _held_log(module)

        spec.loader.exec_module = exec_module
        return spec


if FOLDER:
    sys.meta_path.insert(0, _Wrap())
