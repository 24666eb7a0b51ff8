"""All service settings, read once from the environment (prefix ARENA_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARENA_", env_file=None, extra="ignore")

    models_store: Path = Field(Path("models_store"), description="folder of trained generators, one sub-folder each")
    host: str = Field("127.0.0.1", description="address `deconv-arena serve` binds")
    port: int = Field(8000, ge=1, le=65535, description="port `deconv-arena serve` listens on")
    cache_bytes: int = Field(64 * 1024 * 1024, ge=0, description="bytes of rendered PNG grids kept in memory (LRU)")
    batch_window_ms: float = Field(2.0, ge=0, le=100, description="how long a batch waits for more requests to the same model")
    max_batch: int = Field(64, ge=1, le=1024, description="most latents decoded in one model call")
    decode_chunk: int = Field(8, ge=1, le=64, description="fixed batch shape every model is compiled for (pixels never depend on batching)")
    database_url: str = Field("sqlite:///data/arena.db", description="SQLAlchemy URL of the votes database (SQLite file or PostgreSQL)")
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$", description="log level")
    admin_token: SecretStr | None = Field(None, description="token for admin actions (export, delete, pause); unset = admin disabled")
    secret_key: SecretStr | None = Field(None, description="key that signs rater cookies and tasks; unset = a random key per process")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest request body accepted")
    default_seed: int = Field(2023, ge=0, le=2**32 - 1, description="seed the comparison page opens with")


def get_settings() -> Settings:
    return Settings()
