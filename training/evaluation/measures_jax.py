"""The heavy feature-space measures on JAX's accelerator: Gaussian statistics (the Fréchet distance's input), KID and
PRDC, with the signatures and random draws of training/evaluation/measures.py (the reference, NumPy in float64).

Computed in float32 on the device; tests/test_metrics_jax.py checks them against the reference on the CPU:
Gaussian statistics to 1e-5 relative, KID to 1e-5 absolute, precision/recall/density/coverage to 2 points in
10,000 (a float32 distance on the other side of a k-NN radius). The Fréchet distance's matrix square roots stay in
float64 NumPy (the covariances are feature × feature, small). evaluate.py uses this module where JAX has a GPU
(ARENA_EVAL_ON=auto), or always (jax) or never (numpy)."""

from __future__ import annotations

import os

import numpy as np

CHOICES = ("auto", "jax", "numpy")
SETTING = "ARENA_EVAL_ON"


def wanted() -> bool:
    """Whether the evaluation's feature-space measures run here: ARENA_EVAL_ON (auto: where JAX has a GPU/TPU)."""
    choice = os.environ.get(SETTING, "auto")
    if choice not in CHOICES:
        raise ValueError(f"{SETTING}={choice!r}: choose one of {', '.join(CHOICES)}")
    if choice == "numpy":
        return False
    try:
        import jax
    except ImportError:
        if choice == "jax":
            raise ValueError(f"{SETTING}=jax, but JAX is not installed") from None
        return False
    return choice == "jax" or jax.default_backend() in ("gpu", "cuda", "rocm", "tpu")


def device() -> str:
    import jax

    return f"jax {jax.__version__} on {jax.devices()[0].device_kind}, float32"


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof = 1): the centred Gram matrix on the device, returned in float64."""
    mu, cov = _stats(np.asarray(features, np.float32))
    return np.asarray(mu, np.float64), np.asarray(cov, np.float64)


def kid(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID as metrics.kid: the same subsets (drawn by NumPy in the same order), the kernels on the device."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(fake))
    idx = [(rng.choice(len(real), m, replace=False), rng.choice(len(fake), m, replace=False)) for _ in range(subsets)]
    ix = np.stack([a for a, _ in idx]).astype(np.int32)
    iy = np.stack([b for _, b in idx]).astype(np.int32)
    values = np.asarray(_kid_values(np.asarray(real, np.float32), np.asarray(fake, np.float32), ix, iy), np.float64)
    return float(values.mean()), float(values.std())


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, block: int = 1000) -> dict[str, float]:
    """Precision, recall, density and coverage as metrics.prdc, the distances and k-NN radii on the device."""
    import jax.numpy as jnp

    real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    r_real, r_fake = _radii(real, k, block), _radii(fake, k, block)
    covered, recalled = [], []
    counts = jnp.zeros(len(fake))
    any_inside = jnp.zeros(len(fake), bool)
    for i in range(0, len(real), block):
        d = _sq(real[i : i + block], fake)
        inside = d <= r_real[i : i + block, None]
        any_inside = any_inside | inside.any(axis=0)
        counts = counts + inside.sum(axis=0)
        covered.append(d.min(axis=1) <= r_real[i : i + block])
        recalled.append((d <= r_fake[None, :]).any(axis=1))
    return {
        "precision": float(any_inside.mean()),
        "recall": float(jnp.concatenate(recalled).mean()),
        "density": float(counts.sum() / (k * len(fake))),
        "coverage": float(jnp.concatenate(covered).mean()),
    }


_compiled: dict[str, object] = {}


def _get(name: str, make):
    if name not in _compiled:
        _compiled[name] = make()
    return _compiled[name]


def _stats(f: np.ndarray):
    def make():
        import jax

        def stats(f):
            mu = f.mean(axis=0)
            c = f - mu
            return mu, (c.T @ c) / (f.shape[0] - 1)

        return jax.jit(stats)

    return _get("stats", make)(f)


def _kid_values(real, fake, ix, iy):
    def make():
        import jax
        import jax.numpy as jnp

        def one(x, y):
            d = x.shape[1]
            m = x.shape[0]

            def cubic(g):
                g = g / d + 1
                return g * g * g

            kxx, kyy, kxy = cubic(x @ x.T), cubic(y @ y.T), cubic(x @ y.T)
            off = m * (m - 1)
            return (kxx.sum() - jnp.trace(kxx)) / off + (kyy.sum() - jnp.trace(kyy)) / off - 2 * kxy.mean()

        def values(real, fake, ix, iy):
            return jax.lax.map(lambda ab: one(real[ab[0]], fake[ab[1]]), (ix, iy))

        return jax.jit(values)

    return _get("kid", make)(real, fake, ix, iy)


def _sq(a, b):
    def make():
        import jax
        import jax.numpy as jnp

        def sq(a, b):
            d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
            return jnp.maximum(d, 0.0)

        return jax.jit(sq)

    return _get("sq", make)(a, b)


def _radii(x, k: int, block: int):
    """Squared distance from each point to its k-th nearest other point (index 0 is the point itself)."""
    import jax
    import jax.numpy as jnp

    out = []
    for i in range(0, len(x), block):
        d = _sq(x[i : i + block], x)
        out.append(-jax.lax.top_k(-d, k + 1)[0][:, k])
    return jnp.concatenate(out)
