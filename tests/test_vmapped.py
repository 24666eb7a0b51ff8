"""k seeds as one compiled JAX program (training/loop/vmapped.py) must train what k separate runs with those seeds
train.

A JAX process trains k = 3 seeds of a variant on tiny data (2 epochs, 2 steps each) separately, as one vmapped
program and as one unrolled program, and a fourth time (vmapped) as 1 epoch then `--resume` to 2. Seed by seed,
the checkpoints (every weight, optimiser slot and BatchNormalization statistic) and the loss histories must agree to
float32 round-off, and the seeds must differ from each other (a program that trained one seed k times would
fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_jax

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (1, 2, 3)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_jax():
    require_jax()


SCRIPT = r"""
import sys
from pathlib import Path
from arena.replicates import REPLICATES, replicate_store
from arena.variants import VARIANTS
from training.loop.config import profile_config
from training.loop.data import load_mnist
from training.loop.epochs import train_variant
from training.loop.vmapped import train_vmapped

name, npz, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
seeds = [int(s) for s in sys.argv[4].split(",")]
data, variant = load_mnist(npz), VARIANTS[name]
config = profile_config("smoke", variant.family).replace(
    epochs=2, train_limit=2 * profile_config("smoke", variant.family).batch_size - 10
)
log = lambda line: None
train_vmapped(variant, config, seeds, data, out / "vmap_store", out / "vmap_work", log=log, program="vmap")
train_vmapped(variant, config, seeds, data, out / "unroll_store", out / "unroll_work", log=log, program="unroll")
for s in seeds:
    rstore = replicate_store(out / "separate_store", config.profile, s)
    train_variant(
        variant, config.replace(seed=s), data, rstore, out / "separate_work" / REPLICATES / rstore.name, log=log
    )
train_vmapped(
    variant, config.replace(epochs=1), seeds, data, out / "resumed_store", out / "resumed_work", log=log, program="vmap"
)
train_vmapped(
    variant, config, seeds, data, out / "resumed_store", out / "resumed_work", resume=True, log=log, program="vmap"
)
"""


def _checkpoint(work: Path, name: str, seed: int) -> tuple[dict, dict]:
    with np.load(work / "_replicates" / f"smoke-seed{seed}" / name / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files if k != "__meta__"}
        meta = json.loads(str(f["__meta__"]))
    return arrays, meta


@pytest.mark.parametrize("name", ["gan_upsample", "vae_transpose"])
def test_vmapped_seeds_train_what_separate_runs_train(name, tiny_npz, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, name, str(tiny_npz), str(tmp_path), ",".join(map(str, SEEDS))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first = None
    for seed in SEEDS:
        vm, vm_meta = _checkpoint(tmp_path / "vmap_work", name, seed)
        sep, sep_meta = _checkpoint(tmp_path / "separate_work", name, seed)
        res, res_meta = _checkpoint(tmp_path / "resumed_work", name, seed)
        un, un_meta = _checkpoint(tmp_path / "unroll_work", name, seed)
        assert vm.keys() == sep.keys() == res.keys() == un.keys() and len(vm) > 8
        for key in vm:
            np.testing.assert_allclose(vm[key], sep[key], rtol=1e-4, atol=1e-6, err_msg=f"{name} seed {seed} {key}")
            np.testing.assert_allclose(un[key], sep[key], rtol=1e-4, atol=1e-6, err_msg=f"unrolled {name} {key}")
            np.testing.assert_allclose(res[key], vm[key], rtol=1e-5, atol=1e-7, err_msg=f"resumed {name} {key}")
        losses = [k for k in sep_meta["history"][0] if "loss" in k]
        assert losses, sep_meta["history"][0]
        for a, b, c, u in zip(vm_meta["history"], sep_meta["history"], res_meta["history"], un_meta["history"]):
            assert a["seeds_in_step"] == len(SEEDS) and "seeds_in_step" not in b
            for k in losses:
                assert a[k] == pytest.approx(b[k], rel=1e-4) and c[k] == pytest.approx(a[k], rel=1e-5)
                assert u[k] == pytest.approx(b[k], rel=1e-4)
        assert res_meta["resumed_after"] == [1] and vm_meta["resumed_after"] == []
        manifest = json.loads(
            (tmp_path / "vmap_store/_replicates" / f"smoke-seed{seed}" / name / "manifest.json").read_text()
        )
        assert manifest["config"]["seed"] == seed and manifest["epochs_done"] == 2
        if first is None:
            first = vm
        else:  # the seeds really are different runs
            assert any(not np.allclose(first[k], vm[k]) for k in vm), f"seed {seed} trained the same weights as seed 1"
