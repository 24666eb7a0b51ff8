"""The catalogue record of a served model: its status, what the models store says of it (manifest, metrics, replicate
statistics and comparisons, a VAE's reconstruction inputs) and, once it serves, its decoder
(app/serving/decoder.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.serving.decoder import Decoder
from arena.records import SERVED, classes, input_dim
from arena.variants import VARIANTS

KNOWN_MODELS = tuple(VARIANTS)


def architecture(name: str, manifest: dict[str, Any]) -> str:
    """How a model upsamples, in words: the variant table's description, else the manifest's."""
    if name in VARIANTS:
        return VARIANTS[name].describe()
    return manifest.get("architecture") or manifest.get("upsampling") or "unknown"


@dataclass
class ModelEntry:
    """One model's catalogue record: what the store says of it and whether it serves; its decoder once it does."""

    name: str
    status: str = "loading"  # loading | ready | unavailable
    reason: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    replicates: dict[str, Any] | None = (
        None  # {profile: mean, interval and per-seed values of each metric} (replicates.json)
    )
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # paired differences and verdicts this model is in
    recon_latents: np.ndarray | None = None
    recon_digits: np.ndarray | None = None
    load_seconds: float | None = None
    decoder: Decoder | None = None  # once the model serves: its compiled calls, serving shapes and batcher

    @property
    def family(self) -> str | None:
        return self.manifest.get("family")

    @property
    def latent_dim(self) -> int:
        return int(self.manifest["latent_dim"])

    @property
    def classes(self) -> int:
        """> 0: a conditional model; its input row is the latent followed by the label's one-hot code."""
        return classes(self.manifest)

    @property
    def input_dim(self) -> int:
        return input_dim(self.manifest)

    @property
    def version(self) -> str:
        """The served file's SHA-256 prefix (generator.onnx, which records the hash of the .keras weights it reads):
        a grid for a seed never changes within a version."""
        return self.manifest.get("files", {}).get(SERVED, "unknown")[:16]

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "family": m.get("family") or (VARIANTS[self.name].family if self.name in VARIANTS else None),
            "upsampling": m.get("upsampling") or (VARIANTS[self.name].upsampling if self.name in VARIANTS else None),
            "architecture": architecture(self.name, m),
            "latent_dim": m.get("latent_dim"),
            "classes": self.classes if m else None,
            "version": self.version if m else None,
            "batch_shapes": list(self.decoder.buckets) if self.decoder else None,
            "rejected_batch_shapes": self.decoder.rejected_shapes if self.decoder else None,
            "params": (m.get("params") or {}).get("total"),
            "epochs_done": m.get("epochs_done"),
            "paper_epochs": m.get("paper_epochs"),
            "seconds_per_epoch": m.get("seconds_per_epoch_mean"),
            "created_at": m.get("created_at"),
            "metrics": self.metrics,
            "replicates": self.replicates,
            "comparisons": self.comparisons,
        }
