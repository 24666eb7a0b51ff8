"""A served model's decoder: its compiled calls (one onnxruntime session, a callable per batch shape), which of
those shapes it serves through (app/serving/shapes.py), and its batcher (app/serving/predict.py). The registry
(app/serving/registry.py) makes one once a model's shapes are checked; its catalogue record
(app/serving/catalogue.py) holds it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from app.serving.shapes import ShapeCheck, run_planned
from arena.images import to_unit


@dataclass
class Decoder:
    input_dim: int  # a row's width: the latent, and a conditional model's one-hot label after it
    output: str  # what the generator's last layer gives (manifest `output`), mapped to [0, 1] by to_unit
    fns: dict[int, Callable[[np.ndarray], np.ndarray]]  # the compiled calls it serves through, by batch shape
    shape_check: ShapeCheck
    batcher: Any = field(default=None, repr=False)  # app/serving/predict.py's Batcher (which imports nothing of this)

    @property
    def buckets(self) -> tuple[int, ...]:
        """The batch shapes this model serves through."""
        return tuple(sorted(self.fns))

    @property
    def rejected_shapes(self) -> dict[str, str]:
        """Each compiled shape this model does not serve through, with why."""
        return self.shape_check.as_dict()["rejected"]

    @property
    def pending_shapes(self) -> list[int]:
        """The compiled shapes still being checked after the model turned ready (they may join its serving ones)."""
        return list(self.shape_check.pending)

    def serve_through(self, fns: dict[int, Callable], check: ShapeCheck) -> None:
        """Serve through the shapes `check` keeps (a late check's larger set: the very same rows)."""
        self.fns = {b: fns[b] for b in check.serving}
        self.shape_check = check

    def decode_now(self, latents: np.ndarray) -> np.ndarray:
        """Images in [0, 1] for latents, through the fixed-shape compiled calls (see shapes.plan)."""
        fns = self.fns  # one look: a late check may swap in a larger set meanwhile, of the very same rows
        return to_unit(run_planned(fns, tuple(sorted(fns)), latents, self.input_dim), self.output)
