"""`deconv-arena`: train, evaluate and serve. Errors a user can cause print one line and exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from arena.variants import FAMILIES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_STORE = Path(os.environ.get("ARENA_MODELS_STORE", "models_store"))


class UserError(Exception):
    """Printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer (≥ 1)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _seeds(raw: str) -> list[int]:
    from arena.replicates import seed_list

    try:
        return seed_list(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_train(sub: argparse._SubParsersAction) -> None:
    from arena.variants import VARIANTS, factorials
    from training.config import PROFILES

    p = sub.add_parser("train", help="train generator variants and install them into the models store")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--variant", choices=sorted(VARIANTS), help="the variant to train")
    which.add_argument(
        "--all", action="store_true", help="train every variant of the table, VAEs first (they are quick)"
    )
    which.add_argument(
        "--factorial",
        choices=sorted({f.family for f in factorials()}),
        help=(
            "train every cell of the family's operator × network factorial "
            "(from the variant table); with --seeds, its replicate study"
        ),
    )
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="paper",
        help=(
            "paper: the report's protocol (GAN 50 epochs, VAE 10); quick: fewer "
            "epochs; smoke: a few steps on a few hundred images (default: paper)"
        ),
    )
    p.add_argument(
        "--epochs", type=_positive_int, help="override the profile's number of epochs (a total, also when resuming)"
    )
    p.add_argument("--batch-size", type=_positive_int, help="override the profile's batch size (GAN 256, VAE 32)")
    p.add_argument("--learning-rate", type=_positive_float, help="override Adam's learning rate (1e-4)")
    p.add_argument("--seed", type=int, help="seed for initialisation, data order and noise (default 1234)")
    p.add_argument(
        "--seeds",
        type=_seeds,
        help=(
            "train replicates instead, one per seed (e.g. 1,2,3 or 1-5), into STORE/_replicates/PROFILE-seedN/, "
            "evaluate them and update STORE/replicates.json; the served model is untouched"
        ),
    )
    p.add_argument("--train-limit", type=_positive_int, help="train on only the first N training images")
    p.add_argument(
        "--data", type=Path, help="MNIST in Keras' mnist.npz layout (else $MNIST_NPZ, else the Keras download)"
    )
    p.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help="models store to install into (default: models_store)"
    )
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
    from arena.variants import VARIANTS, factorials
    from training.config import profile_config
    from training.data import DataError, load_mnist
    from training.runner import TrainingError, train_variant

    if args.all:
        names = all_in_training_order()
    elif args.factorial:
        names = [n for f in factorials() if f.family == args.factorial for n in f.cells.values()]
    else:
        names = [args.variant]
    if args.seeds and args.seed is not None:
        raise UserError(
            "--seed and --seeds exclude each other: --seed sets the served run's seed, --seeds trains replicates"
        )
    try:
        data = load_mnist(args.data)
        failed = []
        for name in names:
            variant = VARIANTS[name]
            config = profile_config(args.profile, variant.family).replace(
                epochs=args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                seed=args.seed,
                train_limit=args.train_limit,
            )
            if args.seeds:
                from training.replicates import train_replicates

                failed += [
                    f"{name} seed {s}"
                    for s in train_replicates(
                        variant,
                        config,
                        args.seeds,
                        data,
                        args.store,
                        args.workdir,
                        args.resume,
                        curves=not args.no_curves,
                    )
                ]
                continue
            path = train_variant(
                variant,
                config,
                data,
                args.store,
                args.workdir,
                resume=args.resume,
                curves_from=None if args.no_curves else args.store,
            )
            print(f"{name}: installed {path}")
    except (DataError, TrainingError) as e:
        raise UserError(str(e)) from None
    if failed:
        raise UserError(
            f"{len(failed)} replicate(s) failed and are listed as failed in replicates.json: {', '.join(failed)}"
        )


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    from arena.variants import VARIANTS, comparisons, factorials
    from training.config import PROFILES
    from training.sweep import PRECISIONS

    p = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of runs (variants × seeds × profile) to completion, here or on a Ray cluster",
        description="Plan a grid from the variant table (or a TOML plan file) and run it: finished runs are skipped, "
        "interrupted ones resume from their checkpoints, failed ones are recorded as failed replicates. Run the "
        "same command again to finish what a deadline or a signal stopped.",
    )
    what = p.add_argument_group("the plan (combine the selectors; or --plan FILE)")
    what.add_argument("--plan", type=Path, help="a TOML plan file (keys: see training/sweep.py)")
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
    what.add_argument("--seeds", type=_seeds, help="replicate seeds, e.g. 1-10 or 1,2,3")
    what.add_argument("--served", action="store_true", help="train the served runs (the profile's seed) instead")
    what.add_argument("--profile", choices=PROFILES, default="paper", help="paper (default), quick or smoke")
    what.add_argument("--epochs", type=_positive_int, help="override the profile's epochs")
    what.add_argument("--batch-size", type=_positive_int, help="override the profile's batch size")
    what.add_argument("--learning-rate", type=_positive_float, help="override Adam's learning rate")
    what.add_argument("--train-limit", type=_positive_int, help="train on only the first N training images")
    what.add_argument(
        "--precision", choices=PRECISIONS, help="JAX's float32 matmul precision (NVIDIA GPUs default to TF32)"
    )
    how = p.add_argument_group("where and how it runs")
    how.add_argument("--engine", choices=("local", "ray"), default="local", help="this machine (default) or Ray")
    how.add_argument(
        "--parallel", type=_positive_int, default=1, help="local: jobs side by side, each with its share of the cores"
    )
    how.add_argument("--gpu", action="store_true", help="local: share the GPU's memory among the parallel jobs")
    how.add_argument(
        "--vmap",
        action="store_true",
        help="train the seeds of one variant as one compiled JAX program (KERAS_BACKEND=jax)",
    )
    how.add_argument(
        "--deadline", type=_positive_float, help="local: stop the jobs after this many seconds (resume later)"
    )
    how.add_argument("--address", help="ray: the cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    how.add_argument("--cpus-per-job", type=_positive_float, default=1.0, help="ray: CPUs each task asks for")
    how.add_argument("--gpus-per-job", type=float, default=0.0, help="ray: GPU fraction each task asks for (0.1)")
    how.add_argument("--retries", type=int, default=3, help="ray: retries of a task whose worker died (default 3)")
    how.add_argument("--dry-run", action="store_true", help="print the plan and each run's state; run nothing")
    p.add_argument(
        "--data", type=Path, help="MNIST in Keras' mnist.npz layout (else $MNIST_NPZ, else the Keras download)"
    )
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="models store (default: models_store)")
    p.add_argument("--workdir", type=Path, default=Path("runs"), help="checkpoints and job logs (default: runs)")


def cmd_sweep(args: argparse.Namespace) -> int:
    from training import sweep

    if args.gpus_per_job < 0 or args.retries < 0:
        bad = f"--gpus-per-job {args.gpus_per_job}" if args.gpus_per_job < 0 else f"--retries {args.retries}"
        raise UserError(f"{bad}: must be ≥ 0")
    chosen = {k: getattr(args, k) for k in ("factorial", "family", "comparison")}
    try:
        if args.study:
            from arena.plans import ENV, PlanFileError, load_plan

            if args.plan or any(chosen.values()) or args.variant or args.seeds or args.served:
                raise UserError("--study FILE holds the whole plan: drop --plan/--factorial/--family/--variant")
            try:
                study = load_plan(args.study)
            except PlanFileError as e:
                raise UserError(str(e)) from None
            plan = sweep.interleaved(sweep.plan([study.sweep]))
            os.environ[ENV] = str(args.study.resolve())  # every job's manifest records the plan (training/runner.py)
        elif args.plan:
            if any(chosen.values()) or args.variant or args.seeds or args.served:
                raise UserError("--plan FILE holds the whole plan: drop --factorial/--family/--comparison/--variant")
            plan = sweep.read_plan(args.plan)
        else:
            plan = sweep.plan(
                [
                    {
                        **chosen,
                        "variants": args.variant,
                        "seeds": args.seeds,
                        "served": args.served,
                        "profile": args.profile,
                        "precision": args.precision,
                        "epochs": args.epochs,
                        "batch_size": args.batch_size,
                        "learning_rate": args.learning_rate,
                        "train_limit": args.train_limit,
                    }
                ]
            )
    except sweep.PlanError as e:
        raise UserError(str(e)) from None
    if args.dry_run:
        print(plan.describe())
        for unit in plan.units(args.vmap):
            print(f"  {sweep.unit_label(unit)}: " + ", ".join(sweep.state(j, args.store, args.workdir) for j in unit))
        return 0
    if args.vmap and os.environ.get("KERAS_BACKEND") != "jax":
        raise UserError("--vmap trains the seeds as one JAX program: run with KERAS_BACKEND=jax")
    from training.data import DataError, load_mnist

    try:
        load_mnist(args.data)  # one clear error here rather than one per job
    except DataError as e:
        raise UserError(str(e)) from None
    import training.evaluate  # noqa: F401 (imported now, not from a newer checkout when the sweep ends hours later)

    if args.engine == "ray":
        from training.sweep_ray import RayUnavailable, run_ray

        try:
            outcome = run_ray(
                plan,
                args.store,
                args.workdir,
                args.data,
                vmap=args.vmap,
                address=args.address,
                cpus=args.cpus_per_job,
                gpus=args.gpus_per_job,
                retries=args.retries,
            )
        except RayUnavailable as e:
            raise UserError(str(e)) from None
    else:
        import signal

        children = sweep.Children()
        signal.signal(signal.SIGTERM, children.stop)
        signal.signal(signal.SIGINT, children.stop)
        outcome = sweep.run_local(
            plan,
            args.store,
            args.workdir,
            args.data,
            parallel=args.parallel,
            vmap=args.vmap,
            gpu=args.gpu,
            deadline=args.deadline,
            children=children,
        )
    print(outcome.summary())
    return 1 if outcome.failed else (143 if outcome.stopped else 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deconv-arena",
        description="Transposed vs resize-convolution generators on MNIST: train, evaluate, serve, rate.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_train,
        _add_sweep,
        _add_serve,
        _add_evaluate,
        _add_init_stats,
        _add_import,
        _add_export,
        _add_campaign,
    ):
        add(sub)
    return parser


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="check a generator of your own (.keras) and install it into the models store, with a manifest"
    )
    p.add_argument(
        "file",
        type=Path,
        help="Keras 3 model file: one latent vector in (or a latent and a one-hot label of 10), one 28×28×1 image out",
    )
    p.add_argument("--name", required=True, help="its name in the store and the URLs (lower-case letters, digits, _)")
    p.add_argument("--family", required=True, choices=sorted(FAMILIES), help="compared and rated with this family")
    p.add_argument(
        "--output",
        required=True,
        choices=("tanh", "logits", "sigmoid"),
        help="what the last layer gives: tanh in [-1, 1], logits, or sigmoid in [0, 1]",
    )
    p.add_argument("--notes", default="", help="a line on what it is (shown on its pages)")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="models store (default: models_store)")


def cmd_import(args: argparse.Namespace) -> None:
    from training.importer import ImportError_, import_generator

    try:
        path = import_generator(args.file, args.name, args.family, args.output, args.store, args.notes)
    except ImportError_ as e:
        raise UserError(str(e)) from None
    print(
        f"{args.name}: installed {path}; restart the server to serve it, "
        f"then `deconv-arena evaluate --variant {args.name}` for its metrics"
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export installed generators to ONNX, the file the service runs (needs TensorFlow: the train extra)",
        description="Exports every served model whose generator.onnx is missing or was exported from another "
        ".keras file (runs unpacked from a GPU machine, a store from before ONNX), checks each against its Keras "
        "model on fixed latents and records the check in its manifest. Training and import export by themselves.",
    )
    p.add_argument("names", nargs="*", help="models to export (default: every model folder that needs it)")
    p.add_argument("--force", action="store_true", help="export again even when the ONNX file is current")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="models store (default: models_store)")


def cmd_export(args: argparse.Namespace) -> None:
    from arena.manifest import MANIFEST, ManifestError

    try:
        from training.onnx_export import ExportError, export_installed, is_current
    except ImportError as e:
        raise UserError(f"export needs TensorFlow and tf2onnx ({e}); pip install 'deconv-arena[train]'") from None
    folders = sorted(p.parent for p in args.store.glob(f"*/{MANIFEST}") if not p.parent.name.startswith((".", "_")))
    known = {p.name: p for p in folders}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise UserError(
            f"no model {', '.join(map(repr, unknown))} in {args.store}; it has {', '.join(known) or 'none'}"
        )
    chosen = [known[n] for n in args.names] if args.names else folders
    for folder in chosen:
        if is_current(folder) and not args.force:
            print(f"{folder.name}: generator.onnx is current")
            continue
        try:
            record = export_installed(folder)
        except (ExportError, ManifestError) as e:
            raise UserError(str(e)) from None
        print(
            f"{folder.name}: exported generator.onnx (max |ONNX − Keras| {record['check']['max_abs_diff']:.2g} on "
            f"{record['check']['rows']} latents; {record['shared_weight_bytes'] / 2**20:.1f} MiB of weights read "
            "from generator.keras)"
        )


def _add_init_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init-stats",
        help=(
            "checkerboard index and polyphase CV of every variant at "
            "random initialisation (seconds), into STORE/init_stats.json"
        ),
    )
    p.add_argument("--inits", type=_positive_int, default=20, help="random initialisations per variant (default 20)")
    p.add_argument("--samples", type=_positive_int, default=256, help="outputs per initialisation (default 256)")
    p.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help="models store with the evaluator (default: models_store)"
    )


def cmd_init_stats(args: argparse.Namespace) -> None:
    from training.evaluator import EvaluatorError
    from training.init_stats import compute

    if args.inits < 2:
        raise UserError(f"--inits {args.inits}: an interval needs at least 2 initialisations")
    try:
        compute(args.store, args.inits, args.samples)
    except EvaluatorError as e:
        raise UserError(str(e)) from None


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the dashboard and API with uvicorn (settings from ARENA_* variables)")
    p.add_argument("--host", help="address to bind (ARENA_HOST, default 127.0.0.1; use 0.0.0.0 in a container)")
    p.add_argument("--port", type=_positive_int, help="port (ARENA_PORT, default 8000)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        help=(
            "worker processes, each with its own models (ARENA_WORKERS, default 1; needs ARENA_SECRET_KEY when above 1)"
        ),
    )
    p.add_argument("--store", type=Path, help="models store (ARENA_MODELS_STORE, default models_store)")
    p.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="log level (ARENA_LOG_LEVEL, default info)"
    )


def cmd_serve(args: argparse.Namespace) -> None:
    import logging

    import uvicorn

    from app.main import create_app

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "models_store": args.store,
            "log_level": args.log_level,
        }.items()
        if v is not None
    }
    settings = _settings(overrides)
    _campaign_plan(settings)
    why = settings.needs_secret_key()
    if why:
        raise UserError(
            f"ARENA_SECRET_KEY is not set, but {why}: each process would sign rater cookies with its own random "
            "key and refuse the others'; set ARENA_SECRET_KEY to one long random secret shared by all of them"
        )
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    # SIGTERM: uvicorn stops accepting, lets in-flight requests finish (up to the timeout), then runs the lifespan exit.
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 20,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    # Worker processes build their own app from the environment, so the command line's overrides go there.
    for key, value in overrides.items():
        os.environ[f"ARENA_{key.upper()}"] = str(value)
    uvicorn.run("app.main:create_app", factory=True, workers=settings.workers, **common)


def _settings(overrides: dict):
    """The service's settings (ARENA_* variables, then the command line's overrides); a wrong one is one line."""
    from pydantic import ValidationError

    from app.core.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"setting {'.'.join(map(str, first['loc']))}={first.get('input')!r}: {first['msg']}") from None


def _campaign_plan(settings):
    from app.ratings.campaign import DEFAULT_PLAN, CampaignPlanError, load_campaign

    try:
        return load_campaign(settings.campaign_plan or DEFAULT_PLAN)
    except CampaignPlanError as e:
        raise UserError(f"ARENA_CAMPAIGN_PLAN: {e}") from None


def _add_campaign(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign",
        help="the rating campaign: `campaign plan` says how many more votes each open question needs",
        description="Reads the votes database (ARENA_DATABASE_URL) and the campaign plan (ARENA_CAMPAIGN_PLAN, else "
        "the shipped one) and prints, per question, its counted votes (gold tasks and flagged raters left out), the "
        "votes its plan fixes, how many more it needs and at which vote its next planned look comes, and its "
        "verdict once decided. It never writes to the database.",
    )
    what = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    plan = what.add_parser("plan", help="votes per question: counted, planned, still needed, next look, verdict")
    plan.add_argument("--store", type=Path, help="models store whose models are served (ARENA_MODELS_STORE)")
    plan.add_argument("--json", action="store_true", help="print the campaign's standing as JSON (as /api/campaign)")


def _served_names(store: Path) -> list[str]:
    """The models a server on this store would serve: its model folders with a manifest (nothing is loaded)."""
    from arena.manifest import MANIFEST

    return sorted(p.parent.name for p in store.glob(f"*/{MANIFEST}") if not p.parent.name.startswith((".", "_")))


def cmd_campaign(args: argparse.Namespace) -> None:
    import json

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from app.ratings.analysis import counted_votes
    from app.ratings.campaign import human_verdicts
    from app.store import StoreUnavailable, VoteStore

    settings = _settings({"models_store": args.store} if args.store else {})
    plan = _campaign_plan(settings)
    url = settings.database_url
    db = make_url(url).database if url.startswith("sqlite") else None
    if db and db != ":memory:" and not db.startswith("file:") and not Path(db).exists():
        votes, raters, source = [], [], f"no votes database at {db} yet"
    else:
        try:
            store = VoteStore(url)
            votes, raters = store.votes(), store.raters()
        except (StoreUnavailable, SQLAlchemyError) as e:  # an unreachable server, a database without the schema
            raise UserError(
                f"ARENA_DATABASE_URL: cannot read votes from {make_url(url).render_as_string()}: "
                f"{str(e).splitlines()[0]}"
            ) from None
        source = f"{len(votes)} votes from {len(raters)} raters in {make_url(url).render_as_string()}"
    flagged = {r.id for r in raters if r.flagged}
    counted = counted_votes(votes, flagged, settings.exclude_flagged)
    served = _served_names(settings.models_store)
    standing = human_verdicts(plan, counted, served)
    if args.json:
        print(json.dumps(standing, indent=2))
        return
    print(campaign_table(standing, source, len(flagged), settings.exclude_flagged))


def campaign_table(standing: dict, source: str, flagged: int, excluded: bool) -> str:
    """The plain-text campaign plan: a header with the plan and the votes read, one line per question."""
    lines = [
        f"campaign {standing['plan']} ({standing['file']}, sha256 {standing['sha256'][:12]}): {standing['title']}",
        f"  {source}; {flagged} flagged rater{'s' if flagged != 1 else ''} "
        + ("left out" if excluded else "counted (ARENA_EXCLUDE_FLAGGED=false)"),
        f"  fixed before the votes: {standing['votes_per_question']} votes per question (power "
        f"{standing['power']:.0%} for a win share of {standing['effect']:.0%} at α {standing['alpha']}/"
        f"{len(standing['questions'])}, Holm's strictest step),",
        f"  looks at {', '.join(map(str, standing['looks']))} votes, interim boundary p < {standing['interim_p']}",
        f"  {standing['scope']}",
        "",
        f"  {'question':<44} {'votes':>6} {'planned':>8} {'needed':>7} {'next look':>10}  standing",
    ]
    for q in standing["questions"]:
        pair = f"{q['a']} vs {q['b']}" + ("" if q["served"] else " (not served)")
        look = str(q["next_look"]) if q["next_look"] else "-"
        if q["status"] == "open":
            state = "open"
        else:
            at = f"closed at look {q['closed_at_look']}" if q["status"] == "closed" else "complete"
            share = "" if q["share"] is None else f", {q['share']:.0%} [{q['interval'][0]:.0%}, {q['interval'][1]:.0%}]"
            state = f"{at}: {q['verdict']}{share}"
        lines.append(
            f"  {pair:<44} {q['votes']:>6} {q['planned_votes']:>8} {q['more_votes_needed']:>7} {look:>10}  {state}"
        )
    lines += ["", f"  {standing['open']} served question(s) open; {standing['more_votes_needed']} more votes needed"]
    return "\n".join(lines)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from arena.variants import VARIANTS

    p = sub.add_parser(
        "evaluate", help="measure every generator (Fréchet distance, KID, PRDC, legibility, checkerboard, cost)"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--variant", metavar="NAME", help=f"evaluate one model: {', '.join(VARIANTS)} or an imported one in the store"
    )
    which.add_argument("--all", action="store_true", help="evaluate every model in the store")
    which.add_argument(
        "--replicates",
        action="store_true",
        help="evaluate every replicate run in STORE/_replicates and rewrite STORE/replicates.json",
    )
    p.add_argument(
        "--samples", type=_positive_int, default=10_000, help="samples per model, and real test images (default 10000)"
    )
    p.add_argument(
        "--data", type=Path, help="MNIST in Keras' mnist.npz layout (else $MNIST_NPZ, else the Keras download)"
    )
    p.add_argument(
        "--artefacts-only",
        action="store_true",
        help="add only the metrics added since a run was evaluated (the artefact score; the Fréchet distance in the "
        "independent classifier's features, when STORE has it) to evaluated runs that still have their weights, from "
        "the samples their evaluation drew; every other figure stays (with --all or --replicates)",
    )
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="models store (default: models_store)")

    t = sub.add_parser(
        "train-evaluator", help="train the MNIST classifier whose features the metrics use (≥ 99%% test accuracy)"
    )
    t.add_argument("--epochs", type=_positive_int, default=4, help="training epochs (default 4)")
    t.add_argument(
        "--independent",
        action="store_true",
        help="train the independent classifier instead (another architecture and seed, STORE/_evaluator_independent):"
        " its features give the Fréchet distance a second, independent feature space",
    )
    t.add_argument(
        "--data", type=Path, help="MNIST in Keras' mnist.npz layout (else $MNIST_NPZ, else the Keras download)"
    )
    t.add_argument("--store", type=Path, default=DEFAULT_STORE, help="models store (default: models_store)")


def _rescore_artefacts(args: argparse.Namespace) -> None:
    from arena.manifest import GENERATOR
    from arena.replicates import REPLICATES
    from training.evaluate import EvaluationError, rescore_artefacts, write_statistics

    pattern = f"{REPLICATES}/*/*/metrics.json" if args.replicates else "*/metrics.json"
    folders = sorted(p.parent for p in args.store.glob(pattern) if not p.parent.name.startswith((".", "_")))
    if args.variant:
        folders = [f for f in folders if f.name == args.variant]
    kept = [f for f in folders if (f / GENERATOR).is_file()]
    for folder in kept:
        try:
            a = rescore_artefacts(folder, args.store)
        except EvaluationError as e:
            raise UserError(str(e)) from None
        print(
            f"{folder.relative_to(args.store)}: Nyquist excess {a['nyquist_excess']:.3f}, "
            f"period-4 {a['period4_excess']:.3f}"
        )
    print(f"{len(kept)} of {len(folders)} evaluated runs re-scored; the others have no weights (old metric only)")
    if args.replicates:
        write_statistics(args.store)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from arena.variants import VARIANTS
    from training.data import DataError, load_mnist
    from training.evaluate import EvaluationError, evaluate_all
    from training.evaluator import EvaluatorError

    if args.artefacts_only:
        return _rescore_artefacts(args)
    if args.replicates:
        from training.evaluate import evaluate_replicates

        try:
            failed = evaluate_replicates(args.store, load_mnist(args.data), n=args.samples)
        except (DataError, EvaluationError, EvaluatorError) as e:
            raise UserError(str(e)) from None
        if failed:
            raise UserError(
                f"{len(failed)} replicate evaluation(s) failed; they are listed as failed in replicates.json"
            )
        return
    if args.all:
        imported = sorted(
            p.parent.name
            for p in args.store.glob("*/manifest.json")
            if not p.parent.name.startswith((".", "_")) and p.parent.name not in VARIANTS
        )
        names = [n for n in VARIANTS if (args.store / n / "manifest.json").is_file()] + imported
        if not names:
            raise UserError(f"no trained models in {args.store}; run `deconv-arena train --all` first")
    else:
        names = [args.variant]
        if not (args.store / args.variant / "manifest.json").is_file():
            how = (
                f"train it first (`deconv-arena train --variant {args.variant}`)"
                if args.variant in VARIANTS
                else f"the variants are {', '.join(VARIANTS)}; import your own with `deconv-arena import`"
            )
            raise UserError(f"{args.variant!r} is not in {args.store}; {how}")
    try:
        evaluate_all(names, args.store, load_mnist(args.data), n=args.samples)
    except (DataError, EvaluationError, EvaluatorError) as e:
        raise UserError(str(e)) from None


def cmd_train_evaluator(args: argparse.Namespace) -> None:
    from training.data import DataError, load_mnist
    from training.evaluator import INDEPENDENT, NAME, EvaluatorError, train_evaluator

    try:
        name = INDEPENDENT if args.independent else NAME
        train_evaluator(load_mnist(args.data), args.store, epochs=args.epochs, name=name, min_accuracy=0.99)
    except (DataError, EvaluatorError) as e:
        raise UserError(str(e)) from None


COMMANDS = {
    "train": cmd_train,
    "sweep": cmd_sweep,
    "serve": cmd_serve,
    "evaluate": cmd_evaluate,
    "train-evaluator": cmd_train_evaluator,
    "init-stats": cmd_init_stats,
    "import": cmd_import,
    "export": cmd_export,
    "campaign": cmd_campaign,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
    except UserError as e:
        print(f"deconv-arena {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"deconv-arena {args.command}: interrupted; nothing was installed for the unfinished variant",
            file=sys.stderr,
        )
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
