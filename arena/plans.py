"""Analysis plans as data: one TOML file per study under studies/, frozen before its runs.

A plan names, per question, its primary metric, δ with a rationale that does not rest on the runs it judges, α, the
Holm family (the question's own tests only, so adding a study never moves another question's adjusted p), the
secondaries (tested only where the primary is settled), the fixed seeds and the stopping rule. Every run of a study
records the plan's SHA-256 in its manifest (`study`); the analysis (arena/study.py) takes only those runs. The word
"pre-registered" is earned, not declared: only when git shows the plan committed before the study's first run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from arena.stats import METRIC

STUDIES = Path(__file__).resolve().parents[1] / "studies"
EFFECTS = ("operator", "network", "interaction")


class PlanFileError(ValueError):
    """A plan file that is unreadable or incomplete; the message names the file, the key and what is accepted."""


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    primary: str
    delta: float
    delta_rationale: str
    family: tuple[str, ...]
    secondaries: tuple[str, ...]
    contrast: tuple[str, str] | None  # a paired pair (a, b); None: the design's factorial effects


@dataclass(frozen=True)
class Plan:
    path: Path
    sha256: str
    id: str
    version: int
    date: str
    title: str
    alpha: float
    stopping_rule: str
    seeds: tuple[int, ...]
    cells: tuple[str, ...]
    sweep: dict[str, Any]
    questions: tuple[Question, ...]
    resumable: bool = False  # may a run cut off by a sitting's end resume from its checkpoint (the plan says so)
    command: str = ""  # how the study's runs are started (the plan's own words; shown while it awaits runs)

    @property
    def name(self) -> str:
        return f"{self.id} v{self.version}"

    def record(self) -> dict[str, Any]:
        """What a run's manifest records of the plan it ran under."""
        return {"plan": self.id, "version": self.version, "file": self.path.name, "sha256": self.sha256}


def _check_head(path: Path, head: dict[str, Any], sweep: dict[str, Any]) -> None:
    """The [plan] and [sweep] tables have every key, a date and an α in range."""
    for table, keys in (("plan", ("id", "version", "date", "title", "alpha", "stopping_rule")), ("sweep", ("seeds",))):
        for key in keys:
            if key not in (head if table == "plan" else sweep):
                raise PlanFileError(f"{path}: [{table}] lacks {key!r}")
    try:
        dt.date.fromisoformat(str(head["date"]))
    except ValueError:
        raise PlanFileError(f"{path}: [plan] date {head['date']!r} is not YYYY-MM-DD") from None
    if not 0 < float(head["alpha"]) < 0.5:
        raise PlanFileError(f"{path}: alpha {head['alpha']!r} must lie in (0, 0.5)")
    if not isinstance(head.get("resumable", False), bool):
        raise PlanFileError(f"{path}: [plan] resumable {head['resumable']!r} must be true or false")


def _question(path: Path, i: int, q: dict[str, Any]) -> Question:
    """One [[question]] table, checked: its keys, metrics, family and δ."""
    where = f"{path}: question {q.get('id', i + 1)!r}"
    for key in ("id", "text", "primary", "delta", "delta_rationale", "family"):
        if key not in q:
            raise PlanFileError(f"{where} lacks {key!r}")
    for metric in (q["primary"], *q.get("secondaries", [])):
        if metric not in METRIC:
            raise PlanFileError(f"{where}: metric {metric!r} is not one of {', '.join(METRIC)}")
    contrast = tuple(q["contrast"]) if q.get("contrast") else None
    allowed = ("pair",) if contrast else EFFECTS
    bad = [e for e in q["family"] if e not in allowed]
    if bad or not q["family"]:
        raise PlanFileError(f"{where}: family {q['family']!r}; it takes {', '.join(allowed)}")
    if not float(q["delta"]) > 0:
        raise PlanFileError(f"{where}: delta {q['delta']!r} must be > 0")
    return Question(
        q["id"],
        q["text"],
        q["primary"],
        float(q["delta"]),
        q["delta_rationale"],
        tuple(q["family"]),
        tuple(q.get("secondaries", [])),
        contrast,  # type: ignore[arg-type]
    )


def load_plan(path: Path) -> Plan:
    from arena.replicates import seed_list

    path = Path(path)
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PlanFileError(f"{path}: not a readable TOML plan ({e})") from None
    head, sweep, design = data.get("plan") or {}, data.get("sweep") or {}, data.get("design") or {}
    _check_head(path, head, sweep)
    questions = [_question(path, i, q) for i, q in enumerate(data.get("question") or [])]
    if not questions:
        raise PlanFileError(f"{path}: no [[question]] tables")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise PlanFileError(f"{path}: question ids repeat: {ids}")
    try:
        seeds = tuple(seed_list(str(sweep["seeds"])))
    except ValueError as e:
        raise PlanFileError(f"{path}: [sweep] seeds: {e}") from None
    return Plan(
        path,
        hashlib.sha256(raw).hexdigest(),
        str(head["id"]),
        int(head["version"]),
        str(head["date"]),
        str(head["title"]),
        float(head["alpha"]),
        str(head["stopping_rule"]),
        seeds,
        tuple(design.get("cells") or ()),
        dict(sweep),
        tuple(questions),
        bool(head.get("resumable", False)),
        str(head.get("command") or f"KERAS_BACKEND=jax deconv-arena sweep --study studies/{path.name} --vmap --gpu"),
    )


def plans(folder: Path = STUDIES) -> list[Plan]:
    return [load_plan(p) for p in sorted(Path(folder).glob("*.toml"))]


def committed_at(path: Path) -> dt.datetime | None:
    """When git first saw the plan file committed with its present content (None: not committed as it is, or no
    git here). A plan edited after its commit counts from the commit of the content it has now."""
    path = Path(path).resolve()
    try:
        out = subprocess.run(
            ["git", "-C", str(path.parent), "log", "--format=%H %cI", "--", path.name],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(path.parent), "status", "--porcelain", "--", path.name],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip() or dirty.stdout.strip():
        return None
    shallow = subprocess.run(
        ["git", "-C", str(path.parent), "rev-parse", "--is-shallow-repository"], capture_output=True, text=True
    )
    if shallow.stdout.strip() == "true":  # history cut short: when the plan was first committed cannot be told here
        return None
    # the oldest commit whose blob of this file equals the present content
    current = hashlib.sha1(b"blob %d\0" % path.stat().st_size + path.read_bytes()).hexdigest()
    when = None
    for line in out.stdout.strip().splitlines():
        commit, stamp = line.split(" ", 1)
        blob = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", f"{commit}:./{path.name}"], capture_output=True, text=True
        ).stdout.strip()
        if blob == current:
            when = dt.datetime.fromisoformat(stamp)
    return when


def standing(plan: Plan, first_run: dt.datetime | None, committed: dt.datetime | None) -> str:
    """ "pre-registered" only when the plan was committed before the study's first run; "awaiting runs" before any
    run; else "registered after its runs began" (shown, never hidden)."""
    if first_run is None:
        return "committed, awaiting its runs" if committed else "not committed yet"
    if committed is not None and committed < first_run:
        return "pre-registered"
    return "registered after its first run: read as exploratory"
