"""Checkerboard at initialisation (issue 12 §3): is the pattern there before any training?

For every variant of the table, `inits` random initialisations (seeds 0..inits-1): the checkerboard index of its
outputs on `samples` fixed latents (× real MNIST test digits, the evaluator's reference) and, for each stride-2
transposed convolution, the median over output channels of the polyphase coefficient of variation (how unequal the
four phase sums are: a flat input comes out as a checkerboard when they differ). Mean with a 95 % t-interval over
the initialisations. BatchNormalization in inference mode (its initial statistics: mean 0, variance 1)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from arena.images import to_unit
from arena.latents import every_digit, latents_from_seed
from arena.records import write_json_atomic
from arena.stats import t_interval
from arena.variants import VARIANTS, Variant
from training.evaluation import measures
from training.families.dispatch import build_generator

LATENT_SEED = 777
FILE = "init_stats.json"


def one_variant(variant: Variant, inits: int, samples: int, real_cb: float) -> dict[str, Any]:
    latent_dim, output = variant.facts.latent_dim, variant.facts.output
    z = every_digit(latents_from_seed(LATENT_SEED, samples, latent_dim), variant.classes)  # as in evaluation
    ratios, cvs = [], []
    for seed in range(inits):
        keras.utils.set_random_seed(seed)
        model = build_generator(variant, latent_dim)
        images = to_unit(keras.ops.convert_to_numpy(model(z, training=False)), output)
        ratios.append(measures.checkerboard_index(images) / real_cb)
        layers = [la for la in model.layers if type(la).__name__ == "Conv2DTranspose" and tuple(la.strides) == (2, 2)]
        if layers:
            cvs.append(
                float(np.mean([measures.polyphase_sums(la.kernel.numpy())["cv_flat_input_median"] for la in layers]))
            )
    out = {
        "inits": inits,
        "samples": samples,
        "checkerboard_ratio": t_interval(ratios).as_dict(),
        "checkerboard_ratio_values": [round(r, 5) for r in ratios],
    }
    out["polyphase_cv"] = t_interval(cvs).as_dict() if cvs else None
    return out


def compute(store: Path, inits: int = 20, samples: int = 256, log: Callable[[str], None] = print) -> dict[str, Any]:
    from training.evaluation.classifier import load_evaluator

    _, _, reference = load_evaluator(store)
    real_cb = float(reference["checkerboard_index"])
    result: dict[str, Any] = {
        "latent_seed": LATENT_SEED,
        "level": 0.95,
        "interval": "Student t over initialisations",
        "models": {},
    }
    for name, variant in VARIANTS.items():
        t0 = time.perf_counter()
        result["models"][name] = r = one_variant(variant, inits, samples, real_cb)
        cv = r["polyphase_cv"]
        log(
            f"{name}: checkerboard at init {r['checkerboard_ratio']['mean']:.2f}× real "
            f"[{r['checkerboard_ratio']['low']:.2f}, {r['checkerboard_ratio']['high']:.2f}]"
            + (
                f", polyphase CV {cv['mean']:.2f} [{cv['low']:.2f}, {cv['high']:.2f}]"
                if cv
                else ", no transposed convolution"
            )
            + f" ({inits} inits × {samples} samples, {time.perf_counter() - t0:.1f} s)"
        )
    write_json_atomic(Path(store) / FILE, result)
    return result
