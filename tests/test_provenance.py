"""What a manifest must say about how its run was made: sittings it resumed after, and the uncommitted code."""

from __future__ import annotations

import json

from arena.variants import VARIANTS
from training.loop import provenance
from training.loop.config import profile_config
from training.loop.epochs import train_variant


def test_a_resumed_run_and_its_uncommitted_code_are_recorded(tiny_data, tmp_path, monkeypatch):
    variant, config = VARIANTS["vae_upsample"], profile_config("smoke", "vae")
    store, work = tmp_path / "store", tmp_path / "runs"
    monkeypatch.setattr(provenance, "source_diff", lambda: None)
    train_variant(variant, config.replace(epochs=1), tiny_data, store, work, log=lambda _: None)
    first = json.loads((store / variant.name / "manifest.json").read_text())
    assert (
        first["resumed_after_epochs"] == []
        and "source_diff" not in first
        and not (store / variant.name / "source.diff").exists()
    )

    monkeypatch.setattr(provenance, "source_diff", lambda: "diff --git a/x b/x\n+changed\n")
    train_variant(variant, config.replace(epochs=2), tiny_data, store, work, resume=True, log=lambda _: None)
    train_variant(variant, config.replace(epochs=3), tiny_data, store, work, resume=True, log=lambda _: None)
    m = json.loads((store / variant.name / "manifest.json").read_text())
    assert m["epochs_done"] == 3 and m["resumed_after_epochs"] == [1, 2]
    assert m["source_diff"] == "source.diff" and (store / variant.name / "source.diff").read_text().endswith(
        "+changed\n"
    )


def test_a_run_is_dirty_only_when_the_tracked_source_differs_from_its_commit(tmp_path):
    """A sweep writes its runs into models_store/, so every run after the first was recorded "<commit>-dirty" with
    no source diff to show. The commit is "-dirty" exactly when there is a source diff to record."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "models_store").mkdir()
    (tmp_path / "train.py").write_text("epochs = 10\n")
    (tmp_path / "models_store" / "replicates.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert provenance.git_commit(tmp_path) == head.strip() and provenance.source_diff(tmp_path) is None
    (tmp_path / "models_store" / "replicates.json").write_text('{"runs": 1}\n')  # a sweep's output: not source
    assert provenance.git_commit(tmp_path) == head.strip() and provenance.source_diff(tmp_path) is None
    (tmp_path / "train.py").write_text("epochs = 11\n")
    assert provenance.git_commit(tmp_path) == head.strip() + "-dirty"
    assert "+epochs = 11" in provenance.source_diff(tmp_path)
