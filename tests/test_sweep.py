"""`deconv-arena sweep`: plans from the variant table or a TOML file, and the local engine — jobs side by side,
finished ones skipped on a rerun, cut-off ones resumed, a failed one recorded as a failed replicate; and the pack of
what a session wrote, for the trip back from a GPU machine. (The Ray engine: tests/test_sweep_ray.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arena.variants import VARIANTS, comparisons, factorials
from deconv_arena.cli import main
from training.sweeps.engines import JobProcesses, run_local
from training.sweeps.planning import Plan, PlanError, PlannedRun, plan, read_plan
from training.sweeps.stages import state


def test_plans_come_from_the_variant_table():
    (gan,) = [f for f in factorials() if f.family == "gan"]
    p = plan([{"factorial": "gan", "seeds": "1-2"}])
    assert {j.variant for j in p.jobs} == set(gan.cells.values()) and len(p.jobs) == 8
    assert {(j.seed, j.profile) for j in p.jobs} == {(1, "paper"), (2, "paper")}
    variant, ref = comparisons()[0]
    assert {j.variant for j in plan([{"comparison": variant.name, "seeds": [3]}]).jobs} == {variant.name, ref.name}
    served = plan([{"family": "vae", "served": True, "profile": "quick"}])
    assert [j.variant for j in served.jobs] == [n for n, v in VARIANTS.items() if v.family == "vae"]
    assert all(j.seed is None and j.config().seed == 1234 for j in served.jobs)
    twice = plan([{"variants": ["vae_upsample"], "seeds": "1-2"}, {"family": "vae", "seeds": [2]}])
    assert sum(j == PlannedRun("vae_upsample", "paper", 2) for j in twice.jobs) == 1  # the same run is planned once
    # --vmap groups the replicates of one variant and settings; served runs stay alone
    units = Plan(p.jobs + served.jobs).units(vmap=True)
    assert sorted(len(u) for u in units) == [1] * len(served.jobs) + [2] * 4
    assert all(len({(j.variant, j.profile) for j in u}) == 1 for u in units)


def test_plan_file_groups_and_overrides(tmp_path):
    f = tmp_path / "plan.toml"
    f.write_text(
        'factorial = "gan"\nseeds = "1-3"\nepochs = 5\nprecision = "highest"\n\n'
        '[[group]]\nvariants = ["vae_upsample"]\nserved = true\nprofile = "smoke"\n'
    )
    p = read_plan(f)
    assert len(p.jobs) == 13 and p.jobs[-1] == PlannedRun("vae_upsample", "smoke", None)
    gan = p.jobs[0]
    assert gan.config().epochs == 5 and gan.precision == "highest" and gan.config().seed == gan.seed


@pytest.mark.parametrize(
    "text, message",
    [
        ('factorial = "gan"\nseed = 3\n', "unknown key 'seed'; accepted: factorial"),
        ('variants = ["gan_nope"]\nseeds = [1]\n', "variant 'gan_nope' is not in the variant table"),
        ('family = "vae"\nseeds = [1]\nserved = true\n', "give seeds (replicates) or served = true"),
        ('family = "vae"\n', "give seeds (replicates) or served = true"),
        ('family = "vae"\nseeds = "3-1"\n', "seeds:"),
        ('family = "vae"\nseeds = [1]\nepochs = 0\n', "epochs = 0: must be an integer ≥ 1"),
        ('family = "vae"\nseeds = [1]\nprofile = "long"\n', "profile 'long' is not one of paper, quick, smoke"),
        (
            'comparison = "gan_transpose"\nseeds = [1]\n',
            "comparison 'gan_transpose': name a variant that has a reference",
        ),
        ("seeds = [1]\n", "the plan selects no variant"),
        ("seeds = [1\n", "is not valid TOML"),
    ],
)
def test_plan_file_errors_name_the_value_and_what_is_accepted(tmp_path, text, message):
    f = tmp_path / "plan.toml"
    f.write_text(text)
    with pytest.raises(PlanError, match="^plan file .*" + __import__("re").escape(message)):
        read_plan(f)


def test_sweep_cli_refuses_in_one_line(tmp_path, capsys):
    f = tmp_path / "plan.toml"
    f.write_text('family = "vae"\nseeds = [1]\n')
    assert main(["sweep", "--plan", str(f), "--variant", "vae_upsample"]) == 2
    assert main(["sweep", "--seeds", "1"]) == 2
    assert main(["sweep", "--family", "vae", "--seeds", "1", "--engine", "ray", "--gpus-per-job", "-0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "deconv-arena sweep: error: --plan FILE holds the whole plan: drop --factorial/--family/--comparison/--variant",
        "deconv-arena sweep: error: the plan selects no variant: give one of factorial, family, comparison, variants",
        "deconv-arena sweep: error: --gpus-per-job -0.5: must be ≥ 0",
    ]


def test_dry_run_shows_each_runs_state(tmp_path, capsys):
    work = tmp_path / "runs"
    ckpt = PlannedRun("vae_upsample", "smoke", 2).layout(tmp_path / "store", work).run_dir / "checkpoint.npz"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    code = main(
        [
            "sweep",
            "--variant",
            "vae_upsample",
            "--seeds",
            "1-2",
            "--profile",
            "smoke",
            "--dry-run",
            "--store",
            str(tmp_path / "store"),
            "--workdir",
            str(work),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "2 runs: vae_upsample × seeds 1-2" in out
    assert "vae_upsample smoke seed 1: new" in out and "vae_upsample smoke seed 2: resume" in out


@pytest.mark.slow
def test_local_sweep_runs_side_by_side_skips_finished_runs_and_records_a_failure(tiny_data, tiny_npz, tmp_path):
    from training.evaluation.classifier import train_evaluator

    store, work = tmp_path / "store", tmp_path / "runs"
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    p = plan([{"variants": ["vae_upsample", "vae_bilinear"], "seeds": "1-2", "profile": "smoke"}])
    broken = PlannedRun("vae_bilinear", "smoke", 2)  # a corrupt checkpoint: its resume fails, the others go on
    broken.layout(store, work).run_dir.mkdir(parents=True)
    (broken.layout(store, work).run_dir / "checkpoint.npz").write_bytes(b"not a checkpoint")
    lines: list[str] = []
    out = run_local(p, store, work, tiny_npz, parallel=2, log=lines.append, interval=0.5)
    assert sorted(out.done) == ["vae_bilinear smoke seed 1", "vae_upsample smoke seed 1", "vae_upsample smoke seed 2"]
    assert list(out.failed) == [broken.label] and "corrupt" in out.failed[broken.label]
    assert "3 done, 1 failed, 0 skipped" in out.summary()
    assert any("epoch 2/2" in ln for ln in lines) or any("finished" in ln for ln in lines)
    for j in p.jobs:
        if j != broken:
            assert state(j, store, work) == "done"
            assert json.loads((j.layout(store).folder / "manifest.json").read_text())["config"]["seed"] == j.seed
    entry = json.loads((store / "replicates.json").read_text())["models"]["vae_bilinear"]["smoke"]
    assert list(entry["failed"]) == ["2"] and "corrupt" in entry["failed"]["2"], entry["failed"]
    before = {j: (j.layout(store).folder / "manifest.json").stat().st_mtime_ns for j in p.jobs if j != broken}
    again = run_local(p, store, work, tiny_npz, parallel=2, log=lambda _: None)
    assert sorted(again.skipped) == sorted(j.label for j in before) and list(again.failed) == [broken.label]
    assert before == {j: (j.layout(store).folder / "manifest.json").stat().st_mtime_ns for j in before}  # not rewritten


@pytest.mark.slow
def test_a_deadline_stops_the_jobs_and_a_rerun_resumes_them(tiny_data, tiny_npz, tmp_path):
    from training.evaluation.classifier import train_evaluator

    store, work = tmp_path / "store", tmp_path / "runs"
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    job = PlannedRun("gan_upsample", "smoke", 1, (("epochs", 4),))
    ckpt = job.layout(store, work).run_dir / "checkpoint.npz"
    children = JobProcesses()

    def stop_after_first_checkpoint():
        while not ckpt.is_file():
            threading.Event().wait(0.2)
        children.stop()

    threading.Thread(target=stop_after_first_checkpoint, daemon=True).start()
    out = run_local(Plan((job,)), store, work, tiny_npz, log=lambda _: None, children=children)
    assert out.stopped == [job.label] and not out.done and state(job, store, work) == "resume"
    out = run_local(Plan((job,)), store, work, tiny_npz, log=lambda _: None)
    assert out.done == [job.label]
    manifest = json.loads((job.layout(store).folder / "manifest.json").read_text())
    assert manifest["epochs_done"] == 4 and len(manifest["resumed_after_epochs"]) == 1
    assert 1 <= manifest["resumed_after_epochs"][0] < 4


def test_pack_takes_what_the_session_wrote_less_what_the_repository_keeps_out(tmp_path, monkeypatch):
    import os
    import tarfile

    from training.interchange.pack import files_to_pack, pack

    monkeypatch.chdir(tmp_path)
    store = Path("models_store")

    def write(rel: str, old: bool = False) -> None:
        path = store / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
        if old:
            os.utime(path, (1_000, 1_000))

    write("gan_upsample/generator.keras", old=True)  # before the session: not packed
    for rel in (
        "gan_transpose/generator.keras",
        "gan_transpose/manifest.json",
        "gan_transpose/progress/epoch_0001.png",
        "_replicates/quick-seed1/gan_upsample/generator.keras",
        "_replicates/quick-seed1/gan_upsample/manifest.json",
        "_replicates/quick-seed1/gan_upsample/metrics.json",
        "_replicates/quick-seed1/gan_upsample/progress/epoch_0001.png",
        "_replicates/paper-seed1/vae_bilinear/generator.keras",
        "_replicates/paper-seed1/vae_bilinear/manifest.json",
        "_replicates/paper-seed1/vae_bilinear/metrics.json",
        "_replicates/quick-seed2/gan_upsample/manifest.json",  # trained, stopped mid-evaluation: left out
        ".gan_upsample_matched.staging-abc/generator.keras",
    ):  # an install cut off: left out
        write(rel)
    packed = {p.relative_to(store).as_posix() for p in files_to_pack(store, since=2_000)}
    assert packed == {
        "gan_transpose/generator.keras",
        "gan_transpose/manifest.json",
        "gan_transpose/progress/epoch_0001.png",
        "_replicates/quick-seed1/gan_upsample/manifest.json",
        "_replicates/quick-seed1/gan_upsample/metrics.json",
        "_replicates/paper-seed1/vae_bilinear/generator.keras",
        "_replicates/paper-seed1/vae_bilinear/manifest.json",
        "_replicates/paper-seed1/vae_bilinear/metrics.json",
    }
    parts = pack(sorted(store / p for p in packed), tmp_path / "out", part_bytes=300)
    assert len(parts) > 1 and all(p.stat().st_size <= 300 for p in parts)
    (tmp_path / "whole.tgz").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "whole.tgz") as tar:
        assert {Path(n).relative_to(store).as_posix() for n in tar.getnames()} == packed


def test_stopping_the_sweep_stops_its_own_jobs_only():
    """SIGTERM to the sweep ends the jobs it started and no other process (an earlier
    `pkill -f "deconv_arena.cli train"` also killed training that someone else ran on the machine); jobs not yet
    started stay unstarted."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        children = JobProcesses()
        proc = children.start([sys.executable, "-c", "import time; time.sleep(60)"], subprocess.DEVNULL, None)
        threading.Timer(0.5, children.stop).start()
        assert children.finish(proc) < 0  # terminated by a signal
        assert children.start([sys.executable, "-c", "pass"], subprocess.DEVNULL, None) is None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.slow
def test_vmapped_sweep_installs_one_replicate_per_seed(tiny_data, tiny_npz, tmp_path):
    """`KERAS_BACKEND=jax deconv-arena sweep --vmap`: the seeds of a variant train as one job (one log), and each
    comes out as its own evaluated replicate that records the program it shared."""
    import os

    from training.evaluation.classifier import train_evaluator

    store, work = tmp_path / "store", tmp_path / "runs"
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "deconv_arena.cli", "sweep", "--variant", "vae_upsample", "--seeds", "1-2"]
    argv += ["--profile", "smoke", "--vmap", "--store", str(store), "--workdir", str(work), "--data", str(tiny_npz)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "sweep: 2 done, 0 failed" in done.stdout
    assert [p.name for p in (work / "sweep").glob("*.log")] == ["vae_upsample-smoke-seed1.log"]  # one job
    for seed in (1, 2):
        job = PlannedRun("vae_upsample", "smoke", seed)
        assert state(job, store, work) == "done"
        manifest = json.loads((job.layout(store).folder / "manifest.json").read_text())
        assert manifest["config"]["seed"] == seed and manifest["history"][-1]["seeds_in_step"] == 2
    refused = subprocess.run(argv, env={**env, "KERAS_BACKEND": "tensorflow"}, capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "deconv-arena sweep: error: --vmap trains the seeds as one JAX program: run with KERAS_BACKEND=jax"
    )


@pytest.mark.slow
def test_served_runs_side_by_side_each_keep_their_summary_row(tiny_data, tiny_npz, tmp_path):
    """Two served runs evaluated in processes side by side: summary.json (one file for all served models) gets both
    rows, written once by the sweep after the jobs, not raced by the jobs."""
    from training.evaluation.classifier import train_evaluator

    store, work = tmp_path / "store", tmp_path / "runs"
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)
    p = plan([{"variants": ["vae_upsample", "vae_transpose"], "served": True, "profile": "smoke"}])
    out = run_local(p, store, work, tiny_npz, parallel=2, log=lambda _: None)
    assert sorted(out.done) == ["vae_transpose smoke served", "vae_upsample smoke served"], out.summary()
    rows = json.loads((store / "summary.json").read_text())["models"]
    assert set(rows) == {"vae_upsample", "vae_transpose"}
    for name in rows:
        metrics = json.loads((store / name / "metrics.json").read_text())
        assert rows[name]["frechet"] == pytest.approx(metrics["frechet"]["distance"])
        assert json.loads((store / name / "manifest.json").read_text())["config"]["seed"] == 1234


PRODUCT = ("arena", "training", "app", "deconv_arena")


def _product_files_spelling(literal: str) -> set[str]:
    root = Path(__file__).resolve().parents[1]
    return {
        p.relative_to(root).as_posix()
        for package in PRODUCT
        for p in (root / package).rglob("*.py")
        if literal in p.read_text()
    }


def test_only_the_run_layout_spells_where_a_run_lives():
    """The failure record's name and the replicate folder's are spelled once (arena/layout.py); no module scrapes a
    job's log for its result."""
    assert _product_files_spelling("failed.json") == {"arena/layout.py"}
    assert _product_files_spelling("-seed{") == {"arena/layout.py"}
    assert _product_files_spelling("SWEEP-RESULT") == set()


def test_the_run_layout_of_a_served_run_and_of_a_replicate(tmp_path):
    store, work = tmp_path / "store", tmp_path / "runs"
    served = PlannedRun("vae_upsample", "smoke", None).layout(store, work)
    assert served.folder == store / "vae_upsample" and served.manifest == store / "vae_upsample" / "manifest.json"
    assert served.checkpoint == work / "vae_upsample" / "checkpoint.npz"
    rep = PlannedRun("vae_upsample", "smoke", 3).layout(store, work)
    assert rep.store_root == store / "_replicates" / "smoke-seed3" and rep.folder == rep.store_root / "vae_upsample"
    assert rep.failure == store / "_replicates" / "smoke-seed3" / "vae_upsample.failed.json"
    assert rep.run_dir == work / "_replicates" / "smoke-seed3" / "vae_upsample"
    assert rep.log == work / "sweep" / "vae_upsample-smoke-seed3.log" and rep.result.parent == rep.log.parent
    from arena.replicates import RUN_DIR, runs

    assert RUN_DIR.match(rep.store_root.name)["seed"] == "3"
    rep.store_root.mkdir(parents=True)
    rep.failure.write_text("{}")
    assert runs(store) == [("vae_upsample", "smoke", 3, rep.store_root)]  # a failure record is a run on disk too


def test_a_job_hands_back_a_result_file_and_one_that_died_without_it_is_recorded_failed(tmp_path):
    """The local engine reads each job process's result file; a process that ended without writing one (killed, out
    of memory) failed its jobs, recorded as failed replicates — even where an earlier sitting left a result file."""
    from training.sweeps.engines import Local
    from training.sweeps.stages import Policy, run

    store, work = tmp_path / "store", tmp_path / "runs"
    ok, evaluation_failed, died = (PlannedRun("vae_upsample", "smoke", s) for s in (1, 2, 3))

    class Scripted(Local):
        def _argv(self, unit, layout):
            failed = (
                {evaluation_failed.label: "evaluation failed (see the log)"} if unit == (evaluation_failed,) else {}
            )
            write = f"from training.sweeps.worker import write_result; write_result({str(layout.result)!r}, {failed!r})"
            return [sys.executable, "-c", "import sys; sys.exit(3)" if unit == (died,) else write]

    stale = died.layout(store, work).result
    stale.parent.mkdir(parents=True)
    stale.write_text('{"failed": {}}')
    out = run(
        Plan((ok, evaluation_failed, died)),
        Scripted(store, work, None),
        store,
        work,
        policy=Policy(evaluate=False),
        log=lambda _: None,
    )
    assert out.done == [ok.label] and set(out.failed) == {evaluation_failed.label, died.label}
    assert out.failed[evaluation_failed.label] == "evaluation failed (see the log)"
    assert "exited with status 3 without its result" in out.failed[died.label]
    record = json.loads(died.layout(store).failure.read_text())
    assert record["stage"] == "training" and "without its result" in record["error"]
    assert not ok.layout(store).failure.exists()


def test_train_seeds_walks_the_front_doors_stages(monkeypatch, tiny_npz, tmp_path):
    """`train --seeds` is a plan of one job per seed through the same stages as a sweep's jobs
    (training/sweeps/stages.py): each seed trained again (the train policy), then evaluated."""
    from training.sweeps import stages as sweep

    trained, evaluated = [], []
    monkeypatch.setattr(sweep, "train_unit", lambda unit, *a, **k: trained.append((unit, a[-1] if a else k)))
    monkeypatch.setattr(sweep, "evaluate_unit", lambda unit, *a, **k: evaluated.append(unit) or [])
    argv = ["train", "--variant", "vae_upsample", "--profile", "smoke", "--seeds", "1-2", "--epochs", "3"]
    assert main([*argv, "--data", str(tiny_npz), "--store", str(tmp_path / "s"), "--workdir", str(tmp_path / "w")]) == 0
    assert [u for u, _ in trained] == [(PlannedRun("vae_upsample", "smoke", s, (("epochs", 3),)),) for s in (1, 2)]
    assert all(policy.redo and policy.resume is False for _, policy in trained)
    assert evaluated == [u for u, _ in trained]


@pytest.mark.slow
def test_a_study_sweep_records_its_plan_in_every_manifest_through_the_job_processes(tiny_npz, tmp_path):
    """The study flag is a field of the run policy: it crosses into each job's own process with the policy (no
    environment variable), and the manifest of a run trained there names the plan and its SHA-256."""
    import hashlib

    from tests.conftest import ROOT
    from training.sweeps import stages as sweep
    from training.sweeps.engines import Local

    store, work = tmp_path / "store", tmp_path / "runs"
    study = ROOT / "studies" / "gan-operator-network-v1.toml"
    policy = sweep.Policy(study=str(study), evaluate=False, curves=False)
    p = plan([{"variants": ["vae_upsample"], "seeds": "1", "profile": "smoke"}])
    out = sweep.run(p, Local(store, work, tiny_npz, policy=policy), store, work, policy=policy, log=lambda _: None)
    assert out.done == ["vae_upsample smoke seed 1"], out.failed
    manifest = json.loads((p.jobs[0].layout(store).folder / "manifest.json").read_text())
    assert manifest["study"]["sha256"] == hashlib.sha256(study.read_bytes()).hexdigest()
    assert manifest["study"]["file"] == study.name
