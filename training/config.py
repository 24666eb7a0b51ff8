"""Every hyperparameter of a run, one frozen dataclass per profile; the CLI only overrides fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    """One generator the project trains, serves, evaluates and rates: a row of the one variant table."""

    name: str
    family: str  # "gan" | "vae"
    upsampling: str  # "transpose" | "resize" (nearest) | "bilinear" | "subpixel" (conv to 4× channels + shuffle, ICNR)
    reference: str | None = None  # the variant it is compared with (paired by seed, rated against)
    question: str = ""  # what the comparison with its reference asks
    report: bool = False  # one of the report's own generators
    kernel: int | None = None  # kernel of the upsampling stages, where it differs from the report's network
    layout: str = "report"  # "matched": the transposed GAN's stages, "shallow": the resize GAN's, the operator swapped

    def describe(self) -> str:
        """The upsampling in words, for pages and manifests."""
        op = {"transpose": "transposed convolution", "resize": "nearest-neighbour resize + convolution", "bilinear": "bilinear resize + convolution", "subpixel": "sub-pixel convolution (ICNR)"}[self.upsampling]
        extra = ([f"kernel {self.kernel}"] if self.kernel else []) + {"report": [], "matched": ["the transposed network's stages"], "shallow": ["the resize network's 3×3 stages"]}[self.layout]
        return op + (f" ({', '.join(extra)})" if extra else "")


# The one list of model names. Order: by family, the report's pair first; a variant with a reference is compared
# with it (replicate verdicts, rating schedule), the report's pairs weighted up.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("gan_transpose", "gan", "transpose", report=True),
        Variant("gan_upsample", "gan", "resize", "gan_transpose", "the report's GAN comparison: transposed vs resize-convolution (also differs in depth, kernel size and parameters)", True),
        Variant("gan_upsample_matched", "gan", "resize", "gan_transpose", "only the operator differs: same stages, 5×5 kernels, channels and parameters", layout="matched"),
        Variant("gan_transpose_shallow", "gan", "transpose", "gan_upsample", "only the operator differs in the report's shallow network: same 3×3 stages, channels and parameters as the resize GAN", layout="shallow"),
        Variant("gan_transpose_k4", "gan", "transpose", "gan_transpose", "kernel divisible by the stride (4×4, even overlap) vs the report's 5×5", kernel=4),
        Variant("vae_transpose", "vae", "transpose", report=True),
        Variant("vae_upsample", "vae", "resize", "vae_transpose", "the report's VAE comparison: transposed vs resize-convolution decoder", True),
        Variant("vae_transpose_k4", "vae", "transpose", "vae_transpose", "kernel divisible by the stride (4×4, even overlap) vs the tutorial's 3×3", kernel=4),
        Variant("vae_bilinear", "vae", "bilinear", "vae_upsample", "bilinear vs nearest-neighbour resizing before the convolution"),
        Variant("vae_subpixel", "vae", "subpixel", "vae_transpose", "sub-pixel convolution initialised with ICNR vs transposed convolution"),
    )
}
FAMILIES = ("gan", "vae")


def comparisons() -> list[tuple[Variant, Variant]]:
    """(variant, its reference) for every variant that has one, in table order."""
    return [(v, VARIANTS[v.reference]) for v in VARIANTS.values() if v.reference]


def report_pairs() -> list[frozenset[str]]:
    return [frozenset((v.name, r.name)) for v, r in comparisons() if v.report and r.report]


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
