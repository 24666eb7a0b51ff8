"""Sweep benchmarks (issue 21), each beside its baseline measured in the same run:

  vmap   k seeds of one GAN as one vmapped JAX program vs the same k seeds as k separate runs, one after the other,
         on this machine's JAX device (CPU here; a GPU where JAX has one). Figure: seed-epochs per second.
  ray    the same tiny sweep (VAE smoke runs) on the local engine and on a local Ray cluster: Ray's overhead as a
         share of the local engine's wall time (target ≤ 10 %).
  gpu    (a GPU machine) the GAN factorial as one vmapped program per cell vs 9 separate jobs side by side, for
         --epochs, with the GPU's utilisation sampled by nvidia-smi; projects the 40-run, 50-epoch study.

    python bench/sweep.py vmap --k 2 --train-limit 4096 --epochs 2
    python bench/sweep.py ray
    KERAS_BACKEND=jax python bench/sweep.py gpu --data mnist.npz --epochs 2

Prints one JSON object per measurement and a summary line; `--out FILE` also writes them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VMAP_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from arena.replicates import REPLICATES, replicate_store
from arena.variants import VARIANTS
from training.loop.config import profile_config
from training.loop.data import load_mnist, synthetic_mnist
from training.loop.epochs import train_variant
from training.loop.vmapped import train_vmapped

mode, name, k, epochs, limit, data_path, out = sys.argv[1:8]
k, epochs, limit = int(k), int(epochs), int(limit)
data = load_mnist(data_path) if data_path else synthetic_mnist(n_train=limit, n_test=256, seed=0)
variant = VARIANTS[name]
config = profile_config("paper", variant.family).replace(
    epochs=epochs, train_limit=limit, test_limit=256, profile="quick"
)
seeds = list(range(1, k + 1))
root = Path(out)
quiet = lambda line: None
t0 = time.perf_counter()
if mode in ("vmap", "unroll"):
    train_vmapped(variant, config, seeds, data, root / "store", root / "work", log=quiet, program=mode)
else:
    for s in seeds:
        rs = replicate_store(root / "store", config.profile, s)
        train_variant(variant, config.replace(seed=s), data, rs, root / "work" / REPLICATES / rs.name, log=quiet)
wall = time.perf_counter() - t0
import jax
print(json.dumps({"mode": mode, "seconds": round(wall, 2), "device": str(jax.devices()[0].device_kind)}))
"""


def _jax_env(extra: dict | None = None) -> dict:
    return {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(extra or {})}


def _train(mode: str, args, env: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-c", VMAP_SCRIPT, mode, args.variant, str(args.k), str(args.epochs)]
        argv += [str(args.train_limit), str(args.data or ""), tmp]
        done = subprocess.run(argv, env=env or _jax_env(), capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_vmap(args) -> list[dict]:
    """Both include compilation and per-epoch bookkeeping (curves off, no evaluator): what a user waits for."""
    rows = []
    for mode in ("separate", "vmap", "unroll"):
        r = _train(mode, args)
        r.update(
            variant=args.variant,
            k=args.k,
            epochs=args.epochs,
            images=args.train_limit,
            seed_epochs_per_s=round(args.k * args.epochs / r["seconds"], 4),
        )
        rows.append(r)
        print(json.dumps(r), flush=True)
    sep, vm, un = rows
    print(
        f"vmap: {args.k} seeds of {args.variant} × {args.epochs} epochs on {args.train_limit} images on "
        f"{vm['device']}: {args.k} separate runs {sep['seconds']:.1f} s; one program vmapped {vm['seconds']:.1f} s "
        f"({sep['seconds'] / vm['seconds']:.2f}× the seed-epochs per second), unrolled {un['seconds']:.1f} s "
        f"({sep['seconds'] / un['seconds']:.2f}×)"
    )
    return rows


def bench_ray(args) -> list[dict]:
    from training.evaluation.classifier import train_evaluator
    from training.loop.data import save_npz, synthetic_mnist
    from training.sweeps.engines import run_local
    from training.sweeps.planning import plan
    from training.sweeps.ray_engine import run_ray

    p = plan([{"variants": ["vae_upsample", "vae_transpose"], "seeds": f"1-{args.seeds}", "profile": "smoke"}])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_mnist(n_train=256, n_test=64, seed=0)
        npz = Path(tmp) / "mnist.npz"
        save_npz(data, npz)
        evaluator = Path(tmp) / "evaluator"
        train_evaluator(data, evaluator, epochs=1, log=lambda _: None)
        for engine in ("local", "ray"):
            store, work = Path(tmp) / engine / "store", Path(tmp) / engine / "runs"
            store.mkdir(parents=True)
            os.symlink(evaluator / "_evaluator", store / "_evaluator")
            t0 = time.perf_counter()
            if engine == "local":
                out = run_local(p, store, work, npz, parallel=2, log=lambda _: None)
            else:
                out = run_ray(p, store, work, npz, cpus=1, log=lambda _: None)
            row = {"engine": engine, "runs": len(p.jobs), "done": len(out.done), "seconds": time.perf_counter() - t0}
            if out.failed:
                raise SystemExit(f"{engine}: {out.summary()}")
            rows.append(row)
            print(json.dumps(row), flush=True)
    local, ray_ = rows
    print(
        f"ray: the same {len(p.jobs)}-run smoke sweep, 2 at a time: local engine "
        f"{local['seconds']:.1f} s, Ray {ray_['seconds']:.1f} s (Ray's overhead "
        f"{100 * (ray_['seconds'] / local['seconds'] - 1):+.0f} %, target ≤ +10 %)"
    )
    return rows


def _sample_gpu(stop: threading.Event, samples: list[float]) -> None:
    while not stop.wait(1.0):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            samples.append(float(out.split()[0]))
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return


def bench_gpu(args) -> list[dict]:
    """The factorial's cells as vmapped programs (k = args.k seeds each, one cell after another) vs 9 separate jobs
    side by side (one cell's seeds), same epochs; GPU utilisation sampled each second."""
    from arena.variants import factorials

    (gan,) = [f for f in factorials() if f.family == "gan"]
    cells = list(gan.cells.values())
    rows = []
    for mode in ("side-by-side", "vmap"):
        samples: list[float] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_gpu, args=(stop, samples), daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        if mode == "vmap":
            runs = 0
            for cell in cells:
                _train("vmap", argparse.Namespace(**{**vars(args), "variant": cell}))
                runs += args.k
        else:
            share = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.1"}
            one = argparse.Namespace(**{**vars(args), "variant": cells[0], "k": 1})
            threads = [threading.Thread(target=_train, args=("separate", one, _jax_env(share))) for _ in range(9)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            runs = 9
        seconds = time.perf_counter() - t0
        stop.set()
        row = {
            "mode": mode,
            "runs": runs,
            "epochs": args.epochs,
            "seconds": round(seconds, 1),
            "seed_epochs_per_s": round(runs * args.epochs / seconds, 3),
            "gpu_utilisation_mean_pct": round(sum(samples) / len(samples), 1) if samples else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    side, vm = rows
    full = 40 * 50 / vm["seed_epochs_per_s"] / 60
    print(
        f"gpu: {vm['seed_epochs_per_s']:.2f} seed-epochs/s vmapped vs {side['seed_epochs_per_s']:.2f} with 9 jobs side "
        f"by side; the 40-run × 50-epoch factorial projects to {full:.1f} min of training"
    )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("vmap", "ray", "gpu"))
    p.add_argument("--variant", default="gan_upsample")
    p.add_argument("--k", type=int, default=2, help="seeds per program (vmap, gpu)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=4096)
    p.add_argument("--data", type=Path, help="MNIST npz (default: synthetic digits)")
    p.add_argument("--seeds", type=int, default=2, help="ray: seeds per variant of the tiny sweep")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rows = {"vmap": bench_vmap, "ray": bench_ray, "gpu": bench_gpu}[args.what](args)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
