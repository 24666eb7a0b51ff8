"""Commands that train: train, sweep, train-evaluator, init-stats."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from arena.variants import FAMILIES
from deconv_arena.args import UserError, add_data, add_overrides, add_store, positive_float, positive_int, seeds


def _add_train(sub: argparse._SubParsersAction) -> None:
    from arena.variants import VARIANTS, factorials

    p = sub.add_parser("train", help="train generator variants and install them into the models store")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--variant", choices=sorted(VARIANTS), help="the variant to train")
    which.add_argument(
        "--all", action="store_true", help="train every variant of the table, VAEs first (they are quick)"
    )
    p.set_defaults(run=cmd_train)
    which.add_argument(
        "--factorial",
        choices=sorted({f.family for f in factorials()}),
        help=(
            "train every cell of the family's operator × network factorial "
            "(from the variant table); with --seeds, its replicate study"
        ),
    )
    add_overrides(p)
    p.add_argument("--seed", type=int, help="seed for initialisation, data order and noise (default 1234)")
    p.add_argument(
        "--seeds",
        type=seeds,
        help=(
            "train replicates instead, one per seed (e.g. 1,2,3 or 1-5), into STORE/_replicates/PROFILE-seedN/, "
            "evaluate them and update STORE/replicates.json; the served model is untouched"
        ),
    )
    add_data(p)
    add_store(p, "models store to install into")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("runs"),
        help="where checkpoints, progress grids and TensorBoard logs go (default: runs)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last epoch checkpoint in --workdir, with the same data order and noise",
    )
    p.add_argument(
        "--no-curves",
        action="store_true",
        help=(
            "skip the per-epoch training curves (checkerboard index and Fréchet "
            "distance on 2,000 samples; they need the evaluator in --store)"
        ),
    )


def all_in_training_order() -> list[str]:
    """Every variant for `train --all`: the VAE kinds first (minutes: vae, cvae), then the GAN kinds (hours), in
    table order within each."""
    from arena.variants import VARIANTS

    return sorted(VARIANTS, key=lambda n: VARIANTS[n].facts.kind != "vae")


def cmd_train(args: argparse.Namespace) -> None:
    """A plan of one job per variant (or of one per seed with --seeds), through the front door in this process."""
    from training.loop.data import DataError, load_mnist
    from training.loop.epochs import TrainingError

    if args.seeds and args.seed is not None:
        raise UserError(
            "--seed and --seeds exclude each other: --seed sets the served run's seed, --seeds trains replicates"
        )
    try:
        data = load_mnist(args.data)
        failed = [f for name in _train_names(args) for f in _train_variant(name, args, data)]
    except (DataError, TrainingError) as e:
        raise UserError(str(e)) from None
    if failed:
        raise UserError(
            f"{len(failed)} replicate(s) failed and are listed as failed in train_plans.json: {', '.join(failed)}"
        )


def _train_names(args: argparse.Namespace) -> list[str]:
    from arena.variants import factorials

    if args.all:
        return all_in_training_order()
    if args.factorial:
        return [n for f in factorials() if f.family == args.factorial for n in f.cells.values()]
    return [args.variant]


def _train_variant(name: str, args: argparse.Namespace, data) -> list[str]:
    """Train one variant's served run or its replicates; returns the replicates that failed ("NAME seed N")."""
    from arena.variants import VARIANTS
    from training.loop.config import profile_config
    from training.sweeps import train_plans

    variant = VARIANTS[name]
    config = profile_config(args.profile, variant.family).replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        train_limit=args.train_limit,
    )
    where = (args.store, args.workdir, args.resume)
    if args.seeds:
        failed = train_plans.train_replicates(variant, config, args.seeds, data, *where, curves=not args.no_curves)
        return [f"{name} seed {s}" for s in failed]
    path = train_plans.train_served(variant, config, data, *where, curves=not args.no_curves)
    print(f"{name}: installed {path}")
    return []


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    from arena.variants import VARIANTS, comparisons, factorials
    from training.sweeps.planning import PRECISIONS

    p = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of runs (variants × seeds × profile) to completion, here or on a Ray cluster",
        description="Plan a grid from the variant table (or a TOML plan file) and run it: finished runs are skipped, "
        "interrupted ones resume from their checkpoints, failed ones are recorded as failed replicates. Run the "
        "same command again to finish what a deadline or a signal stopped.",
    )
    p.set_defaults(run=cmd_sweep)
    what = p.add_argument_group("the plan (combine the selectors; or --plan FILE)")
    what.add_argument("--plan", type=Path, help="a TOML plan file (keys: see training/sweeps/planning.py)")
    what.add_argument(
        "--study",
        type=Path,
        help="a study's analysis plan (studies/*.toml): runs its [sweep] table, cells interleaved within each seed, "
        "and records the plan's SHA-256 in every run's manifest",
    )
    what.add_argument(
        "--factorial", choices=sorted({f.family for f in factorials()}), help="the family's operator × network cells"
    )
    what.add_argument("--family", choices=sorted(FAMILIES), help="every variant of the family")
    what.add_argument(
        "--comparison",
        choices=[v.name for v, _ in comparisons()],
        help="a variant and the reference it is compared with",
    )
    what.add_argument(
        "--variant", action="append", default=[], choices=sorted(VARIANTS), help="a variant (repeat for more)"
    )
    what.add_argument("--seeds", type=seeds, help="replicate seeds, e.g. 1-10 or 1,2,3")
    what.add_argument("--served", action="store_true", help="train the served runs (the profile's seed) instead")
    add_overrides(what)
    what.add_argument(
        "--precision", choices=PRECISIONS, help="JAX's float32 matmul precision (NVIDIA GPUs default to TF32)"
    )
    how = p.add_argument_group("where and how it runs")
    how.add_argument("--engine", choices=("local", "ray"), default="local", help="this machine (default) or Ray")
    how.add_argument(
        "--parallel", type=positive_int, default=1, help="local: jobs side by side, each with its share of the cores"
    )
    how.add_argument("--gpu", action="store_true", help="local: share the GPU's memory among the parallel jobs")
    how.add_argument(
        "--vmap",
        action="store_true",
        help="train the seeds of one variant as one compiled JAX program (KERAS_BACKEND=jax)",
    )
    how.add_argument("--deadline", type=positive_float, help="stop the jobs after this many seconds (resume later)")
    how.add_argument("--address", help="ray: the cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    how.add_argument("--cpus-per-job", type=positive_float, default=1.0, help="ray: CPUs each task asks for")
    how.add_argument("--gpus-per-job", type=float, default=0.0, help="ray: GPU fraction each task asks for (0.1)")
    how.add_argument("--retries", type=int, default=3, help="ray: retries of a task whose worker died (default 3)")
    how.add_argument("--dry-run", action="store_true", help="print the plan and each run's state; run nothing")
    add_data(p)
    add_store(p)
    p.add_argument("--workdir", type=Path, default=Path("runs"), help="checkpoints and job logs (default: runs)")


def cmd_sweep(args: argparse.Namespace) -> int:
    """The sweep's plan, through the front door on the engine it names."""
    from training.loop.data import DataError, load_mnist
    from training.sweeps import stages
    from training.sweeps.planning import PlanError, unit_label

    if args.gpus_per_job < 0 or args.retries < 0:
        bad = f"--gpus-per-job {args.gpus_per_job}" if args.gpus_per_job < 0 else f"--retries {args.retries}"
        raise UserError(f"{bad}: must be ≥ 0")
    try:
        plan = _sweep_plan(args)
    except PlanError as e:
        raise UserError(str(e)) from None
    if args.dry_run:
        print(plan.describe())
        for unit in plan.units(args.vmap):
            print(f"  {unit_label(unit)}: " + ", ".join(stages.state(j, args.store, args.workdir) for j in unit))
        return 0
    if args.vmap and os.environ.get("KERAS_BACKEND") != "jax":
        raise UserError("--vmap trains the seeds as one JAX program: run with KERAS_BACKEND=jax")
    try:
        load_mnist(args.data)  # one clear error here rather than one per job
    except DataError as e:
        raise UserError(str(e)) from None
    import training.evaluation.evaluate  # noqa: F401 (imported now, not from a newer checkout when the sweep ends hours later)

    policy = stages.Policy(study=str(args.study.resolve())) if args.study else stages.SWEEP
    engine = _sweep_engine(args, policy)
    outcome = stages.run(plan, engine, args.store, args.workdir, vmap=args.vmap, policy=policy, deadline=args.deadline)
    print(outcome.summary())
    return 1 if outcome.failed else (143 if outcome.stopped else 0)


def _sweep_plan(args: argparse.Namespace):
    """The plan: a study's [sweep] table (cells interleaved within each seed), a plan file, or the selectors."""
    from training.sweeps import planning as plan

    chosen = {k: getattr(args, k) for k in ("factorial", "family", "comparison")}
    selected = any(chosen.values()) or args.variant or args.seeds or args.served
    if args.study:
        from arena.plans import PlanFileError, load_plan

        if args.plan or selected:
            raise UserError("--study FILE holds the whole plan: drop --plan/--factorial/--family/--variant")
        try:
            study = load_plan(args.study)
        except PlanFileError as e:
            raise UserError(str(e)) from None
        return plan.interleaved(plan.plan([study.sweep]))
    if args.plan:
        if selected:
            raise UserError("--plan FILE holds the whole plan: drop --factorial/--family/--comparison/--variant")
        return plan.read_plan(args.plan)
    keys = ("profile", "precision", "epochs", "batch_size", "learning_rate", "train_limit")
    settings = {k: getattr(args, k) for k in keys}
    return plan.plan([{**chosen, "variants": args.variant, "seeds": args.seeds, "served": args.served, **settings}])


def _sweep_engine(args: argparse.Namespace, policy):
    """The Ray engine, or the local one (SIGTERM and SIGINT stop its jobs, which resume on the next run)."""
    if args.engine == "ray":
        from training.sweeps.ray_engine import RayEngine, RayUnavailable

        try:
            return RayEngine(
                args.store,
                args.workdir,
                args.data,
                args.address,
                args.cpus_per_job,
                args.gpus_per_job,
                args.retries,
                policy=policy,
            )
        except RayUnavailable as e:
            raise UserError(str(e)) from None
    import signal

    from training.sweeps.engines import Local

    engine = Local(args.store, args.workdir, args.data, parallel=args.parallel, gpu=args.gpu, policy=policy)
    signal.signal(signal.SIGTERM, engine.stop)
    signal.signal(signal.SIGINT, engine.stop)
    return engine


def _add_init_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init-stats",
        help=(
            "checkerboard index and polyphase CV of every variant at "
            "random initialisation (seconds), into STORE/init_stats.json"
        ),
    )
    p.set_defaults(run=cmd_init_stats)
    p.add_argument("--inits", type=positive_int, default=20, help="random initialisations per variant (default 20)")
    p.add_argument("--samples", type=positive_int, default=256, help="outputs per initialisation (default 256)")
    add_store(p, "models store with the evaluator")


def cmd_init_stats(args: argparse.Namespace) -> None:
    from training.evaluation.classifier import EvaluatorError
    from training.evaluation.init_stats import compute

    if args.inits < 2:
        raise UserError(f"--inits {args.inits}: an interval needs at least 2 initialisations")
    try:
        compute(args.store, args.inits, args.samples)
    except EvaluatorError as e:
        raise UserError(str(e)) from None


def _add_train_evaluator(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-evaluator", help="train the MNIST classifier whose features the metrics use (≥ 99%% test accuracy)"
    )
    p.set_defaults(run=cmd_train_evaluator)
    p.add_argument("--epochs", type=positive_int, default=4, help="training epochs (default 4)")
    p.add_argument(
        "--independent",
        action="store_true",
        help="train the independent classifier instead (another architecture and seed, STORE/_evaluator_independent):"
        " its features give the Fréchet distance a second, independent feature space",
    )
    add_data(p)
    add_store(p)


def cmd_train_evaluator(args: argparse.Namespace) -> None:
    from training.evaluation.classifier import INDEPENDENT, NAME, EvaluatorError, train_evaluator
    from training.loop.data import DataError, load_mnist

    try:
        name = INDEPENDENT if args.independent else NAME
        train_evaluator(load_mnist(args.data), args.store, epochs=args.epochs, name=name, min_accuracy=0.99)
    except (DataError, EvaluatorError) as e:
        raise UserError(str(e)) from None


def add(sub: argparse._SubParsersAction) -> None:
    for adder in (_add_train, _add_sweep, _add_train_evaluator, _add_init_stats):
        adder(sub)
