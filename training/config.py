"""Every hyperparameter of a run, one frozen dataclass per profile; the CLI only overrides fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    family: str  # "gan" | "vae"
    upsampling: str  # "transpose" | "resize"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("gan_transpose", "gan", "transpose"),
        Variant("gan_upsample", "gan", "resize"),
        Variant("vae_transpose", "vae", "transpose"),
        Variant("vae_upsample", "vae", "resize"),
    )
}


@dataclass(frozen=True)
class TrainConfig:
    """The report's protocol for one family; `profile` names where the numbers came from."""

    profile: str
    family: str
    epochs: int
    batch_size: int
    learning_rate: float
    latent_dim: int
    shuffle_buffer: int
    train_limit: int | None = None  # use only the first N training images (smoke tests)
    test_limit: int | None = None
    seed: int = 1234
    progress_seed: int = 2023  # the fixed latent batch of the progress grids
    progress_count: int = 16

    def replace(self, **overrides: Any) -> "TrainConfig":
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_PAPER = {
    "gan": TrainConfig("paper", "gan", epochs=50, batch_size=256, learning_rate=1e-4, latent_dim=100, shuffle_buffer=60000),
    "vae": TrainConfig("paper", "vae", epochs=10, batch_size=32, learning_rate=1e-4, latent_dim=2, shuffle_buffer=60000),
}

PROFILES = ("paper", "quick", "smoke")


def profile_config(profile: str, family: str) -> TrainConfig:
    """The named profile for a family: `paper` is the report, `quick` fewer epochs, `smoke` tiny."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = _PAPER[family]
    if profile == "paper":
        return base
    if profile == "quick":
        return dataclasses.replace(base, profile="quick", epochs=10 if family == "gan" else 3)
    return dataclasses.replace(base, profile="smoke", epochs=2, train_limit=256, test_limit=64, batch_size=64 if family == "gan" else 32)
