"""Prometheus metrics, one registry per app so tests can build several apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "arena_requests_total", "HTTP requests", ["route", "model", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "arena_request_seconds",
            "request latency",
            ["route", "model"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "arena_batch_latents",
            "latents per model call",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.cache = Counter("arena_grid_cache_total", "grid cache lookups", ["result"], registry=self.registry)
        self.models = Gauge("arena_models", "models by status", ["status"], registry=self.registry)
        self.in_flight = Gauge("arena_in_flight_requests", "HTTP requests being handled", registry=self.registry)
        self.votes = Counter("arena_votes_total", "votes by outcome", ["outcome"], registry=self.registry)
