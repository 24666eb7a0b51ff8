"""Shape planning and the exactness check: which compiled batch shapes a model serves through, so that a latent's
image never depends on the batch it was decoded in (on any CPU), and how a request is split over them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arena.latents import latents_from_seed

# Batch shapes each model is compiled for, as TF Serving's allowed_batch_sizes. At warm-up `check_shapes` keeps
# those whose rows are exact; a request is padded to the smallest kept shape that holds it, and more than the
# largest runs in pieces of the largest. 12, 24 and 48 are multiples of the 6-row GEMM micro-kernel some CPUs use;
# on such CPUs the last two rows of 8 and 32 take another kernel. 8 is compiled all the same: a lone 16-grid is cut
# into two 8-row pieces decoded side by side (`split_rows`), and where the check rejects 8 they run as 12-row calls;
# 32 is left out (16 + 16 covers it).

PROBE_SEED = 0x5EED
CALL_OVERHEAD_ROWS = 4  # a model call's fixed cost, in rows of work, for choosing among exact shape sets
# Shapes up to this are checked before a model serves (about a quarter of the check's work with the default shapes);
# the larger ones afterwards, joining the serving group when their rows agree with it (`join_shapes`).
FIRST_CHECK_MAX = 16
SAMPLE_ROWS = 16  # latents whose rows place an exact shape in a group


@dataclass(frozen=True)
class ShapeCheck:
    """Which compiled batch shapes a model serves through, why each other one is not used, and which are still to be
    checked (`join_shapes`), with the serving group's rows for the sample latents they are compared against."""

    serving: tuple[int, ...]
    rejected: dict[int, str]
    pending: tuple[int, ...] = ()
    reference: np.ndarray | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "serving": list(self.serving),
            "rejected": {str(s): why for s, why in sorted(self.rejected.items())},
            "pending": list(self.pending),
        }


class ModelUnavailable(Exception):
    """The model exists in the store but cannot serve (why is in the message)."""


def plan(n: int, buckets: tuple[int, ...]) -> list[int]:
    """The compiled shapes that decode n latents with the least work: rows computed, padding included, plus a fixed
    cost per call (CALL_OVERHEAD_ROWS). With shapes 12–64, 25 latents are 16 + 12 rather than 48 padded rows.

    Any split is exact: a model serves only through shapes whose rows agree, whatever their position.
    """
    return list(_cheapest_split(n, tuple(sorted(buckets))))


@lru_cache(maxsize=4096)
def _cheapest_split(n: int, buckets: tuple[int, ...]) -> tuple[int, ...]:
    largest = buckets[-1]
    if n > 2 * largest:  # beyond two calls of the largest, whole pieces of it are the cheapest start
        return (largest,) + _cheapest_split(n - largest, buckets)
    best: tuple[int, ...] | None = None
    for shape in buckets:  # the first call's shape; the rest is split the same way
        rest = () if shape >= n else _cheapest_split(n - shape, buckets)
        candidate = tuple(sorted((shape, *rest), reverse=True))
        if best is None or (_work(candidate), len(candidate)) < (_work(best), len(best)):
            best = candidate
    return best


def split_rows(n: int, buckets: tuple[int, ...], ways: int) -> list[int]:
    """Row counts of the pieces that decode n latents soonest on `ways` idle decode threads, one piece each: n cut
    evenly when the largest piece's planned work is less than the whole's (16 rows: 8 + 8, each one 8-row call, or
    one 12-row call where 8 is not served), else [n]. Exact whatever the cut, as `plan` is."""
    ways = min(ways, n)
    if ways < 2:
        return [n]
    shapes = tuple(sorted(buckets))
    size, extra = divmod(n, ways)
    pieces = [size + (i < extra) for i in range(ways)]
    slowest = max(_work(_cheapest_split(p, shapes)) for p in pieces)
    return pieces if slowest < _work(_cheapest_split(n, shapes)) else [n]


def _work(shapes: tuple[int, ...]) -> int:
    return sum(shapes) + CALL_OVERHEAD_ROWS * len(shapes)


def run_planned(fns: dict[int, Callable], buckets: tuple[int, ...], latents: np.ndarray, latent_dim: int) -> np.ndarray:
    n, start, parts = len(latents), 0, []
    for shape in plan(n, buckets):
        piece = np.zeros((shape, latent_dim), np.float32)
        take = latents[start : start + shape]
        piece[: len(take)] = take
        parts.append(np.asarray(fns[shape](piece)))
        start += shape
    return np.concatenate(parts)[:n]


def check_shapes(fns: dict[int, Callable], latent_dim: int, first: int | None = FIRST_CHECK_MAX) -> ShapeCheck:
    """The compiled shapes to serve through: exact ones that agree with each other, at the least padded cost.

    A CPU's GEMM kernels tile a batch into blocks of rows and may compute the rows past the last whole block with
    another kernel, in another summation order: a latent's output can then depend on where it sits in the batch,
    and each shape can round differently from the others. A shape is exact when its rows are the same twice, when
    a latent gives the same row at every position (probes shifted by one place link all positions in a chain) and
    whatever its batch-mates are (zero padding included). Exact shapes are grouped by the rows they give for the
    same latents; a model serves through one group, so a latent's pixels never depend on what it was batched with.
    Kernels choose their path by shape, not by value, so probes settle it for this machine and thread count.

    Only the shapes up to `first` are checked now (all of them if none of those is exact; None: all) and the group
    is chosen among them; the others are left `pending`, for `join_shapes` (`settle_shapes` does both). The rule is
    the same on every start of a machine, so the choice, and a seed's bytes, do not change between restarts.
    """
    shapes = sorted(fns)
    now = len([s for s in shapes if first is None or s <= first]) or 1  # how many of the smallest are checked now
    check, rejected = _group(fns, latent_dim, shapes[:now])
    if check is None and now < len(shapes):  # nothing small is exact: the others are checked before serving too
        check, more = _group(fns, latent_dim, shapes[now:])
        rejected, now = {**rejected, **more}, len(shapes)
    if check is None:
        raise ModelUnavailable(
            "no compiled batch shape gives exact rows on this CPU "
            f"({'; '.join(f'{s}: {w}' for s, w in rejected.items())})"
        )
    return replace(check, rejected=rejected, pending=tuple(shapes[now:]))


def settle_shapes(fns: dict[int, Callable], latent_dim: int) -> ShapeCheck:
    """Both steps at once: the shapes the service ends up serving through (for tools that serve as it does)."""
    return join_shapes(fns, latent_dim, check_shapes(fns, latent_dim))


def join_shapes(fns: dict[int, Callable], latent_dim: int, check: ShapeCheck) -> ShapeCheck:
    """The pending shapes checked: each exact one whose rows for the sample latents are the serving group's joins it."""
    serving, rejected = list(check.serving), dict(check.rejected)
    probe = _probe(fns, latent_dim)
    for shape in check.pending:
        rows, fault = _exact_rows(fns[shape], probe[:shape])
        if fault:
            rejected[shape] = fault
        elif np.array_equal(_sample_rows(fns, shape, rows, probe, latent_dim), check.reference):
            serving.append(shape)
        else:
            rejected[shape] = _differs_from(check.serving)
    return ShapeCheck(tuple(sorted(serving)), rejected, (), check.reference)


def _group(fns: dict[int, Callable], latent_dim: int, shapes: list[int]) -> tuple[ShapeCheck | None, dict[int, str]]:
    """The cheapest group of agreeing exact shapes among `shapes` (None when none is exact), and why each shape
    outside it is."""
    probe = _probe(fns, latent_dim)
    rejected: dict[int, str] = {}
    groups: list[tuple[list[int], np.ndarray]] = []
    for shape in shapes:
        rows, fault = _exact_rows(fns[shape], probe[:shape])
        if fault:
            rejected[shape] = fault
            continue
        # exact: its rows for the sample latents (these very rows where the shape holds them all) place it in a group
        sample_rows = _sample_rows(fns, shape, rows, probe, latent_dim)
        match = next((members for members, reference in groups if np.array_equal(sample_rows, reference)), None)
        if match is None:
            groups.append(([shape], sample_rows))
        else:
            match.append(shape)
    if not groups:
        return None, rejected
    best, reference = min(((tuple(m), r) for m, r in groups), key=lambda g: (serving_cost(g[0]), -len(g[0])))
    for members, _ in groups:
        if tuple(members) != best:
            rejected.update({shape: _differs_from(best) for shape in members})
    return ShapeCheck(best, rejected, (), reference), rejected


def _probe(fns: dict[int, Callable], latent_dim: int) -> np.ndarray:
    """Distinct latents, one per position of the largest shape; each shape is probed with its first rows."""
    return latents_from_seed(PROBE_SEED, max(fns), latent_dim)


def _exact_rows(fn: Callable, probe: np.ndarray) -> tuple[np.ndarray, str | None]:
    rows = fn(probe)
    return rows, _position_fault(fn, probe, rows)


def _sample_rows(fns: dict[int, Callable], shape: int, rows: np.ndarray, probe: np.ndarray, dim: int) -> np.ndarray:
    sample = probe[:SAMPLE_ROWS]
    return rows[:SAMPLE_ROWS] if shape >= SAMPLE_ROWS else run_planned(fns, (shape,), sample, dim)


def _differs_from(best: tuple[int, ...]) -> str:
    shapes = ", ".join(map(str, best))
    return f"exact, but its rows differ in the last bits from those of shapes {shapes}, which serve at less cost"


def _position_fault(fn: Callable, probe: np.ndarray, rows: np.ndarray) -> str | None:
    """Why a shape's rows depend on more than their own latent, or None when they do not (`rows` = fn(probe))."""
    size, half = len(probe), (len(probe) + 1) // 2
    shifted = fn(np.roll(probe, 1, axis=0))  # latent i now at position i + 1, beside other batch-mates
    moves = [i for i in range(size) if not np.array_equal(shifted[(i + 1) % size], rows[i])]
    padded_differs = not np.array_equal(
        fn(np.concatenate([probe[:half], np.zeros_like(probe[half:])]))[:half], rows[:half]
    )
    if (moves or padded_differs) and not np.array_equal(fn(probe), rows):
        return "not deterministic: the same batch gave different rows twice"
    if moves:
        where = ", ".join(f"{i}→{(i + 1) % size}" for i in moves[:6])
        return f"position-dependent: a latent's row changed when it moved between positions {where} (of 0–{size - 1})"
    if padded_differs:
        return "batch-mate-dependent: rows changed when the other rows were zero padding"
    return None


def serving_cost(shapes: tuple[int, ...], largest_request: int = 64) -> int:
    """Rows computed (padding included) plus a fixed cost per call, summed over request sizes 1..64.

    Deterministic on purpose: the choice must not change between restarts of one machine, or a seed's bytes would.
    """
    return sum(_work(_cheapest_split(n, shapes)) for n in range(1, largest_request + 1))


def compile_shapes(path: Path, width: int, shapes: set[int], threads: int = 0) -> dict[int, Callable]:
    """The exported generator (generator.onnx, training/interchange/onnx_export.py) on onnxruntime, one callable per
    batch shape.

    One session serves every shape: onnxruntime plans its kernels per input shape, and `check_shapes` keeps only the
    shapes whose rows are exact for this thread count. `threads` is each call's intra-op threads (0: one per core);
    they sleep instead of spinning between calls (fourteen sessions share two cores here). The session may be called
    from several threads at once.
    """
    import onnxruntime

    if not Path(path).is_file():
        raise ModelUnavailable(
            f"no {Path(path).name} (the served ONNX export); run `deconv-arena export {Path(path).parent.name}` "
            "where TensorFlow is installed"
        )
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # No per-session memory arena: fourteen sessions would each keep their largest batch's activations (RSS 692 MiB
    # with arenas, here); freed after each call instead.
    options.enable_cpu_mem_arena = False
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    if len(given.shape) != 2 or given.shape[1] != width:
        raise ModelUnavailable(
            f"generator takes input {given.shape}, manifest says rows of {width} (latent, and label if any)"
        )
    name, run = given.name, session.run

    def call(z: np.ndarray) -> np.ndarray:
        (out,) = run(None, {name: z})
        return out

    return {shape: call for shape in sorted(shapes)}
