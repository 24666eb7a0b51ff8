"""The rating's gold "noise" images, made once and shipped as data (app/data/gold_noise.npz): samples of an untrained,
seeded resize-convolution GAN generator, the obviously worse side of a gold task. `python -m
training.interchange.gold_noise` writes the file again; a test checks it matches."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np

from arena.images import to_unit
from arena.variants import VARIANTS
from training.families.dispatch import build_generator

PATH = Path(__file__).resolve().parents[2] / "app" / "data" / "gold_noise.npz"
COUNT = 256


def make() -> np.ndarray:
    """COUNT images, uint8, 28×28, from weights and latents seeded with 0."""
    variant = VARIANTS["gan_upsample"]
    keras.utils.set_random_seed(0)
    g = build_generator(variant)
    z = np.random.default_rng(0).standard_normal((COUNT, variant.facts.latent_dim), dtype=np.float32)
    images = to_unit(keras.ops.convert_to_numpy(g(z, training=False)), variant.facts.output)
    return np.round(images * 255).astype(np.uint8)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PATH
    np.savez_compressed(target, images=make())
    print(f"wrote {target}")
