"""The JAX train steps (for GPU machines) must compute what the TensorFlow ones compute.

Each backend runs in its own process (Keras picks its backend at import). Both build a job per variant, give it the
same weights, turn dropout off (the two backends draw different masks), take three steps on the same images and
noise, and dump the updated weights (BatchNormalization moving statistics too) and losses; the two dumps must agree
to float32 round-off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_jax

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _needs_jax():
    require_jax()


SCRIPT = r"""
import dataclasses, sys, numpy as np, keras
from arena.variants import VARIANTS
from training.loop.config import profile_config
from training.loop.epochs import make_job
name, out, classes = sys.argv[1], sys.argv[2], int(sys.argv[3])
variant = dataclasses.replace(VARIANTS[name], classes=classes)
config = profile_config("smoke", variant.family).replace(batch_size=8)
keras.utils.set_random_seed(0)
job = make_job(variant, config)
rng = np.random.default_rng(7)
for group in ("generator", "discriminator", "encoder", "decoder"):
    for v in job.stateful().get(group, []):
        if v.trainable:
            v.assign((0.05 * rng.standard_normal(tuple(v.shape))).astype("float32"))
for model in job.extra_models().values():
    for layer in model.layers:
        if hasattr(layer, "rate"):
            layer.rate = 0.0
data = job.train_arrays(rng.integers(0, 256, (8, 28, 28), dtype=np.uint8), rng.integers(0, 10, 8))
losses = []
for step, n in enumerate((8, 8, 3)):  # the last batch of an epoch is short (60,000 = 234 x 256 + 96)
    batch = tuple(a[:n] for a in data)
    losses.append([float(x) for x in job.train_batch(batch, np.random.default_rng(step)).values()])
job.sync()
arrays = {
    f"{g}/{i}": v.numpy()
    for g, vs in job.stateful().items()
    for i, v in enumerate(vs)
    if v.trainable or "moving" in v.path
}
np.savez(out, losses=np.array(losses), **arrays)
"""


def _run(backend: str, name: str, out: Path, classes: int = 0) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, name, str(out), str(classes)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize(
    "name, classes",
    [("gan_transpose", 0), ("gan_upsample", 0), ("vae_transpose", 0), ("vae_subpixel", 0)]
    + [("gan_upsample", 10), ("vae_transpose", 10)],  # conditional: the label at the input and as channels
)
def test_jax_step_matches_tensorflow_step(name, classes, tmp_path):
    tf_out = _run("tensorflow", name, tmp_path / "tf.npz", classes)
    jax_out = _run("jax", name, tmp_path / "jax.npz", classes)
    assert tf_out.keys() == jax_out.keys() and len(tf_out) > 4
    np.testing.assert_allclose(jax_out["losses"], tf_out["losses"], rtol=1e-4)
    for key in tf_out:
        if key != "losses":
            np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=1e-3, atol=2e-6, err_msg=f"{name} {key}")
