# syntax=docker/dockerfile:1
# Build: the project and its serving dependencies into a virtual environment. The generators run as ONNX on
# onnxruntime: no TensorFlow, Keras or matplotlib in the image (deploy/image_check.py checks).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml setup.py README.md ./
COPY arena ./arena
COPY training ./training
COPY app ./app
COPY templates ./templates
COPY deconv_arena ./deconv_arena
# The README's install (make install): the project from pyproject.toml, with the PostgreSQL driver.
RUN pip install ".[postgres]"

# Run: slim image, non-root user, shipped models read-only.
FROM python:3.11-slim-bookworm
# The installed package carries its templates, static files and migrations; only the models come from /app.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    ARENA_HOST=0.0.0.0 ARENA_PORT=8000 ARENA_MODELS_STORE=/app/models_store ARENA_DATABASE_URL=sqlite:////data/arena.db
RUN useradd --create-home --uid 10001 arena && mkdir -p /data && chown arena /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY models_store ./models_store
USER arena
EXPOSE 8000
VOLUME ["/data"]
# Loading the ONNX models and their exactness checks take a few seconds; readiness is /readyz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
# uvicorn handles SIGTERM: stop accepting, finish in-flight requests, run the lifespan shutdown.
STOPSIGNAL SIGTERM
CMD ["deconv-arena", "serve"]
