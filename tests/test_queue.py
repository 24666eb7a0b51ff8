"""training.queue: train jobs side by side, finished ones skipped on a rerun, cut-off ones resumed."""

from __future__ import annotations

import json

from training.queue import has_checkpoint, main, read_jobs


def test_jobs_file_parsing_and_checkpoint_lookup(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# comment\n--variant vae_upsample --profile smoke   # served run\n\n--variant vae_transpose --profile smoke --seeds 2\n")
    assert read_jobs(jobs) == [["--variant", "vae_upsample", "--profile", "smoke"], ["--variant", "vae_transpose", "--profile", "smoke", "--seeds", "2"]]
    work = tmp_path / "runs"
    assert not has_checkpoint(read_jobs(jobs)[1], work)
    (work / "_replicates" / "smoke-seed2" / "vae_transpose").mkdir(parents=True)
    (work / "_replicates" / "smoke-seed2" / "vae_transpose" / "checkpoint.npz").write_bytes(b"x")
    assert has_checkpoint(read_jobs(jobs)[1], work) and not has_checkpoint(read_jobs(jobs)[0], work)


def test_queue_runs_jobs_side_by_side_and_skips_finished_ones(tiny_npz, tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("--variant vae_upsample --profile smoke\n--variant vae_bilinear --profile smoke --no-curves\n--variant nope\n")
    argv = [str(jobs), "--parallel", "2", "--store", str(store), "--workdir", str(tmp_path / "runs"), "--data", str(tiny_npz)]
    assert main(argv) == 1  # the third job names no variant of the table
    out = capsys.readouterr().out
    assert "2 of 3 jobs done" in out and "failed" in out
    for name in ("vae_upsample", "vae_bilinear"):
        assert json.loads((store / name / "manifest.json").read_text())["epochs_done"] == 2
    assert sorted(p.name for p in (tmp_path / "runs" / "queue").glob("*.done")) == ["000.done", "001.done"]
    before = (store / "vae_upsample" / "manifest.json").read_text()
    assert main(argv) == 1 and (store / "vae_upsample" / "manifest.json").read_text() == before  # finished jobs are not run again
