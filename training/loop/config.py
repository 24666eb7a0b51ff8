"""Every hyperparameter of a run, one frozen dataclass per profile; the CLI only overrides fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from arena.variants import FAMILIES


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


PROFILES = ("paper", "quick", "smoke")


def profile_config(profile: str, family: str) -> TrainConfig:
    """The named profile for a family: `paper` is the report, `quick` fewer epochs, `smoke` tiny."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    f = FAMILIES[family]
    base = TrainConfig(
        "paper", family, f.paper_epochs, f.batch_size, f.learning_rate, f.latent_dim, shuffle_buffer=60000
    )
    if profile == "paper":
        return base
    if profile == "quick":
        return dataclasses.replace(base, profile="quick", epochs=f.quick_epochs)
    return dataclasses.replace(
        base, profile="smoke", epochs=2, train_limit=256, test_limit=64, batch_size=f.smoke_batch_size
    )
