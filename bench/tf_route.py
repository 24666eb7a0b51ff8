"""Today's route before ONNX, for bench/serve.py: `deconv-arena serve` exactly as it ships, except that every
generator runs as a TensorFlow concrete function per batch shape from its .keras file (the serving path up to
the ONNX export). Bench only: the service itself never imports TensorFlow.

    python bench/tf_route.py PORT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ARENA_DECODE_THREADS", "1")  # today's route: one model call at a time on all cores

import app.serving.registry
from app.serving.shapes import ModelUnavailable
from arena.records import GENERATOR


def compile_shapes_tf(path: Path, width: int, shapes: set[int], threads: int = 0) -> dict[int, Callable]:
    """The model as a tf.function's concrete functions, one per batch shape (no retracing, no `predict`)."""
    import keras
    import tensorflow as tf

    import training.families.layers  # noqa: F401  (registers the custom layers a generator may use)

    model = keras.saving.load_model(Path(path).with_name(GENERATOR), compile=False)
    if tuple(model.input_shape[1:]) != (width,):
        raise ModelUnavailable(f"generator takes input {model.input_shape}, manifest says rows of {width}")
    generate = tf.function(lambda z: model(z, training=False), autograph=False)
    concrete = {s: generate.get_concrete_function(tf.TensorSpec([s, width], tf.float32)) for s in sorted(shapes)}
    return {s: (lambda z, fn=fn: fn(tf.constant(z)).numpy()) for s, fn in concrete.items()}


if __name__ == "__main__":
    app.serving.registry.compile_shapes = compile_shapes_tf
    from deconv_arena.cli import main

    sys.exit(main(["serve", "--port", sys.argv[1]]))
