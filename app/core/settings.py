"""All service settings, read once from the environment (prefix ARENA_)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BUCKETS = (1, 4, 8, 12, 16, 24, 48, 64)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARENA_", env_file=None, extra="ignore")

    models_store: Path = Field(Path("models_store"), description="folder of trained generators, one sub-folder each")
    host: str = Field("127.0.0.1", description="address `deconv-arena serve` binds (the container uses `0.0.0.0`)")
    port: int = Field(8000, ge=1, le=65535, description="port `deconv-arena serve` listens on")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "worker processes of `deconv-arena serve` (`--workers`; each loads the models); above 1 needs "
            "ARENA_SECRET_KEY"
        ),
    )
    cache_bytes: int = Field(64 * 1024 * 1024, ge=0, description="bytes of rendered PNG grids kept in memory (LRU)")
    response_cache_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        description="bytes of whole immutable image responses replayed by URL before routing (LRU)",
    )
    batch_window_ms: float = Field(
        12.0,
        ge=0,
        le=100,
        description=(
            "how long a batch waits for more requests to the same "
            "model (an idle model with no recent company does not wait)"
        ),
    )
    max_batch: int = Field(64, ge=1, le=1024, description="most latents decoded in one model call")
    decode_threads: int = Field(
        0,
        ge=0,
        le=64,
        description=(
            "model calls run side by side, each on one core (0: one per core the process may use); "
            "1: one call at a time on all cores"
        ),
    )
    batch_shapes: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = Field(
        DEFAULT_BUCKETS,
        min_length=1,
        description=(
            "batch sizes each model is compiled for (a JSON list, e.g. `[16,64]`); at warm-up only the exact ones"
            " that agree are kept, and a batch is padded to the smallest kept shape that holds it"
        ),
    )
    database_url: str = Field(
        "sqlite:///data/arena.db",
        description=(
            "SQLAlchemy URL of the votes database: a SQLite file (WAL) or `postgresql+psycopg://…` for several "
            "instances"
        ),
    )
    log_level: str = Field(
        "info",
        pattern="^(debug|info|warning|error)$",
        description="log level: debug, info, warning or error (access logs are JSON lines)",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="token for admin actions (export, delete, pause); unset = admin disabled (403)",
    )
    secret_key: SecretStr | None = Field(
        None,
        description=(
            "key that signs rater cookies and tasks; unset = a random key per process, and `serve` refuses to "
            "start with a PostgreSQL database or several workers"
        ),
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest request body accepted")
    rate_n: int = Field(9, ge=1, le=64, description="images per grid in a rating task")
    task_ttl_s: int = Field(900, ge=10, description="seconds a rating task stays answerable")
    undo_window_s: int = Field(30, ge=0, description="seconds during which a rater may undo their last vote")
    votes_per_minute: int = Field(40, ge=1, description="most votes one rater may cast in a minute")
    gold_rate: float = Field(
        0.1, ge=0, le=1, description="share of tasks that pit real digits against an untrained generator"
    )
    four_rate: float = Field(
        0.1, ge=0, le=1, description="share of tasks that show four models of one family and ask for the best"
    )
    repeat_rate: float = Field(
        0.2, ge=0, le=1, description="share of pair tasks that repeat another rater's item (for agreement)"
    )
    report_pair_weight: float = Field(
        3.0,
        ge=1,
        description="how much more often the report's pairs and each control against its reference are scheduled",
    )
    scheduler: str = Field(
        "adaptive",
        pattern="^(adaptive|uniform)$",
        description=(
            "how pair tasks are chosen: adaptive (where one more vote narrows an open campaign question most, with "
            "a floor share for every pair) or uniform (the pair with the fewest votes per weight)"
        ),
    )
    adaptive_floor: float = Field(
        0.2, ge=0.05, le=1, description="share of pair tasks the adaptive scheduler leaves to the uniform rule"
    )
    campaign_plan: Path | None = Field(
        None,
        description=(
            "the rating campaign's plan file (TOML, fixed before its votes); unset = the shipped "
            "app/ratings/plans/served-pairs-v1.toml"
        ),
    )
    crowd_campaigns: str = Field(
        "",
        description=(
            "crowd campaign files (TOML; comma-separated, or a folder of them), each served at /study/<id> for "
            "participants a recruitment platform sends; unset = none (docs/operations.md)"
        ),
    )
    exclude_flagged: bool = Field(True, description="leave raters who fail gold tasks out of the ranking")
    results_ttl_s: float = Field(
        10.0,
        ge=0,
        description="how often (seconds) a background thread recomputes the results once votes changed; 0: on each "
        "request that finds new votes",
    )
    bootstrap_resamples: int = Field(
        2000, ge=50, le=5000, description="bootstrap resamples (raters, then their votes) for the rating intervals"
    )
    default_seed: int = Field(2023, ge=0, le=2**32 - 1, description="seed the comparison page opens with")

    def needs_secret_key(self) -> str | None:
        """Why this configuration cannot run without ARENA_SECRET_KEY, or None when it can.

        Without the key each process signs rater cookies with its own random key, so a rater who started on one
        process is a stranger to every other one (401) and votes cannot be made wherever a request lands.
        """
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return None
        if not self.database_url.startswith("sqlite"):
            return (
                f"the votes database is shared ({self.database_url.split(':', 1)[0]}), "
                "so several instances may serve it"
            )
        if self.workers > 1:
            return f"{self.workers} worker processes serve it"
        return None


SETTINGS_BEGIN, SETTINGS_END = "<!-- settings-begin -->", "<!-- settings-end -->"


def _default_text(value: object) -> str:
    """A field's default as the table shows it: secrets "unset", paths as strings, tuples comma-joined."""
    if value is None or isinstance(value, SecretStr):
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def configuration_markdown() -> str:
    """Every setting as a markdown table (environment variable, default, description), from `Settings` itself."""
    prefix = Settings.model_config["env_prefix"]
    rows = ["| environment variable | default | description |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        text = _default_text(field.get_default(call_default_factory=True))
        default = text if text == "unset" else f"`{text}`"
        mib, value = 1024 * 1024, field.default
        if name.endswith("_bytes") and isinstance(value, int) and value >= mib and not value % mib:
            default += f" ({value // mib} MiB)"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | {default} | {description} |")
    return "\n".join(rows)


def write_configuration(path: Path) -> bool:
    """Rewrite the table between the settings markers of `path`; True when the file changed."""
    text = path.read_text()
    head, rest = text.split(SETTINGS_BEGIN, 1)
    _, tail = rest.split(SETTINGS_END, 1)
    new = f"{head}{SETTINGS_BEGIN}\n{configuration_markdown()}\n{SETTINGS_END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md")
    print(f"{target}: {'updated' if write_configuration(target) else 'already up to date'}")
