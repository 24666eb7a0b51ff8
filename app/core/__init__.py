"""The service's plumbing: its settings (one pydantic-settings class), the PNG and response caches, Prometheus
metrics and the HTTP middleware."""
