"""HYPE∞ ("real or generated?", Zhou et al., NeurIPS 2019): a person sees one image at a time, a real digit or a
generated one, and says which; a model's score is the share of its images taken for real, in percent.

Answers are crossed: a rater answers many images and an image is answered by many raters, so both raters and images
are samples from populations the score speaks about. The interval resamples both at once, Owen's pigeonhole
bootstrap (arena/resample.py `cluster_weights`): raters drawn with replacement, each keeping all their answers, times
each source's images drawn with replacement; an answer's weight is the product of its rater's and its image's draw
counts. It is conservative for crossed designs (in tests/test_realness.py's simulation its intervals cover 97-100 %
at nominal 95 %); resampling answers as if independent undercovers when raters differ, and resampling raters alone
ignores that the images are a sample too.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from app.ratings.ranking import missing
from arena.resample import RESAMPLES, cluster_weights, percentile_interval

REAL = "real_digits"  # the source of a task's and an answer's real digit (app/data/real_digits.npz)
METHOD = (
    "share of answers 'real' (HYPE∞ = 100 × the share, for a model), 95 % percentile interval, "
    f"pigeonhole bootstrap over raters and images ({RESAMPLES:,} resamples)"
)


def _field(answer: Any, name: str) -> Any:
    """An answer's field, from a mapping or an object."""
    return answer[name] if isinstance(answer, Mapping) else getattr(answer, name)


def _bootstrap_shares(
    units: np.ndarray, image_of: np.ndarray, said_real: np.ndarray, by_rater: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One source's share 'real' in each resample with any weight on it: `units` are its answers' columns in
    `by_rater` (resamples × answers, each answer weighted by its rater's draw count), `image_of` their images; its
    images are drawn with replacement in every resample, and a unit's weight is its rater's × its image's count."""
    _, local = np.unique(image_of[units], return_inverse=True)
    n_images = int(local.max()) + 1
    resamples = len(by_rater)
    picks = rng.integers(0, n_images, (resamples, n_images)) + n_images * np.arange(resamples)[:, None]
    drawn = np.bincount(picks.ravel(), minlength=resamples * n_images).reshape(resamples, n_images)  # draw counts
    w = by_rater[:, units] * drawn[:, local]
    total = w.sum(1)
    return (w @ said_real[units])[total > 0] / total[total > 0]


def realness_table(
    answers: Sequence[Any], models: Sequence[str], resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> list[dict[str, Any]]:
    """One row per model in `models`, in order, then one for REAL: counts (answers, raters, images), the share said
    real with its interval where ranking's display rule allows them (else `missing` says what is needed), `hype`
    (percent) for a model and `error_rate` (real digits taken for generated) for REAL.

    An answer has `rater`, `source` (a model or REAL), `image` (its id within the source) and `said_real`, as a
    mapping or an object; answers about other sources are left out."""
    sources = [*models, REAL]
    index = {s: k for k, s in enumerate(sources)}
    kept = [a for a in answers if _field(a, "source") in index]
    source_of = np.array([index[_field(a, "source")] for a in kept], int)
    raters: list[Hashable] = [_field(a, "rater") for a in kept]
    images: dict[tuple[str, Hashable], int] = {}
    image_of = np.array([images.setdefault((_field(a, "source"), _field(a, "image")), len(images)) for a in kept])
    said_real = np.array([bool(_field(a, "said_real")) for a in kept], float)
    by_rater = cluster_weights(raters, resamples, seed)
    rng = np.random.default_rng((seed, 1))  # the image stage's own stream, beside the rater stage's
    rows = []
    for k, source in enumerate(sources):
        units = np.flatnonzero(source_of == k)
        n_raters = len({raters[u] for u in units})
        row = {
            "source": source,
            "answers": len(units),
            "raters": n_raters,
            "images": len(set(image_of[units].tolist())),
            "share_real": None,
            "low": None,
            "high": None,
            "hype": None,
            "error_rate": None,
            "missing": missing(len(units), n_raters, unit="answer"),
        }
        if row["missing"] is None:
            share = float(said_real[units].mean())
            low, high = percentile_interval(_bootstrap_shares(units, image_of, said_real, by_rater, rng), level)
            row.update(share_real=share, low=float(low), high=float(high))
            if source == REAL:
                row["error_rate"] = 1 - share
            else:
                row["hype"] = 100 * share
        rows.append(row)
    return rows
