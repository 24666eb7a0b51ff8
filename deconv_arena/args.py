"""What every command group shares: the one-line error, the argument types and the arguments several commands take
(one help text each)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_STORE = Path(os.environ.get("ARENA_MODELS_STORE", "models_store"))


class UserError(Exception):
    """Printed as one line, exit status 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer (≥ 1)")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def seeds(raw: str) -> list[int]:
    from arena.replicates import seed_list

    try:
        return seed_list(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", type=Path, help="MNIST in Keras' mnist.npz layout (else $MNIST_NPZ, else the Keras download)"
    )


def add_store(p: argparse.ArgumentParser, what: str = "models store") -> None:
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"{what} (default: models_store)")


def add_overrides(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The training configuration's overrides of its profile (train and sweep)."""
    from training.loop.config import PROFILES

    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="paper",
        help="paper: the report's protocol (GAN 50 epochs, VAE 10); quick: fewer epochs; smoke: a few steps on a "
        "few hundred images (default: paper)",
    )
    p.add_argument(
        "--epochs", type=positive_int, help="override the profile's number of epochs (a total, also when resuming)"
    )
    p.add_argument("--batch-size", type=positive_int, help="override the profile's batch size (GAN 256, VAE 32)")
    p.add_argument("--learning-rate", type=positive_float, help="override Adam's learning rate (1e-4)")
    p.add_argument("--train-limit", type=positive_int, help="train on only the first N training images")
