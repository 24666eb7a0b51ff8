"""Family dispatch as data: the training job and the generator builder of each family of the variant table."""

from __future__ import annotations

import keras

from arena.variants import Variant
from training.families.gan import GanJob
from training.families.gan import build_generator as gan_generator
from training.families.vae import VaeJob, build_decoder

JOBS = {"gan": GanJob, "vae": VaeJob}
_GENERATORS = {"gan": gan_generator, "vae": build_decoder}


def build_generator(variant: Variant, latent_dim: int | None = None) -> keras.Model:
    """The variant's generator (the VAE's decoder), freshly initialised."""
    return _GENERATORS[variant.facts.kind](
        variant.upsampling, latent_dim or variant.facts.latent_dim, variant.kernel, variant.layout, variant.classes
    )
