"""The epoch loop shared by both families: checkpoints, progress grids, TensorBoard, atomic export."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from arena.images import render_grid, save_gif, to_unit
from arena.latents import latents_from_seed
from arena.layout import CHECKPOINT, STATUS
from arena.records import GENERATOR, SERVED, install_dir, sha256_file, staging_dir, write_json_atomic, write_manifest
from arena.variants import Variant
from training.families.dispatch import JOBS
from training.loop import provenance
from training.loop.config import TrainConfig
from training.loop.data import Mnist

RECON_COUNT = 16
CURVE_SEED = 4049  # latents of the training curves, the same for every variant and epoch
CURVE_SAMPLES = 2000  # Fréchet distance on all of them, checkerboard index on all of them (≥ 1,000 asked)


class Curves:
    """Per-epoch quality while training: the checkerboard index (× real digits) and the classifier-feature
    Fréchet distance against the real test set, on CURVE_SAMPLES samples of fixed latents, with the evaluator that
    `deconv-arena evaluate` uses. Written into each epoch's record (manifest history, TensorBoard)."""

    def __init__(self, store: Path, latent_dim: int, output: str):
        from training.evaluation.classifier import load_evaluator

        self.evaluator, _, ref = load_evaluator(store)
        self.mu, self.sigma, self.real_cb = ref["test_mu"], ref["test_sigma"], float(ref["checkerboard_index"])
        self.latents, self.output = latents_from_seed(CURVE_SEED, CURVE_SAMPLES, latent_dim), output

    def __call__(self, job) -> dict[str, float]:
        from training.evaluation import measures

        t0 = time.perf_counter()
        rows = job.generator_inputs(self.latents)
        samples = np.concatenate(
            [to_unit(job.sample(rows[i : i + 500]), self.output) for i in range(0, len(rows), 500)]
        )
        fd = measures.frechet_distance(*measures.gaussian_stats(self.evaluator.features(samples)), self.mu, self.sigma)
        cb = measures.checkerboard_index(samples) / self.real_cb
        return {
            "curve_frechet": round(float(fd), 4),
            "curve_checkerboard_ratio": round(float(cb), 4),
            "curve_seconds": round(time.perf_counter() - t0, 3),
        }


def make_curves(evaluator_store: Path | None, config: TrainConfig, output: str, log: Callable[[str], None]):
    """The curve measurer, or None (with a line saying why) when there is no evaluator to measure with."""
    if evaluator_store is None:
        return None
    from training.evaluation.classifier import EvaluatorError

    try:
        return Curves(evaluator_store, config.latent_dim, output)
    except EvaluatorError as e:
        log(f"training curves off: {e}")
        return None


class TrainingError(Exception):
    """A problem the user can fix (bad checkpoint, unwritable store); the message says how."""


def make_job(variant: Variant, config: TrainConfig):
    """The variant's training job; a conditional variant (`classes` > 0) gets the label at the generator's input
    and as channels of the discriminator's or encoder's."""
    return JOBS[variant.facts.kind](
        variant.upsampling,
        config.latent_dim,
        config.learning_rate,
        config.batch_size,
        variant.kernel,
        variant.layout,
        variant.classes,
    )


def check_writable(store: Path) -> None:
    """Fail before training, not after, when the store cannot take a model."""
    try:
        probe = staging_dir(store, "probe")
        probe.rmdir()
    except OSError as e:
        raise TrainingError(
            f"models store {store} is not writable ({e.strerror}); pass --store DIR to a writable folder"
        ) from None


def train_variant(
    variant: Variant,
    config: TrainConfig,
    data: Mnist,
    store: Path,
    workdir: Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    curves_from: Path | None = None,
    study: dict[str, Any] | None = None,
) -> Path:
    """Train one variant, checkpointing each epoch, then install it into `store/<name>/`. With `curves_from` (a
    store holding the evaluator), every epoch also records the training curves (see Curves); `study`: the analysis
    plan's record (arena/plans.py) its manifest keeps, None outside a study."""
    store = Path(store)
    check_writable(store)
    # what this sitting trains with, and under which plan
    code = {"git_commit": provenance.git_commit(), "diff": provenance.source_diff(), "study": study}
    run = Sitting(variant, config, Path(workdir) / variant.name, resume, log)
    x_train = run.job.train_arrays(data.x_train[: config.train_limit], data.y_train[: config.train_limit])
    x_test = run.job.train_arrays(data.x_test[: config.test_limit], data.y_test[: config.test_limit])
    curves = make_curves(curves_from, config, run.job.output, log)
    for epoch in range(run.start + 1, config.epochs + 1):
        record = run_epoch(run.job, x_train, config, epoch)
        run.job.sync()
        run.close_epoch(record, x_test, curves)
    return run.export(data, store, code)


class Sitting:
    """One run's state across a sitting: its job (restored from the checkpoint when resuming), history, the epochs
    earlier sittings resumed after, and what each finished epoch writes (progress grid, TensorBoard, checkpoint,
    status). `train_variant` drives one; training/loop/vmapped.py drives k of them with one compiled step."""

    def __init__(self, variant: Variant, config: TrainConfig, run_dir: Path, resume: bool, log: Callable[[str], None]):
        self.variant, self.config, self.run_dir, self.log = variant, config, Path(run_dir), log
        keras.utils.set_random_seed(config.seed)
        self.job = make_job(variant, config)
        self.history: list[dict[str, Any]] = []
        self.start = 0
        if resume:
            self.start, self.history = _restore(self.job, self.run_dir, config)
            log(f"{variant.name}: resuming after epoch {self.start} of {config.epochs}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        # every epoch a sitting resumed after (the manifest says)
        self.resumed = [*_resumed_list(self.run_dir), self.start] if resume else []
        (self.run_dir / "progress").mkdir(parents=True, exist_ok=True)
        self.fixed = latents_from_seed(config.progress_seed, config.progress_count, config.latent_dim)
        if self.start == 0:
            _save_progress(self.job, self.fixed, self.run_dir, 0)
        self.writer = _summary_writer(self.run_dir)

    def close_epoch(self, record: dict[str, Any], x_test: tuple[np.ndarray, ...], curves) -> None:
        """Everything after an epoch's steps (the job's variables already synced)."""
        epoch = record["epoch"]
        record.update(self.job.end_of_epoch(x_test, np.random.default_rng([self.config.seed, epoch, 2])))
        if curves is not None:
            record.update(curves(self.job))
        self.history.append(record)
        _save_progress(self.job, self.fixed, self.run_dir, epoch)
        _log_scalars(self.writer, record)
        _save_checkpoint(self.job, self.run_dir, self.config, epoch, self.history, self.resumed)
        write_status(self.run_dir, self.config.epochs, self.history)
        left = (self.config.epochs - epoch) * float(np.mean([h["seconds"] for h in self.history[-5:]]))
        self.log(
            f"{self.variant.name} epoch {epoch}/{self.config.epochs}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch")
            + (f" (ETA {eta_text(left)})" if epoch < self.config.epochs else "")
        )

    def export(self, data: Mnist, store: Path, code: dict) -> Path:
        return export(
            self.job, self.variant, self.config, data, store, self.run_dir, self.history, self.fixed, self.resumed, code
        )


def eta_text(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def write_status(run_dir: Path, epochs: int, history: list[dict[str, Any]]) -> None:
    """A few bytes a sweep reads to show progress (epoch, seconds per epoch) without opening the checkpoint."""
    seconds = [h["seconds"] for h in history[-5:]]
    write_json_atomic(
        run_dir / STATUS,
        {
            "epoch": history[-1]["epoch"] if history else 0,
            "epochs": epochs,
            "seconds_per_epoch": round(float(np.mean(seconds)), 3) if seconds else None,
        },
    )


def run_epoch(job, x_train: tuple[np.ndarray, ...], config: TrainConfig, epoch: int) -> dict[str, Any]:
    """One pass over a full shuffle (buffer = dataset); the data order and noise derive from (seed, epoch)."""
    order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train[0]))
    noise_rng = np.random.default_rng([config.seed, epoch, 1])
    steps = -(-len(order) // config.batch_size)
    bar = keras.utils.Progbar(steps, verbose=1 if sys.stderr.isatty() else 0, unit_name="batch")
    losses: dict[str, list] = {}
    t0 = time.perf_counter()
    for i in range(steps):
        window = order[i * config.batch_size : (i + 1) * config.batch_size]
        batch = tuple(a[window] for a in x_train)
        for k, v in job.train_batch(batch, noise_rng).items():
            losses.setdefault(k, []).append(v)
        if i % 20 == 19 or i == steps - 1:
            bar.update(i + 1)
    means = {
        k: float(np.mean([float(t) for t in v])) for k, v in losses.items()
    }  # waits for the last step (JAX runs ahead)
    seconds = time.perf_counter() - t0
    record: dict[str, Any] = {"epoch": epoch, "seconds": round(seconds, 3), "steps": steps}
    record.update(means)
    return record


def _save_progress(job, fixed: np.ndarray, run_dir: Path, epoch: int) -> None:
    images = to_unit(job.sample(job.generator_inputs(fixed)), job.output)
    render_grid(images, nrow=4, scale=2, padding=2).save(run_dir / "progress" / f"epoch_{epoch:04d}.png")


def _summary_writer(run_dir: Path):
    """TensorBoard through TensorFlow's writer; None where TensorFlow is not installed (a JAX-only GPU machine):
    the same scalars are in the manifest's history."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf.summary.create_file_writer(str(run_dir / "tensorboard"))


def _log_scalars(writer, record: dict[str, Any]) -> None:
    if writer is None:
        return
    import tensorflow as tf

    with writer.as_default(step=record["epoch"]):
        for k, v in record.items():
            if k not in ("epoch", "steps"):
                tf.summary.scalar(k, v)
    writer.flush()


def _resumed_list(run_dir: Path) -> list[int]:
    """The epochs earlier sittings of this run resumed after, from its checkpoint."""
    try:
        with np.load(run_dir / CHECKPOINT, allow_pickle=False) as f:
            return list(json.loads(str(f["__meta__"])).get("resumed_after") or [])
    except Exception:  # noqa: BLE001 (no checkpoint or an old one: nothing recorded)
        return []


def _save_checkpoint(
    job, run_dir: Path, config: TrainConfig, epoch: int, history: list, resumed: list[int] | None = None
) -> None:
    arrays = {f"{group}/{i}": v.numpy() for group, vs in job.stateful().items() for i, v in enumerate(vs)}
    meta = {"epoch": epoch, "history": history, "config": config.as_dict(), "resumed_after": resumed or []}
    tmp = run_dir / f".{CHECKPOINT}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / CHECKPOINT)


def _restore(job, run_dir: Path, config: TrainConfig) -> tuple[int, list]:
    path = run_dir / CHECKPOINT
    fix = f"delete {run_dir} and train without --resume"
    if not path.is_file():
        raise TrainingError(f"--resume: no checkpoint at {path}; train without --resume first")
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
            arrays = {k: f[k] for k in f.files if k != "__meta__"}
    except Exception as e:
        raise TrainingError(f"--resume: checkpoint {path} is corrupt ({type(e).__name__}); {fix}") from None
    saved = {k: v for k, v in meta["config"].items() if k != "epochs"}
    wanted = {k: v for k, v in config.as_dict().items() if k != "epochs"}
    if saved != wanted:
        diff = ", ".join(f"{k}: {saved.get(k)!r} → {wanted.get(k)!r}" for k in wanted if saved.get(k) != wanted.get(k))
        raise TrainingError(
            f"--resume: checkpoint {path} was made with other settings ({diff}); use the same settings or {fix}"
        )
    for group, variables in job.stateful().items():
        for i, v in enumerate(variables):
            value = arrays.get(f"{group}/{i}")
            if value is None or value.shape != tuple(v.shape):
                raise TrainingError(f"--resume: checkpoint {path} does not fit this network ({group}/{i}); {fix}")
            v.assign(value)
    if meta["epoch"] > config.epochs:
        raise TrainingError(
            f"--resume: the checkpoint is at epoch {meta['epoch']}, past --epochs {config.epochs}; ask for more epochs"
        )
    return int(meta["epoch"]), list(meta["history"])


def export(
    job,
    variant: Variant,
    config: TrainConfig,
    data: Mnist,
    store: Path,
    run_dir: Path,
    history: list,
    fixed: np.ndarray,
    resumed: list[int] | None = None,
    code: dict | None = None,
) -> Path:
    """Write the generator and its manifest into a staging folder, then swap it into `store/<name>`."""
    staging = staging_dir(store, variant.name)
    try:
        job.generator.save(staging / GENERATOR)
        np.save(staging / "fixed_latents.npy", fixed)
        shutil.copytree(run_dir / "progress", staging / "progress")
        frames = sorted((staging / "progress").glob("epoch_*.png"))
        from PIL import Image

        save_gif([Image.open(p) for p in frames], str(staging / "progress.gif"))
        extra = _export_vae_extras(job, data, staging) if variant.facts.kind == "vae" else {}
        manifest = build_manifest(job, variant, config, data, history, extra)
        manifest["resumed_after_epochs"] = resumed or []
        code = code or {"git_commit": provenance.git_commit(), "diff": provenance.source_diff()}
        manifest["git_commit"] = code["git_commit"]  # at the start of the sitting that finished the run, not at export
        manifest["study"] = code.get("study")  # the analysis plan it was trained under (None outside a study)
        diff = code["diff"]
        if diff:  # the code that trained it, recoverable as the commit plus this patch
            (staging / "source.diff").write_text(diff)
            manifest["source_diff"] = "source.diff"
        manifest["onnx"] = _export_served(staging)
        served = [SERVED] if manifest["onnx"] else []
        manifest["files"] = {
            p: sha256_file(staging / p) for p in [GENERATOR, *served, "fixed_latents.npy", *extra.get("files", [])]
        }
        write_manifest(staging, manifest)
        install_dir(staging, store / variant.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return store / variant.name


def _export_served(staging: Path) -> dict[str, Any] | None:
    """The ONNX file the service runs, exported and checked where TensorFlow is the backend (this CPU); elsewhere (a
    GPU machine's JAX) None, and `deconv-arena export` exports the model once it is unpacked where TensorFlow is."""
    if keras.backend.backend() != "tensorflow":
        print(
            f"{staging.name}: not exported to ONNX on the {keras.backend.backend()} backend; "
            "run `deconv-arena export` where TensorFlow is",
            file=sys.stderr,
        )
        return None
    from training.interchange.onnx_export import export_onnx

    return export_onnx(staging)


def _export_vae_extras(job, data: Mnist, staging: Path) -> dict[str, Any]:
    """The encoder, plus the fixed test digits and their encodings for `mode=reconstruct`."""
    job.encoder.save(staging / "encoder.keras")
    digits = data.x_test[:RECON_COUNT]
    arrays = job.train_arrays(digits, data.y_test[:RECON_COUNT])
    means = job.encode_mean(*arrays).astype(np.float32)  # with labels: the decoder's conditional input
    np.save(staging / "reconstruction_digits.npy", digits)
    np.save(staging / "reconstruction_latents.npy", means)
    return {
        "files": ["encoder.keras", "reconstruction_digits.npy", "reconstruction_latents.npy"],
        "reconstruction": {"test_indices": list(range(RECON_COUNT))},
    }


def build_manifest(
    job, variant: Variant, config: TrainConfig, data: Mnist, history: list, extra: dict
) -> dict[str, Any]:
    seconds = [h["seconds"] for h in history]
    others = {
        k: {"params": provenance.param_counts(m), "layers": provenance.layer_table(m)}
        for k, m in job.extra_models().items()
    }
    return {
        "name": variant.name,
        "family": variant.family,
        "upsampling": variant.upsampling,
        "architecture": variant.describe(),
        "reference": variant.reference,
        "role": "report" if variant.report else "control",
        "output": job.output,
        "latent_dim": config.latent_dim,
        "classes": variant.classes,  # > 0: the generator's input is the latent followed by a one-hot label
        "input_dim": config.latent_dim + variant.classes,
        "layers": provenance.layer_table(job.generator),
        "params": provenance.param_counts(job.generator),
        "other_networks": others,
        "config": config.as_dict(),
        "epochs_done": len(history),
        "epochs_planned": config.epochs,
        "paper_epochs": variant.facts.paper_epochs,
        "seconds_per_epoch_mean": round(float(np.mean(seconds)), 3) if seconds else None,
        "history": history,
        "dataset": {
            "source": data.source,
            "sha256": data.checksums(),
            "n_train": len(data.x_train[: config.train_limit]),
            "n_test": len(data.x_test[: config.test_limit]),
        },
        "seeds": {"init_and_order": config.seed, "progress_latents": config.progress_seed},
        "versions": provenance.versions(),
        "hardware": provenance.hardware(),
        "git_commit": provenance.git_commit(),
        "created_at": provenance.now_iso(),
        **{k: v for k, v in extra.items() if k != "files"},
    }
