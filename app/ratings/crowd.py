"""Crowd campaigns: raters sent by a recruitment platform (Prolific, Mechanical Turk, a class list with a generic id).

A campaign file (TOML, one per campaign, named in ARENA_CROWD_CAMPAIGNS) fixes what a participant is asked and
paid: tasks per participant (pairs, known-answer checks, "real or generated?" images), the check failures that screen
a participant out, the expected time and pay shown before consent, the completion and screen-out codes and where the
platform wants participants sent at the end. This module reads it, parses a platform's link parameters (the one
parser of participant ids) and plans a participant's steps; app/api/study_pages.py walks a participant through them.
It stores no personal data: only the ids the platform puts in the link.
"""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.ratings.realness import REAL

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# A platform's link parameters: which names carry the participant, study, session and assignment ids.
PLATFORMS: dict[str, dict[str, str]] = {
    "prolific": {"participant": "PROLIFIC_PID", "study": "STUDY_ID", "session": "SESSION_ID"},
    "mturk": {"participant": "workerId", "study": "hitId", "assignment": "assignmentId"},
    "generic": {"participant": "pid", "study": "study", "session": "session"},
}
ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # every platform's ids fit this; anything else is refused
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"  # Mechanical Turk's assignmentId while a worker only previews the HIT
# A participant's steps: a pair task, a known-answer check (a pair: a real digit against an untrained generator), and
# one "real or generated?" image that is a real digit or a served model's (the campaign file fixes how many of each).
STEPS = ("pair", "gold", "real_digit", "generated")


class CrowdError(ValueError):
    """A campaign file that cannot be used; one line naming the file, the key and what is accepted."""


class LinkError(ValueError):
    """A study link whose ids are missing, malformed or for another study; `title` heads the page it gets."""

    def __init__(self, title: str, message: str, status: int):
        super().__init__(message)
        self.title, self.status = title, status


class Crowd(BaseModel):
    """A campaign file's [crowd] table."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="the study link's name: /study/<id>")
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    platform: Literal["prolific", "mturk", "generic"]
    study_id: str | None = Field(None, pattern=ID.pattern, description="the platform's study id a link must carry")
    places: int = Field(ge=1, description="participants who may take part (completed or in a live session)")
    pairs: int = Field(ge=0, description="pair tasks per participant")
    checks: int = Field(ge=0, description="known-answer checks per participant, spread over the session")
    real_or_generated: int = Field(ge=0, description="'real or generated?' images per participant")
    real_share: float = Field(0.5, gt=0, lt=1, description="the share of those images that are real digits")
    images_per_model: int = Field(100, ge=1, description="each model's 'real or generated?' images: seeds 0..N-1")
    screen_out_failures: int = Field(ge=1, description="failed checks that end a participant's session")
    expected_minutes: float = Field(gt=0)
    pay: str = Field(min_length=1, description="shown before consent, e.g. '£1.50'")
    completion_code: str = Field(pattern=ID.pattern)
    screen_out_code: str = Field(pattern=ID.pattern)
    completion_url: str | None = Field(
        None, description="where a finished participant is sent; {code}, {participant}, {assignment} are filled in"
    )
    session_timeout_minutes: float = Field(60, gt=0, description="an abandoned session frees its place after this")

    @model_validator(mode="after")
    def _consistent(self) -> Crowd:
        if self.pairs + self.checks + self.real_or_generated == 0:
            raise ValueError("pairs + checks + real_or_generated is 0: a participant would have nothing to do")
        if self.checks and self.screen_out_failures > self.checks:
            raise ValueError(f"screen_out_failures = {self.screen_out_failures} exceeds checks = {self.checks}")
        if self.completion_code == self.screen_out_code:
            raise ValueError("completion_code and screen_out_code must differ")
        return self

    @property
    def real_digits(self) -> int:
        """How many of a participant's 'real or generated?' images are real digits (the rest are generated)."""
        return round(self.real_or_generated * self.real_share)

    @property
    def steps_total(self) -> int:
        return self.pairs + self.checks + self.real_or_generated

    @property
    def timeout_s(self) -> float:
        return self.session_timeout_minutes * 60


@dataclass(frozen=True)
class CrowdFile:
    path: Path
    crowd: Crowd


def load_crowd(path: Path) -> Crowd:
    """Read and check one campaign file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CrowdError(f"{path}: no such campaign file") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CrowdError(f"{path}: not a readable TOML file ({e})") from None
    if set(raw) != {"crowd"}:
        raise CrowdError(f"{path.name}: expected one [crowd] table; found {', '.join(sorted(raw)) or 'nothing'}")
    try:
        return Crowd.model_validate(raw["crowd"])
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(x) for x in first["loc"]) or "[crowd]"
        got = f" = {first['input']!r}" if first["loc"] and not isinstance(first["input"], dict) else ""
        raise CrowdError(f"{path.name}: [crowd] {key}{got}: {first['msg']}") from None


def load_crowds(spec: str | None) -> dict[str, Crowd]:
    """The campaigns ARENA_CROWD_CAMPAIGNS names (comma-separated files, or a folder of *.toml), by id."""
    paths: list[Path] = []
    for part in [p.strip() for p in (spec or "").split(",") if p.strip()]:
        path = Path(part)
        paths += sorted(path.glob("*.toml")) if path.is_dir() else [path]
    out: dict[str, Crowd] = {}
    for path in paths:
        crowd = load_crowd(path)
        if crowd.id in out:
            raise CrowdError(f"{path.name}: [crowd] id = {crowd.id!r} is used by another campaign file")
        out[crowd.id] = crowd
    return out


def link_ids(crowd: Crowd, query: dict[str, str]) -> dict[str, str | None]:
    """The participant's ids from a study link's parameters, by the campaign's platform (LinkError when the
    participant id is missing or malformed, or the study id is another study's)."""
    names = PLATFORMS[crowd.platform]
    ids = {role: (query.get(param) or None) for role, param in names.items()}
    for role, value in ids.items():
        if value is not None and not ID.match(value):
            raise LinkError(
                "This link is damaged",
                f"{names[role]} = {value[:80]!r} is not an id this study accepts "
                "(1–64 letters, digits, '_', '-', '.').",
                400,
            )
    if crowd.platform == "mturk" and ids.get("assignment") == MTURK_PREVIEW:
        raise LinkError(
            "Accept the HIT to begin",
            "You are previewing this HIT. Accept it on Mechanical Turk and the study starts here.",
            409,
        )
    if ids["participant"] is None:
        raise LinkError(
            "Your participant id is missing",
            f"Open this study from {crowd.platform.capitalize() if crowd.platform != 'mturk' else 'Mechanical Turk'}: "
            f"its link carries your id ({names['participant']}), which this one lacks.",
            400,
        )
    if crowd.study_id and ids.get("study") not in (None, crowd.study_id):
        raise LinkError(
            "This link is for another study",
            f"This page belongs to study {crowd.study_id}, and your link names {ids['study']}. Please return to the "
            "platform and open the study you signed up for.",
            409,
        )
    return ids


def plan_steps(crowd: Crowd, rng: random.Random) -> list[str]:
    """A participant's steps in order: the known-answer checks spread evenly over the session, the pair tasks and
    "real or generated?" images (real digits and generated ones at the campaign's ratio) shuffled between them."""
    generated = crowd.real_or_generated - crowd.real_digits
    rest = ["pair"] * crowd.pairs + ["real_digit"] * crowd.real_digits + ["generated"] * generated
    rng.shuffle(rest)
    total = crowd.steps_total
    # floor((k+1)·total/(checks+1)) climbs by at least 1 a check when total > checks: distinct places
    at = (
        {(k + 1) * total // (crowd.checks + 1) for k in range(crowd.checks)}
        if total > crowd.checks
        else set(range(total))
    )
    it = iter(rest)
    return ["gold" if i in at else next(it) for i in range(total)]


def completion_link(crowd: Crowd, code: str, participant: str, assignment: str | None) -> str | None:
    """The platform's completion URL with the code (and the participant's ids) filled in, or None without one."""
    if not crowd.completion_url:
        return None
    return crowd.completion_url.format(
        code=quote(code), participant=quote(participant), assignment=quote(assignment or "")
    )


def generated_image(
    rng: random.Random, crowd: Crowd, served: dict[str, int], shown: list[tuple[str, int]]
) -> tuple[str, int, int | None]:
    """(model, seed, digit) of a participant's next generated image: the served model they have seen least (ties at
    random), one of its fixed seeds 0..images_per_model-1 they have not seen (any, once all are); a conditional
    model's image is asked for digit seed mod 10, which the task names."""
    count = {m: sum(src == m for src, _ in shown) for m in served}
    fewest = min(count.values())
    model = rng.choice(sorted(m for m in served if count[m] == fewest))
    seen = {seed for src, seed in shown if src == model}
    fresh = [seed for seed in range(crowd.images_per_model) if seed not in seen] or list(range(crowd.images_per_model))
    seed = rng.choice(fresh)
    return model, seed, (seed % 10 if served[model] else None)


def real_image(
    rng: random.Random, labels: list[int], served: dict[str, int], shown: list[tuple[str, int]]
) -> tuple[str, int, int | None]:
    """(REAL, index, digit) of a participant's next real digit, one they have not seen: named by its class as often as
    a generated image is named (the share of conditional models among the served ones), so a named digit never
    gives away that an image is generated."""
    named = rng.random() < (sum(1 for c in served.values() if c) / len(served) if served else 0.0)
    seen = {index for src, index in shown if src == REAL}
    digit = rng.randrange(10) if named else None
    pool = [i for i, label in enumerate(labels) if digit is None or label == digit]
    fresh = [i for i in pool if i not in seen] or pool
    index = rng.choice(fresh)
    return REAL, index, digit
