"""training.queue: train jobs side by side, finished ones skipped on a rerun, cut-off ones resumed."""

from __future__ import annotations

import json
from pathlib import Path

from training.queue import has_checkpoint, main, read_jobs


def test_jobs_file_parsing_and_checkpoint_lookup(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(
        "# comment\n--variant vae_upsample --profile smoke   # served run\n\n--variant vae_transpose --profile smoke --seeds 2\n"
    )
    assert read_jobs(jobs) == [
        ["--variant", "vae_upsample", "--profile", "smoke"],
        ["--variant", "vae_transpose", "--profile", "smoke", "--seeds", "2"],
    ]
    work = tmp_path / "runs"
    assert not has_checkpoint(read_jobs(jobs)[1], work)
    (work / "_replicates" / "smoke-seed2" / "vae_transpose").mkdir(parents=True)
    (work / "_replicates" / "smoke-seed2" / "vae_transpose" / "checkpoint.npz").write_bytes(b"x")
    assert has_checkpoint(read_jobs(jobs)[1], work) and not has_checkpoint(read_jobs(jobs)[0], work)


def test_queue_runs_jobs_side_by_side_and_skips_finished_ones(tiny_npz, tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(
        "--variant vae_upsample --profile smoke\n--variant vae_bilinear --profile smoke --no-curves\n--variant nope\n"
    )
    argv = [
        str(jobs),
        "--parallel",
        "2",
        "--store",
        str(store),
        "--workdir",
        str(tmp_path / "runs"),
        "--data",
        str(tiny_npz),
    ]
    assert main(argv) == 1  # the third job names no variant of the table
    out = capsys.readouterr().out
    assert "2 of 3 jobs done" in out and "failed" in out
    for name in ("vae_upsample", "vae_bilinear"):
        assert json.loads((store / name / "manifest.json").read_text())["epochs_done"] == 2
    assert sorted(p.name for p in (tmp_path / "runs" / "queue").glob("*.done")) == ["000.done", "001.done"]
    before = (store / "vae_upsample" / "manifest.json").read_text()
    assert (
        main(argv) == 1 and (store / "vae_upsample" / "manifest.json").read_text() == before
    )  # finished jobs are not run again


def test_pack_takes_what_the_session_wrote_less_what_the_repository_keeps_out(tmp_path, monkeypatch):
    import os
    import tarfile

    from training.pack import files_to_pack, pack

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


def test_stopping_the_queue_stops_its_own_jobs_only():
    """SIGTERM to the queue ends the jobs it started and no other process (an earlier `pkill -f "deconv_arena.cli train"`
    also killed training that someone else ran on the machine); jobs not yet started stay unstarted."""
    import subprocess
    import sys
    import threading

    from training.queue import Children

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        children = Children()
        proc = children.start([sys.executable, "-c", "import time; time.sleep(60)"], subprocess.DEVNULL)
        threading.Timer(0.5, children.stop).start()
        assert children.finish(proc) < 0  # terminated by a signal
        assert children.start([sys.executable, "-c", "pass"], subprocess.DEVNULL) is None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
