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
