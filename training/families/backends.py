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


def label_and_noise(rest: tuple) -> tuple[Any, Any]:
    """A step's arguments after the images: (one-hot labels, noise) for a conditional job, (None, noise) otherwise."""
    return rest if len(rest) == 2 else (None, rest[0])


def read_values(groups: list[list]) -> tuple:
    """The current values of groups of Keras variables, in the order a JAX step carries them."""
    return tuple([v.value for v in group] for group in groups)


def write_values(groups: list[list], values: tuple) -> None:
    """Assign values (as `read_values` gives them) back into the Keras variables."""
    for group, vs in zip(groups, values):
        for variable, value in zip(group, vs):
            variable.assign(value)


class JaxState:
    """Values of some groups of Keras variables, read once (after any checkpoint restore), updated by a jitted step."""

    def __init__(self, groups: list[list]):
        self.groups = groups
        self.values: tuple | None = None

    def get(self) -> tuple:
        if self.values is None:
            self.values = read_values(self.groups)
        return self.values

    def sync(self) -> None:
        if self.values is not None:
            write_values(self.groups, self.values)


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
