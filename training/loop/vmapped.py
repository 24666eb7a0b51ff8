"""k seeds of one variant trained as one compiled program (JAX backend): the variables, optimiser states, data order
and noise of each seed stacked along a leading seed axis, and the job's own pure JAX step `jax.vmap`-ed over it, so
one compiled step per batch advances every seed.

Each seed is still its own run: its own `Sitting` (checkpoint, progress grids, status, history), restored from its
own checkpoint, exported as its own replicate with its own manifest. Seed j draws exactly what a separate run with
that seed draws (initialisation after `keras.utils.set_random_seed(seed)`, data order and noise from
`(seed, epoch)`), so the two agree to float round-off (tests/test_vmapped.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena.layout import RunLayout
from arena.variants import Variant
from training.families.backends import backend, read_values, write_values
from training.loop import provenance
from training.loop.config import TrainConfig
from training.loop.data import Mnist
from training.loop.epochs import Sitting, TrainingError, check_writable, make_curves


def layouts(variant: Variant, config: TrainConfig, seeds: list[int], store: Path, workdir: Path) -> list[RunLayout]:
    """Where each seed's run lives: the same places as a separate replicate run's."""
    return [RunLayout(variant.name, config.profile, s, Path(store), Path(workdir)) for s in seeds]


def train_vmapped(
    variant: Variant,
    config: TrainConfig,
    seeds: list[int],
    data: Mnist,
    store: Path,
    workdir: Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    curves_from: Path | None = None,
    program: str = "auto",
    study: dict | None = None,
) -> list[Path]:
    """Train replicates of `variant` for `seeds` together and install each into its replicate store (not evaluated:
    the caller evaluates them). With `resume`, every seed must have a checkpoint at the same epoch.

    `program`: "vmap" stacks the seeds along a leading axis and `jax.vmap`s the step (batched convolutions: the
    accelerator's way); "unroll" traces the step once per seed into the same compiled program (each seed's
    convolutions stay ordinary ones: XLA's CPU runs vmapped, i.e. grouped, convolutions ~3× slower, see
    docs/benchmarks.md); "auto" picks vmap on a GPU/TPU, unroll on the CPU."""
    if backend() != "jax":
        raise TrainingError(
            f"--vmap trains k seeds as one JAX program; this process runs Keras on {backend()!r}: set KERAS_BACKEND=jax"
        )
    if len(set(seeds)) != len(seeds) or not seeds:
        raise TrainingError(f"--vmap needs distinct seeds, got {seeds}")

    runs = layouts(variant, config, seeds, store, workdir)
    for run in runs:
        check_writable(run.store_root)
    code = {"git_commit": provenance.git_commit(), "diff": provenance.source_diff(), "study": study}
    sittings = [Sitting(variant, config.replace(seed=r.seed), r.run_dir, resume, log) for r in runs]
    starts = {s.start for s in sittings}
    if len(starts) != 1:
        at = ", ".join(f"seed {s.config.seed} at epoch {s.start}" for s in sittings)
        raise TrainingError(
            f"--vmap --resume: the seeds' checkpoints stand at different epochs ({at}); resume them without --vmap"
        )
    start = starts.pop()
    jobs = [s.job for s in sittings]
    x_train = jobs[0].train_arrays(data.x_train[: config.train_limit], data.y_train[: config.train_limit])
    x_test = jobs[0].train_arrays(data.x_test[: config.test_limit], data.y_test[: config.test_limit])
    curves = make_curves(curves_from, config, jobs[0].output, log)

    step, values, row = compile_program(jobs, program)
    for epoch in range(start + 1, config.epochs + 1):
        values, records = _epoch(step, values, jobs, x_train, config, seeds, epoch)
        for j, (sitting, record) in enumerate(zip(sittings, records)):
            write_values(sitting.job.groups, row(values, j))
            sitting.close_epoch(record, x_test, curves)
    return [s.export(data, r.store_root, code) for s, r in zip(sittings, runs)]


PROGRAMS = ("auto", "vmap", "unroll")


def compile_program(jobs: list, program: str = "auto"):
    """(step(values, *stacked inputs) -> (values, stacked outputs), initial values, row(values, j) -> seed j's)."""
    import jax

    if program not in PROGRAMS:
        raise TrainingError(f"program {program!r} is not one of {', '.join(PROGRAMS)}")
    if program == "auto":
        program = "unroll" if jax.default_backend() == "cpu" else "vmap"
    pure = jobs[0]._jax_step  # the job's pure step; its networks only lend their structure
    if program == "vmap":
        return (
            jax.jit(jax.vmap(pure)),
            stack([read_values(job.groups) for job in jobs]),
            lambda values, j: jax.tree_util.tree_map(lambda x: x[j], values),
        )

    def unrolled(values: list, *inputs):
        results = [pure(v, *(x[j] for x in inputs)) for j, v in enumerate(values)]
        outputs = jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *[out for _, out in results])
        return [new for new, _ in results], outputs

    return jax.jit(unrolled), [read_values(job.groups) for job in jobs], lambda values, j: values[j]


def stack(per_seed: list[tuple]) -> tuple:
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_seed)


def _epoch(step, values, jobs, x_train, config: TrainConfig, seeds: list[int], epoch: int):
    """One pass for every seed: seed j's data order and noise are a separate run's (training/runner.run_epoch)."""
    import jax

    orders = [np.random.default_rng([s, epoch]).permutation(len(x_train[0])) for s in seeds]
    noise = [np.random.default_rng([s, epoch, 1]) for s in seeds]
    steps = -(-len(x_train[0]) // config.batch_size)
    outputs = []
    t0 = time.perf_counter()
    for i in range(steps):
        window = slice(i * config.batch_size, (i + 1) * config.batch_size)
        inputs = [
            job.step_inputs(tuple(a[order[window]] for a in x_train), rng)
            for job, order, rng in zip(jobs, orders, noise)
        ]
        values, out = step(values, *(np.stack(arrays) for arrays in zip(*inputs)))
        outputs.append(out)
    outputs = jax.device_get(outputs)  # waits for the last step (JAX runs ahead)
    seconds = time.perf_counter() - t0
    records: list[dict[str, Any]] = []
    for j, job in enumerate(jobs):
        per_step = [job.losses(_row(out, j)) for out in outputs]
        means = {k: float(np.mean([float(d[k]) for d in per_step])) for k in per_step[0]}
        records.append(
            {"epoch": epoch, "seconds": round(seconds, 3), "steps": steps, "seeds_in_step": len(seeds), **means}
        )
    return values, records


def _row(outputs, j: int):
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(o[j] for o in outputs)
    return outputs[j]
