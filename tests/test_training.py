"""The report's networks, the training job, its checkpoints and its atomic export."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import keras
import numpy as np
import pytest

from arena.records import read_manifest, sha256_file, verify_files
from arena.variants import VARIANTS
from deconv_arena.cli import main
from training.families.gan import build_discriminator, build_generator
from training.families.vae import build_decoder, build_encoder
from training.loop import epochs as runner
from training.loop.config import profile_config
from training.loop.data import DataError, load_mnist


@pytest.mark.parametrize(
    ("build", "params", "in_shape", "out_shape"),
    [
        (lambda: build_generator("transpose"), 2_330_944, (100,), (28, 28, 1)),
        (lambda: build_generator("resize"), 1_452_864, (100,), (28, 28, 1)),
        (lambda: build_decoder("transpose", 2), 41_953, (2,), (28, 28, 1)),
        (lambda: build_decoder("resize", 2), 41_952, (2,), (28, 28, 1)),
        (build_discriminator, 212_865, (28, 28, 1), (1,)),
        (lambda: build_encoder(2), 28_036, (28, 28, 1), (4,)),
    ],
    ids=["gan_transpose", "gan_upsample", "vae_transpose", "vae_upsample", "discriminator", "encoder"],
)
def test_network_matches_report(build, params, in_shape, out_shape):
    model = build()
    assert model.count_params() == params
    assert tuple(model(np.zeros((3, *in_shape), np.float32)).shape) == (3, *out_shape)


# The ablation controls (issue 12): counts from the issue's table; the sub-pixel decoder is ours:
# dense 4,704 + conv 3×3 32→4·64 (73,984) + conv 3×3 64→4·32 (73,856) + conv 3×3 32→1 without bias (288).
# The factorial's fourth cell has the resize GAN's count exactly: a 3×3 transposed convolution 256→64 (147,456) and
# 64→1 (576) in place of the 3×3 convolutions 256→64 and 64→1 after each resize.
CONTROL_PARAMS = {
    "gan_upsample_matched": 2_330_944,
    "gan_transpose_shallow": 1_452_864,
    "gan_transpose_k4": 2_256_640,
    "vae_transpose_k4": 70_625,
    "vae_bilinear": 41_952,
    "vae_subpixel": 152_832,
}


def _build(variant):
    if variant.family == "gan":
        return build_generator(variant.upsampling, 100, variant.kernel, variant.layout)
    return build_decoder(variant.upsampling, 2, variant.kernel, variant.layout)


@pytest.mark.parametrize("name", sorted(CONTROL_PARAMS))
def test_control_networks_have_the_issue_counts(name):
    model = _build(VARIANTS[name])
    assert model.count_params() == CONTROL_PARAMS[name]
    assert tuple(model(np.zeros((2, model.input_shape[1]), np.float32)).shape) == (2, 28, 28, 1)


def test_matched_gan_differs_from_the_transposed_one_only_in_the_operator():
    kinds = lambda m: [
        (type(layer).__name__, layer.get_config().get("filters"), layer.get_config().get("kernel_size"))
        for layer in m.layers
        if "Conv" in type(layer).__name__
    ]  # noqa: E731
    transposed, matched = kinds(_build(VARIANTS["gan_transpose"])), kinds(_build(VARIANTS["gan_upsample_matched"]))
    assert [k[1:] for k in transposed] == [k[1:] for k in matched]
    assert [k[0] for k in matched] == ["Conv2DTranspose", "Conv2D", "Conv2D"]  # the stride-1 stage is kept as it is
    assert sum(type(layer).__name__ == "UpSampling2D" for layer in _build(VARIANTS["gan_upsample_matched"]).layers) == 2


def test_shallow_transposed_gan_differs_from_the_resize_one_only_in_the_operator():
    convs = lambda m: [
        (
            type(layer).__name__,
            layer.get_config().get("filters"),
            layer.get_config().get("kernel_size"),
            layer.get_config().get("strides"),
        )
        for layer in m.layers
        if "Conv" in type(layer).__name__
    ]  # noqa: E731
    resize, shallow = _build(VARIANTS["gan_upsample"]), _build(VARIANTS["gan_transpose_shallow"])
    assert convs(shallow) == [("Conv2DTranspose", 64, (3, 3), (2, 2)), ("Conv2DTranspose", 1, (3, 3), (2, 2))]
    assert [c[1:3] for c in convs(shallow)] == [c[1:3] for c in convs(resize)]
    assert [type(layer).__name__ for layer in shallow.layers if "Conv" not in type(layer).__name__] == [
        type(layer).__name__
        for layer in resize.layers
        if "Conv" not in type(layer).__name__ and type(layer).__name__ != "UpSampling2D"
    ]


def test_icnr_subpixel_starts_as_nearest_neighbour_upsampling():
    """At initialisation each 2×2 block after a shuffle is constant (no checkerboard), for any input."""
    import keras

    decoder = _build(VARIANTS["vae_subpixel"])
    shuffles = [layer for layer in decoder.layers if type(layer).__name__ == "DepthToSpace"]
    probe = keras.Model(decoder.inputs, [layer.output for layer in shuffles])
    for out in probe(np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)):
        out = np.asarray(out)
        blocks = out.reshape(out.shape[0], out.shape[1] // 2, 2, out.shape[2] // 2, 2, out.shape[3])
        assert np.abs(blocks - blocks[:, :, :1, :, :1]).max() == 0.0 and np.abs(out).max() > 0


def test_depth_to_space_matches_tensorflow():
    import tensorflow as tf

    from training.families.layers import DepthToSpace

    x = np.random.default_rng(1).standard_normal((2, 3, 5, 12)).astype(np.float32)
    assert np.array_equal(np.asarray(DepthToSpace(2)(x)), tf.nn.depth_to_space(x, 2).numpy())


def test_gan_generators_end_in_tanh_and_vae_decoders_in_logits():
    for up in ("transpose", "resize"):
        assert build_generator(up).layers[-1].get_config()["activation"] == "tanh"
        assert build_decoder(up, 2).layers[-1].get_config()["activation"] == "linear"


def test_upsample_variants_use_nearest_neighbour_resize():
    layers = [layer for layer in build_generator("resize").layers if type(layer).__name__ == "UpSampling2D"]
    assert len(layers) == 2 and all(layer.get_config()["interpolation"] == "nearest" for layer in layers)


def test_smoke_store_has_complete_manifests(tiny_store):
    for name, variant in VARIANTS.items():
        model_dir = tiny_store / name
        manifest = read_manifest(model_dir)
        verify_files(model_dir, manifest)
        assert manifest["files"]["generator.keras"] == sha256_file(model_dir / "generator.keras")
        assert manifest["family"] == variant.family and manifest["upsampling"] == variant.upsampling
        assert manifest["epochs_done"] == 2 == len(manifest["history"])
        for key in (
            "layers",
            "params",
            "config",
            "dataset",
            "versions",
            "hardware",
            "created_at",
            "seeds",
            "git_commit",
        ):
            assert key in manifest, key
        assert manifest["seconds_per_epoch_mean"] == round(
            float(np.mean([h["seconds"] for h in manifest["history"]])), 3
        )
        assert (model_dir / "progress" / "epoch_0002.png").is_file() and (model_dir / "progress.gif").is_file()
        if variant.family == "vae":
            assert all(np.isfinite(h["test_elbo"]) for h in manifest["history"])
        restored = keras.saving.load_model(model_dir / "generator.keras", compile=False)
        assert restored.count_params() == manifest["params"]["total"]
        assert not any(p.name.startswith(".") for p in tiny_store.iterdir()), "staging folders left behind"


def _train(variant_name, data, store, work, epochs, resume=False):
    variant = VARIANTS[variant_name]
    config = profile_config("smoke", variant.family).replace(epochs=epochs)
    return runner.train_variant(variant, config, data, store, work, resume=resume, log=lambda _: None)


def _train_cli(npz, store, work, name, *extra) -> None:
    """A training run in its own process, as a user's sittings are; deterministic kernels so runs compare bit for
    bit."""
    import subprocess
    import sys

    env = {**os.environ, "TF_DETERMINISTIC_OPS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [
        sys.executable,
        "-m",
        "deconv_arena.cli",
        "train",
        "--variant",
        name,
        "--profile",
        "smoke",
        "--data",
        str(npz),
        "--store",
        str(store),
        "--workdir",
        str(work),
        *extra,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow  # trains each variant twice (about 35 s in all): in make test, not in make test-fast
@pytest.mark.parametrize("name", ["gan_transpose", "vae_upsample"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_npz, name):
    _train_cli(tiny_npz, tmp_path / "a", tmp_path / "wa", name, "--epochs", "2")
    _train_cli(tiny_npz, tmp_path / "b", tmp_path / "wb", name, "--epochs", "1")
    _train_cli(tiny_npz, tmp_path / "b", tmp_path / "wb", name, "--epochs", "2", "--resume")
    a = keras.saving.load_model(tmp_path / "a" / name / "generator.keras", compile=False)
    b = keras.saving.load_model(tmp_path / "b" / name / "generator.keras", compile=False)
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=0, atol=1e-6)
    hist = read_manifest(tmp_path / "b" / name)["history"]
    assert [h["epoch"] for h in hist] == [1, 2]


class FakeClock:
    """time.perf_counter for one module: every reading is `step` seconds after the previous one."""

    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now


def test_epoch_seconds_are_the_epoch_loop_measured(tmp_path, tiny_data, monkeypatch):
    """A clock that advances 1.25 s per reading: the epoch loop reads it once before its first batch and once after
    its last, so each epoch's record says 1.25 s, and the manifest's mean is theirs."""
    from types import SimpleNamespace

    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=FakeClock(1.25).perf_counter))
    out = _train("vae_transpose", tiny_data, tmp_path / "store", tmp_path / "w", epochs=2)
    manifest = read_manifest(out)
    assert [h["seconds"] for h in manifest["history"]] == [1.25, 1.25]
    assert manifest["seconds_per_epoch_mean"] == 1.25


def test_failed_export_leaves_the_installed_model_intact(tmp_path, tiny_data, monkeypatch):
    _train("vae_transpose", tiny_data, tmp_path / "store", tmp_path / "w", epochs=1)
    before = sha256_file(tmp_path / "store" / "vae_transpose" / "generator.keras")

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "write_json_atomic", disk_full)
    with pytest.raises(OSError):
        _train("vae_transpose", tiny_data, tmp_path / "store", tmp_path / "w", epochs=2)
    model_dir = tmp_path / "store" / "vae_transpose"
    verify_files(model_dir, read_manifest(model_dir))
    assert sha256_file(model_dir / "generator.keras") == before
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["vae_transpose"]


def test_loader_reads_keras_layout_and_checksums(tiny_npz, tiny_data):
    data = load_mnist(tiny_npz)
    assert data.x_train.shape == (256, 28, 28) and data.checksums() == tiny_data.checksums()


def test_real_mnist_matches_published_checksums(real_mnist):
    assert real_mnist.checksums()["x_train"] == "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"
    assert np.bincount(real_mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": np.zeros(4, np.uint8)}, "lacks x_test, y_test"),
        (
            {
                "x_train": np.zeros((4, 28, 27), np.uint8),
                "y_train": np.zeros(4, np.uint8),
                "x_test": np.zeros((2, 28, 28), np.uint8),
                "y_test": np.zeros(2, np.uint8),
            },
            "has shape (4, 28, 27)",
        ),
        (
            {
                "x_train": np.zeros((4, 28, 28), np.float32),
                "y_train": np.zeros(4, np.uint8),
                "x_test": np.zeros((2, 28, 28), np.uint8),
                "y_test": np.zeros(2, np.uint8),
            },
            "dtype float32",
        ),
        (
            {
                "x_train": np.zeros((4, 28, 28), np.uint8),
                "y_train": np.zeros(3, np.uint8),
                "x_test": np.zeros((2, 28, 28), np.uint8),
                "y_test": np.zeros(2, np.uint8),
            },
            "4 images but y_train has 3",
        ),
    ],
)
def test_loader_rejects_malformed_files(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mnist(path)


def test_loader_errors_say_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="does not exist; pass --data PATH"):
        load_mnist(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_mnist(tmp_path / "junk.npz")


def _cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--variant", "gan_bogus"], "invalid choice: 'gan_bogus'"),
        (["train", "--all", "--profile", "huge"], "invalid choice: 'huge'"),
        (["train", "--all", "--epochs", "0"], "0 must be a positive integer"),
        (["train", "--all", "--epochs", "-3"], "-3 must be a positive integer"),
        (["train", "--all", "--learning-rate", "abc"], "'abc' is not a number"),
    ],
)
def test_cli_rejects_bad_flags(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_cli_missing_data_file_is_one_line_exit_2(capsys, tmp_path):
    code, err = _cli(
        capsys,
        "train",
        "--variant",
        "vae_transpose",
        "--profile",
        "smoke",
        "--data",
        str(tmp_path / "x.npz"),
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


def test_cli_unwritable_store_is_exit_2(capsys, tmp_path, tiny_npz, monkeypatch):
    """A read-only store folder. Root's writes ignore the mode bits (CI runs as root), so folder creation is made to
    honour them as the kernel does for any other user: the store is unwritable whoever runs the test."""
    import errno

    real_mkdir, refused = os.mkdir, []

    def mkdir_as_a_user(path, mode=0o777, *, dir_fd=None):
        parent = Path(os.fsdecode(path)).parent
        if not os.path.lexists(path) and not stat.S_IMODE(os.stat(parent).st_mode) & stat.S_IWUSR:
            refused.append(str(path))
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, mode, dir_fd=dir_fd) if dir_fd is not None else real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", mkdir_as_a_user)
    store = tmp_path / "ro"
    store.mkdir()
    store.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        code, err = _cli(
            capsys,
            "train",
            "--variant",
            "vae_transpose",
            "--profile",
            "smoke",
            "--data",
            str(tiny_npz),
            "--store",
            str(store),
            "--workdir",
            str(tmp_path / "w"),
        )
    finally:
        store.chmod(0o755)
    assert code == 2 and "not writable" in err and "Permission denied" in err and "--store" in err, err
    assert refused and all(Path(r).parent == store for r in refused), refused  # refused in the store, before training
    assert list(store.iterdir()) == [] and not (tmp_path / "w").exists()


def test_cli_store_that_is_a_file_is_exit_2(capsys, tmp_path, tiny_npz):
    (tmp_path / "file").write_text("x")
    code, err = _cli(
        capsys,
        "train",
        "--variant",
        "vae_transpose",
        "--profile",
        "smoke",
        "--data",
        str(tiny_npz),
        "--store",
        str(tmp_path / "file"),
    )
    assert code == 2 and "not writable" in err and "--store" in err


def test_cli_corrupt_checkpoint_on_resume_is_exit_2(capsys, tmp_path, tiny_npz):
    args = [
        "train",
        "--variant",
        "vae_transpose",
        "--profile",
        "smoke",
        "--data",
        str(tiny_npz),
        "--store",
        str(tmp_path / "s"),
        "--workdir",
        str(tmp_path / "w"),
    ]
    assert _cli(capsys, *args, "--epochs", "1")[0] == 0
    (tmp_path / "w" / "vae_transpose" / "checkpoint.npz").write_bytes(b"garbage")
    code, err = _cli(capsys, *args, "--epochs", "2", "--resume")
    assert code == 2 and "corrupt" in err and "without --resume" in err
    assert read_manifest(tmp_path / "s" / "vae_transpose")["epochs_done"] == 1


def test_cli_resume_with_other_settings_is_refused(capsys, tmp_path, tiny_npz):
    args = [
        "train",
        "--variant",
        "vae_transpose",
        "--profile",
        "smoke",
        "--data",
        str(tiny_npz),
        "--store",
        str(tmp_path / "s"),
        "--workdir",
        str(tmp_path / "w"),
    ]
    assert _cli(capsys, *args, "--epochs", "1")[0] == 0
    code, err = _cli(capsys, *args, "--epochs", "2", "--resume", "--learning-rate", "0.01")
    assert code == 2 and "learning_rate: 0.0001 → 0.01" in err


def test_train_all_runs_every_vae_kind_before_every_gan_kind():
    from arena.variants import VARIANTS
    from deconv_arena.commands.train import all_in_training_order

    order = all_in_training_order()
    kinds = [VARIANTS[n].facts.kind for n in order]
    assert sorted(order) == sorted(VARIANTS) and kinds == sorted(kinds, key=lambda k: k != "vae")
    assert order.index("cvae_upsample") < order.index("gan_transpose")  # the conditional VAEs are VAEs too


def test_every_family_job_states_the_training_interface():
    """GanJob and VaeJob (conditional variants included) implement training.families.interface.TrainingJob, with the
    shared methods written once in JobBase (not redefined per family)."""
    from arena.variants import VARIANTS
    from training.families.dispatch import JOBS
    from training.families.interface import JobBase, TrainingJob

    for name in ("gan_upsample", "vae_upsample", "cgan_upsample", "cvae_upsample"):
        v = VARIANTS[name]
        job = JOBS[v.facts.kind](v.upsampling, v.facts.latent_dim, 1e-4, 8, v.kernel, v.layout, v.classes)
        assert isinstance(job, TrainingJob), name
        x = np.zeros((3, 28, 28), np.uint8)
        arrays = job.train_arrays(x, np.array([1, 2, 3]))
        assert len(arrays) == (2 if v.classes else 1) and arrays[0].shape == (3, 28, 28, 1)
        assert job.sample(job.generator_inputs(np.zeros((2, v.facts.latent_dim), np.float32))).shape[1:] == (28, 28, 1)
    for cls in JOBS.values():
        assert issubclass(cls, JobBase)
        shared = {"preprocess", "train_arrays", "generator_inputs", "train_batch", "sample"}
        assert not shared & set(vars(cls)), cls
