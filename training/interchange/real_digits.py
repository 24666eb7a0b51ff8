"""The real digits of "real or generated?" tasks, picked once from the MNIST test set and shipped as data
(app/data/real_digits.npz): the first PER_CLASS test images of each digit in test-set order, skipping the gold
digits (test images 1000-1299), which stay the rating's known answers. `python -m training.interchange.real_digits
[--data PATH]` writes the file again; a test checks it matches."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from arena.records import write_bytes_atomic
from training.loop.data import DataError, Mnist, load_mnist

PATH = Path(__file__).resolve().parents[2] / "app" / "data" / "real_digits.npz"
PER_CLASS = 100
GOLD = range(1000, 1300)  # the test images app/data/gold_digits.npz holds


def make(data: Mnist, per_class: int = PER_CLASS) -> dict[str, np.ndarray]:
    """The file's arrays: `digits` uint8 (N, 28, 28), `labels` uint8, `indices` int32 in the test set, in test-set
    order, and `source`; the first `per_class` test images of each digit outside the gold ones."""
    labels = data.y_test
    outside_gold = np.ones(len(labels), bool)
    outside_gold[GOLD.start : GOLD.stop] = False
    picks = [np.flatnonzero((labels == digit) & outside_gold)[:per_class] for digit in range(10)]
    short = [digit for digit, p in enumerate(picks) if len(p) < per_class]
    if short:
        raise DataError(f"{data.source}: fewer than {per_class} test images outside the gold ones of digit(s) {short}")
    indices = np.sort(np.concatenate(picks)).astype(np.int32)
    return {
        "digits": data.x_test[indices].astype(np.uint8),
        "labels": labels[indices].astype(np.uint8),
        "indices": indices,
        "source": np.array(
            f"MNIST test images, first {per_class} of each digit outside {GOLD.start}-{GOLD.stop - 1} (CC BY-SA 3.0)"
        ),
    }


def write(arrays: dict[str, np.ndarray], target: Path = PATH) -> None:
    """Write the arrays compressed, atomically (a reader sees the old file or the new one)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(target, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.interchange.real_digits", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="MNIST in Keras' mnist.npz layout (default: $MNIST_NPZ, else Keras)")
    args = p.parse_args(argv)
    try:
        write(make(load_mnist(args.data)))
    except DataError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
