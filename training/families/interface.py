"""The interface a training family implements (`TrainingJob`), and what every family shares (`JobBase`).

The runner (training/loop/epochs.py), the vmapped trainer (training/loop/vmapped.py) and the exports call a job through
this interface only; a new family writes its networks, `stateful`, `step_inputs`, `losses`, `_tf_step`/`_jax_step` and
its `extra_models`, and inherits the rest.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np

from arena.latents import every_digit, one_hot


@runtime_checkable
class TrainingJob(Protocol):
    """One variant's networks, optimisers and train step, as the runner drives them."""

    family: ClassVar[str]  # the family kind ("gan", "vae") whose protocol the job follows
    output: ClassVar[str]  # what the generator's last layer gives: "tanh" or "logits"
    latent_dim: int
    classes: int  # > 0: conditional on a one-hot label of that many classes
    generator: Any  # the Keras model that is served (a VAE's decoder)
    groups: list  # the variable groups a JAX step carries, in its order (stacked per seed by training/loop/vmapped.py)
    sync: Callable[[], None]  # writes a JAX step's carried values back into the Keras variables

    def stateful(self) -> dict[str, list]:
        """Everything a checkpoint must hold to resume bit-for-bit."""
        ...

    def preprocess(self, x_uint8: np.ndarray) -> np.ndarray: ...

    def train_arrays(self, x_uint8: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]: ...

    def generator_inputs(self, latents: np.ndarray) -> np.ndarray: ...

    def step_inputs(self, batch: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]: ...

    def losses(self, outputs) -> dict: ...

    def train_batch(self, batch: tuple[np.ndarray, ...], rng: np.random.Generator) -> dict: ...

    def end_of_epoch(self, test: tuple[np.ndarray, ...], rng: np.random.Generator) -> dict[str, float]: ...

    def sample(self, latents: np.ndarray) -> np.ndarray: ...

    def extra_models(self) -> dict[str, Any]: ...


class JobBase:
    """The methods every family shares, written once: a family sets `images` (uint8 digits to the network's range),
    `generator`, `latent_dim`, `classes` and its step; `_step` is the compiled step of training/families/backends.py."""

    images: ClassVar[Callable[[np.ndarray], np.ndarray]]
    latent_dim: int
    classes: int
    generator: Any
    _step: Callable

    def preprocess(self, x_uint8: np.ndarray) -> np.ndarray:
        return self.images(x_uint8)

    def train_arrays(self, x_uint8: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """What a batch holds: the images, and with `classes` their labels' one-hot codes."""
        return (self.preprocess(x_uint8), one_hot(y, self.classes)) if self.classes else (self.preprocess(x_uint8),)

    def generator_inputs(self, latents: np.ndarray) -> np.ndarray:
        """The generator's input for latents that come without labels (progress grids, curves): every class in turn."""
        return every_digit(latents, self.classes)

    def train_batch(self, batch: tuple[np.ndarray, ...], rng: np.random.Generator) -> dict:
        return self.losses(self._step(*self.step_inputs(batch, rng)))

    def end_of_epoch(self, test: tuple[np.ndarray, ...], rng: np.random.Generator) -> dict[str, float]:
        return {}

    def sample(self, latents: np.ndarray) -> np.ndarray:
        from training.families.backends import to_numpy

        return to_numpy(self.generator(latents, training=False))
