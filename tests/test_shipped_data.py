"""Data the service ships instead of computing per request: each file is what its maker makes."""

from __future__ import annotations

import numpy as np

from training.interchange import gold_noise


def test_gold_noise_images_are_what_the_untrained_generator_makes():
    """The rating's gold "noise" side: app/data/gold_noise.npz equals `python -m training.interchange.gold_noise` (to
    one grey level of 255, the rounding a CPU with other float kernels may move), and is noise, not digits."""
    with np.load(gold_noise.PATH) as f:
        shipped = f["images"]
    made = gold_noise.make()
    assert shipped.shape == made.shape == (gold_noise.COUNT, 28, 28) and shipped.dtype == np.uint8
    assert int(np.abs(shipped.astype(int) - made.astype(int)).max()) <= 1
    assert np.mean(np.abs(shipped.astype(int) - made.astype(int)) > 0) < 0.01
    assert shipped.std() > 0 and len({img.tobytes() for img in shipped}) == gold_noise.COUNT
