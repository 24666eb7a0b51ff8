"""The shipped real digits of "real or generated?" tasks: balanced, apart from the gold digits, and what their maker
makes from MNIST."""

from __future__ import annotations

import numpy as np
import pytest

from app.ratings.gold import real_digits
from training.interchange import real_digits as maker
from training.loop.data import DataError

ARRAYS = ("digits", "labels", "indices")


def shipped() -> dict[str, np.ndarray]:
    with np.load(maker.PATH) as f:
        return {k: f[k] for k in f.files}


def test_the_shipped_real_digits_are_100_of_each_class_outside_the_gold_ones():
    f = shipped()
    assert f["digits"].dtype == np.uint8 and f["digits"].shape == (1000, 28, 28)
    assert f["labels"].dtype == np.uint8 and np.bincount(f["labels"], minlength=10).tolist() == [100] * 10
    indices = f["indices"]
    assert indices.dtype == np.int32 and indices.shape == (1000,) and len(set(indices.tolist())) == 1000
    assert not np.any((indices >= 1000) & (indices < 1300)), "a gold digit (test images 1000-1299) among the real ones"
    assert "MNIST test images" in str(f["source"]) and "CC BY-SA 3.0" in str(f["source"])
    assert maker.PATH.stat().st_size < 400_000


def test_the_loader_gives_unit_floats_and_labels_read_only():
    images, labels = real_digits()
    assert images.dtype == np.float32 and images.shape == (1000, 28, 28) and 0 <= images.min() < images.max() <= 1
    np.testing.assert_array_equal(np.round(images * 255).astype(np.uint8), shipped()["digits"])
    np.testing.assert_array_equal(labels, shipped()["labels"])
    assert real_digits() is real_digits() and not images.flags.writeable


def test_the_shipped_real_digits_are_what_the_maker_makes_from_mnist(real_mnist):
    made, f = maker.make(real_mnist), shipped()
    for key in ARRAYS:
        np.testing.assert_array_equal(f[key], made[key])
        assert f[key].dtype == made[key].dtype
    assert str(f["source"]) == str(made["source"])
    np.testing.assert_array_equal(real_mnist.x_test[f["indices"]], f["digits"])
    np.testing.assert_array_equal(real_mnist.y_test[f["indices"]], f["labels"])


def test_the_maker_writes_what_it_makes(tmp_path, tiny_data):
    """On small data (the synthetic set has too few test images for 100 a class, so fewer are asked for here), the
    written file reads back as the arrays made."""
    target = tmp_path / "real.npz"
    made = maker.make(tiny_data, per_class=2)
    maker.write(made, target)
    with np.load(target) as f:
        assert {k: f[k].tolist() for k in f.files} == {k: v.tolist() for k, v in made.items()}


def test_the_maker_refuses_data_with_too_few_digits_of_a_class(tiny_data):
    with pytest.raises(DataError, match=r"fewer than 100 test images outside the gold ones of digit\(s\) \[0"):
        maker.make(tiny_data)
