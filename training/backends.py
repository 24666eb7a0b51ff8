"""The train steps' backend plumbing: TensorFlow (CPU, CI, the default) or JAX (`KERAS_BACKEND=jax`, for GPU machines).

The networks, losses and optimisers are the same Keras objects on both; only how a step is compiled differs. On
TensorFlow a `tf.function` updates the Keras variables in place. On JAX a jitted step is a pure function of the
variables' values, so `JaxState` carries those values between steps and `sync()` writes them back into the Keras
variables before anything reads them (progress grids, checkpoints, export)."""

from __future__ import annotations

from typing import Any, Callable

import keras


def backend() -> str:
    return keras.backend.backend()


def to_numpy(x: Any):
    return keras.ops.convert_to_numpy(x)


class JaxState:
    """Values of some groups of Keras variables, read once (after any checkpoint restore), updated by a jitted step."""

    def __init__(self, groups: list[list]):
        self.groups = groups
        self.values: tuple | None = None

    def get(self) -> tuple:
        if self.values is None:
            self.values = tuple([v.value for v in group] for group in self.groups)
        return self.values

    def sync(self) -> None:
        if self.values is None:
            return
        for group, values in zip(self.groups, self.values):
            for variable, value in zip(group, values):
                variable.assign(value)


def compile_step(tf_step: Callable, jax_step: Callable, groups: list[list]) -> tuple[Callable, Callable[[], None]]:
    """(step(*arrays) -> outputs, sync()). `tf_step(*tensors)` updates variables itself; `jax_step(values, *arrays)`
    returns (new values, outputs)."""
    if backend() == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(tf_step)
        return (lambda *arrays: compiled(*(tf.constant(a) for a in arrays))), (lambda: None)
    if backend() == "jax":
        import jax

        state, jitted = JaxState(groups), jax.jit(jax_step)

        def step(*arrays):
            state.values, outputs = jitted(state.get(), *arrays)
            return outputs

        return step, state.sync
    raise RuntimeError(f"KERAS_BACKEND={backend()!r}: training runs on 'tensorflow' (default) or 'jax'")
