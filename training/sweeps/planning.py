"""A plan of training jobs: `PlannedRun` (one run: a variant, its profile and overrides, a replicate seed or the served
run, its float32 matmul precision) and `Plan` (the jobs, and how they group into units for --vmap). `deconv-arena train`
is a plan of one job, or of one per seed with --seeds; `deconv-arena sweep` plans a grid from the variant table or a
TOML plan file. Every plan runs through the one front door, training/sweeps/stages.py.

A plan file holds the same choices as the sweep's command line, as one table or several `[[group]]` tables:

    factorial = "gan"     # or family = "vae", comparison = "gan_upsample_matched", variants = ["gan_transpose"]
    seeds = "1-10"        # or [1, 2, 3]; omit with served = true
    profile = "paper"     # paper | quick | smoke
    epochs = 50           # optional overrides: epochs, batch_size, learning_rate, train_limit
    precision = "highest" # optional: JAX's float32 matmul precision for the jobs (JAX_DEFAULT_MATMUL_PRECISION)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.layout import RunLayout
from arena.replicates import seed_list
from arena.variants import FAMILIES, VARIANTS, comparisons, factorials
from training.loop.config import PROFILES, TrainConfig, profile_config

OVERRIDES = ("epochs", "batch_size", "learning_rate", "train_limit")
SELECTORS = ("factorial", "family", "comparison", "variants")
PLAN_KEYS = (*SELECTORS, "seeds", "profile", "served", "precision", *OVERRIDES)
PRECISIONS = ("default", "high", "highest")


class PlanError(ValueError):
    """A plan a user got wrong; the message names the value and what is accepted."""


@dataclass(frozen=True)
class PlannedRun:
    """One training run of a plan."""

    variant: str
    profile: str
    seed: int | None  # None: the served run (store/<variant>, the profile's seed unless an override sets one)
    overrides: tuple[tuple[str, Any], ...] = ()
    precision: str | None = None

    @classmethod
    def of_config(cls, variant: str, config: TrainConfig, seed: int | None = None) -> "PlannedRun":
        """The job that trains `config` (the profile's fields that `config` overrides become the job's overrides)."""
        base = profile_config(config.profile, VARIANTS[variant].family)
        changed = {k: v for k, v in config.as_dict().items() if v != getattr(base, k) and k != "profile"}
        if seed is not None:
            changed.pop("seed", None)
        return cls(variant, config.profile, seed, tuple(sorted(changed.items())))

    @property
    def label(self) -> str:
        return f"{self.variant} {self.profile} " + ("served" if self.seed is None else f"seed {self.seed}")

    def config(self) -> TrainConfig:
        c = profile_config(self.profile, VARIANTS[self.variant].family).replace(**dict(self.overrides))
        return c if self.seed is None else c.replace(seed=self.seed)

    def layout(self, store: Path, workdir: Path = Path("runs")) -> RunLayout:
        """Where its run lives: installed in `store`, checkpointed in `workdir` (see arena/layout.py)."""
        return RunLayout(self.variant, self.profile, self.seed, Path(store), Path(workdir))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "overrides": dict(self.overrides)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlannedRun":
        return cls(d["variant"], d["profile"], d["seed"], tuple(sorted(d["overrides"].items())), d.get("precision"))

    def unit_key(self) -> tuple:
        """Jobs with the same key differ only by seed: one vmapped program can train them together."""
        return (self.variant, self.profile, self.overrides, self.precision, self.seed is None)


@dataclass(frozen=True)
class Plan:
    jobs: tuple[PlannedRun, ...]

    def units(self, vmap: bool) -> list[tuple[PlannedRun, ...]]:
        """What runs as one process or task: each job alone, or with `vmap` the replicates of one variant and
        settings together (served runs always alone)."""
        if not vmap:
            return [(j,) for j in self.jobs]
        groups: dict[tuple, list[PlannedRun]] = {}
        for j in self.jobs:
            groups.setdefault(j.unit_key() if j.seed is not None else (j,), []).append(j)
        return [tuple(g) for g in groups.values()]

    def describe(self) -> str:
        names = sorted({j.variant for j in self.jobs}, key=list(VARIANTS).index)
        seeds = sorted({j.seed for j in self.jobs if j.seed is not None})
        return f"{len(self.jobs)} runs: {', '.join(names)}" + (f" × seeds {_ranges(seeds)}" if seeds else "")


def _ranges(seeds: list[int]) -> str:
    out, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        out.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(out)


def select(
    factorial: str | None = None,
    family: str | None = None,
    comparison: str | None = None,
    variants: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """Variant names from the table, in table order: a family's factorial cells, a whole family, a comparison
    (the variant and its reference), or names."""
    chosen: set[str] = set()
    if factorial is not None:
        cells = {f.family: f for f in factorials()}
        if factorial not in cells:
            raise PlanError(f"factorial {factorial!r}: the table declares one for {', '.join(sorted(cells)) or 'none'}")
        chosen |= set(cells[factorial].cells.values())
    if family is not None:
        if family not in FAMILIES:
            raise PlanError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
        chosen |= {n for n, v in VARIANTS.items() if v.family == family}
    if comparison is not None:
        pairs = {v.name: (v.name, r.name) for v, r in comparisons()}
        if comparison not in pairs:
            raise PlanError(f"comparison {comparison!r}: name a variant that has a reference ({', '.join(pairs)})")
        chosen |= set(pairs[comparison])
    for name in variants:
        if name not in VARIANTS:
            raise PlanError(f"variant {name!r} is not in the variant table ({', '.join(VARIANTS)})")
        chosen.add(name)
    if not chosen:
        raise PlanError(f"the plan selects no variant: give one of {', '.join(SELECTORS)}")
    return [n for n in VARIANTS if n in chosen]


def plan_group(
    *,
    seeds: list[int] | str | None = None,
    profile: str = "paper",
    served: bool = False,
    precision: str | None = None,
    factorial: str | None = None,
    family: str | None = None,
    comparison: str | None = None,
    variants: list[str] | tuple[str, ...] = (),
    **overrides: Any,
) -> list[PlannedRun]:
    if profile not in PROFILES:
        raise PlanError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    if precision is not None and precision not in PRECISIONS:
        raise PlanError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise PlanError(f"unknown setting {unknown[0]!r}; accepted: {', '.join(PLAN_KEYS)}")
    for k, v in overrides.items():
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        if not ok or (k != "learning_rate" and not isinstance(v, int)):
            kind = "a number > 0" if k == "learning_rate" else "an integer ≥ 1"
            raise PlanError(f"{k} = {v!r}: must be {kind}")
    if isinstance(seeds, str):
        try:
            seeds = seed_list(seeds)
        except ValueError as e:
            raise PlanError(f"seeds: {e}") from None
    if served == bool(seeds):
        raise PlanError("give seeds (replicates) or served = true (the served runs), not both, not neither")
    if seeds is not None and (
        not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise PlanError(f'seeds = {seeds!r}: a list of integers or a range such as "1-10"')
    names = select(factorial, family, comparison, variants)
    frozen = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
    prec = None if precision in (None, "default") else precision
    if served:
        return [PlannedRun(n, profile, None, frozen, prec) for n in names]
    return [PlannedRun(n, profile, s, frozen, prec) for s in seeds for n in names]


def plan(groups: list[dict[str, Any]]) -> Plan:
    jobs: list[PlannedRun] = []
    for g in groups:
        for j in plan_group(**g):
            if j not in jobs:
                jobs.append(j)
    return Plan(tuple(jobs))


def interleaved(p: Plan) -> Plan:
    """A study's order: seed by seed, every cell of a seed before the next seed (so a drift in the machine over the
    sitting touches every cell alike)."""
    return Plan(tuple(sorted(p.jobs, key=lambda j: (j.seed is not None, j.seed or 0))))


def read_plan(path: Path) -> Plan:
    """A TOML plan file (see the module docstring)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise PlanError(f"plan file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"plan file {path} is not valid TOML ({e})") from None
    groups = doc.pop("group", [])
    if doc:
        groups = [doc, *groups]
    for g in groups:
        unknown = sorted(set(g) - set(PLAN_KEYS))
        if unknown:
            raise PlanError(f"plan file {path}: unknown key {unknown[0]!r}; accepted: {', '.join(PLAN_KEYS)}")
    if not groups:
        raise PlanError(f"plan file {path} plans nothing; see `deconv-arena sweep --help` for its keys")
    try:
        return plan(groups)
    except PlanError as e:
        raise PlanError(f"plan file {path}: {e}") from None


def unit_label(unit: tuple[PlannedRun, ...]) -> str:
    if len(unit) == 1:
        return unit[0].label
    return f"{unit[0].variant} {unit[0].profile} seeds {_ranges(sorted(j.seed for j in unit))} (one program)"
