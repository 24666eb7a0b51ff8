"""The decode stage: what a request asks for, as a spec — the kinds of grid (a small union of frozen dataclasses, each
knowing its image count and its generator inputs) — and the refusals of a grid a model cannot draw. The API's query
models turn themselves into these; no web framework here: app/api/refusals.py maps the refusals to HTTP."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from app.serving.catalogue import ModelEntry
from arena.latents import CLASSES, class_grid, latents_from_seed, latents_from_seeds, lerp, slerp, with_labels
from arena.variants import FAMILIES, VARIANTS

MAX_CLASS_COLUMNS = 6  # a class grid: one row per digit, at most 6 columns (60 images)
CLASS_COLUMNS = 4
CONDITIONAL = tuple(v.name for v in VARIANTS.values() if v.classes)  # the table's; imported ones say so too


class GridRefusal(Exception):
    """A grid that cannot be drawn as asked; `detail` names the value and what is accepted."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class UnfitRequest(GridRefusal):
    """The request cannot apply to this model (a label for an unconditional one, reconstructions of a GAN, …)."""


class MalformedInput(GridRefusal):
    """A value the request carries does not fit the model (a latent of the wrong length, labels missing)."""


def check_label(entry: ModelEntry, label: int | list[int] | None, what: str = "label") -> None:
    """A label for an unconditional model is refused, naming the models that take one."""
    if label is not None and not entry.classes:
        raise UnfitRequest(
            f"{what}={label}: {entry.name} is unconditional; only conditional models take a label "
            f"({', '.join(CONDITIONAL) or 'none in the table'}, or an imported one with classes)"
        )


def require_label(entry: ModelEntry, label: int | None) -> None:
    """A conditional model's single-digit grids need the digit; an unconditional model takes none."""
    check_label(entry, label)
    if entry.classes and label is None:
        raise UnfitRequest(f"label is required: {entry.name} is conditional; give label=0 … {CLASSES - 1}")


@dataclass(frozen=True, kw_only=True)
class GridSpec:
    """What to draw: the images (a subclass each kind) and their layout; `labels` is a conditional model's digit for
    each image. Together with the model's name and version it fully determines the PNG, so it keys the cache."""

    nrow: int | None = None
    scale: int = 4
    padding: int = 2
    labels: tuple[int, ...] | None = None
    view: str = "samples"  # "artefacts": each image's period-2 amplitude per 2×2 block instead (arena/artefacts.py)
    mode: ClassVar[str] = "sample"

    @property
    def count(self) -> int:
        """How many images the grid holds."""
        raise NotImplementedError

    def latents(self, entry: ModelEntry) -> np.ndarray:
        """The latent rows of the images, without labels."""
        raise NotImplementedError

    def inputs(self, entry: ModelEntry) -> np.ndarray:
        """The generator's input rows: the latents, for a conditional model each followed by its label's one-hot code
        (the decode stage has checked that a conditional model's spec has labels, and an unconditional one's none)."""
        rows = self.latents(entry)
        return rows if self.labels is None else with_labels(rows, list(self.labels), entry.classes)

    def asked_labels(self) -> list[int] | None:
        """The digit asked of each image, in order (None: unconditional, or reconstructions)."""
        return list(self.labels) if self.labels is not None else None

    def labelled(self, label: int | None) -> GridSpec:
        """The same images asked of a conditional model for one digit (None: unlabelled, as before)."""
        return self if label is None else replace(self, labels=(label,) * self.count)

    def _identity(self) -> tuple:
        """What the images are, as the cache key and ETag have hashed it since the first release (changing it would
        change every ETag that browsers and proxies hold)."""
        raise NotImplementedError

    def key(self, entry: ModelEntry) -> tuple:
        key = (entry.name, entry.version, self._identity(), self.nrow, self.scale, self.padding)
        key = key if self.labels is None else (*key, self.labels)
        return key if self.view == "samples" else (*key, ("view", self.view))  # sample ETags stay as they were

    def etag(self, entry: ModelEntry) -> str:
        return etag_of(self.key(entry))


def etag_of(key: tuple) -> str:
    return '"' + hashlib.sha256(repr(key).encode()).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class SeedGrid(GridSpec):
    """n images from one seed: image i is row i of default_rng(seed).standard_normal((n, latent_dim))."""

    seed: int
    n: int

    @property
    def count(self) -> int:
        return self.n

    def latents(self, entry: ModelEntry) -> np.ndarray:
        return latents_from_seed(self.seed, self.n, entry.latent_dim)

    def _identity(self) -> tuple:
        return ("seed", self.seed, self.n)


@dataclass(frozen=True)
class SeedListGrid(GridSpec):
    """One image per seed, each its seed's first latent."""

    seeds: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.seeds)

    def latents(self, entry: ModelEntry) -> np.ndarray:
        return latents_from_seeds(list(self.seeds), entry.latent_dim)

    def _identity(self) -> tuple:
        return ("seeds", self.seeds)


@dataclass(frozen=True)
class LatentGrid(GridSpec):
    """Explicit latent vectors, one image each; identified by their bytes' SHA-256."""

    rows: np.ndarray = field(compare=False, hash=False)
    digest: str

    @classmethod
    def of(cls, rows: np.ndarray, **layout) -> LatentGrid:
        digest = hashlib.sha256(np.ascontiguousarray(rows, np.float32).tobytes()).hexdigest()
        return cls(rows=rows, digest=digest, **layout)

    @property
    def count(self) -> int:
        return self.rows.shape[0]

    def latents(self, entry: ModelEntry) -> np.ndarray:
        return self.rows

    def _identity(self) -> tuple:
        return ("latents", self.digest, self.rows.shape)


@dataclass(frozen=True)
class ClassGrid(GridSpec):
    """A conditional model's class grid: row d asks for digit d, with the same `columns` latents of `seed` in every
    row, so a column shows one style across the digits."""

    seed: int
    columns: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "nrow", self.columns)  # one row per digit: its rows are as long as its columns

    @property
    def count(self) -> int:
        return self.columns * CLASSES

    def latents(self, entry: ModelEntry) -> np.ndarray:
        return latents_from_seed(self.seed, self.columns, entry.latent_dim)

    def inputs(self, entry: ModelEntry) -> np.ndarray:
        return class_grid(self.latents(entry), entry.classes)[0]

    def asked_labels(self) -> list[int]:
        return [d for d in range(CLASSES) for _ in range(self.columns)]

    def _identity(self) -> tuple:
        return ("classes", self.seed, self.columns)


@dataclass(frozen=True)
class ReconstructionGrid(GridSpec):
    """A VAE's decodings of the encodings of its first n shipped test digits (which carry their own labels)."""

    n: int
    mode: ClassVar[str] = "reconstruct"

    @property
    def count(self) -> int:
        return self.n

    def latents(self, entry: ModelEntry) -> np.ndarray:
        return entry.recon_latents[: self.n]  # the decode stage checked that this model ships them

    def inputs(self, entry: ModelEntry) -> np.ndarray:
        return self.latents(entry)  # reconstructions ship with their digits' own labels

    def _identity(self) -> tuple:
        return ("reconstruct", self.n)


@dataclass(frozen=True)
class InterpolationGrid(GridSpec):
    """One row of `steps` decodings on the path between the first latents of two seeds."""

    seed_a: int
    seed_b: int
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "nrow", self.steps)  # one row

    @property
    def count(self) -> int:
        return self.steps

    def latents(self, entry: ModelEntry) -> np.ndarray:
        d = entry.latent_dim
        a, b = latents_from_seed(self.seed_a, 1, d)[0], latents_from_seed(self.seed_b, 1, d)[0]
        # Gaussian latents in 100-d live near a sphere: slerp keeps the norm; the 2-d VAE plane uses a line.
        return (slerp if FAMILIES[entry.family].interpolation == "slerp" else lerp)(a, b, self.steps)

    def _identity(self) -> tuple:
        return ("interpolate", self.seed_a, self.seed_b, self.steps)


@dataclass(frozen=True)
class ManifoldGrid(GridSpec):
    """A 2-d latent plane decoded on a size × size grid at the Gaussian quantiles 5 % … 95 % of each axis."""

    size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "nrow", self.size)  # a square

    @property
    def count(self) -> int:
        return self.size**2

    def latents(self, entry: ModelEntry) -> np.ndarray:
        from scipy.stats import norm

        if entry.latent_dim != 2:
            raise UnfitRequest(f"the latent manifold needs a 2-d latent space; {entry.name!r} has {entry.latent_dim}")
        g = norm.ppf(np.linspace(0.05, 0.95, self.size))  # as the CVAE tutorial plots it
        return np.array([[x, y] for y in g[::-1] for x in g], np.float32)

    def _identity(self) -> tuple:
        return ("manifold", self.size)
