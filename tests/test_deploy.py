"""What can be checked of the container setup without a Docker engine."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.conftest import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_compose_parses_and_serves_the_app_port():
    c = compose()
    web = c["services"]["web"]
    assert web["ports"] == ["${ARENA_WEB_PORTS:-8000}:8000"]
    assert web["environment"]["ARENA_PORT"] == "8000" and "EXPOSE 8000" in dockerfile()
    assert any(v.startswith("votes:") for v in web["volumes"]) and "votes" in c["volumes"]
    assert "./models_store:/app/models_store:ro" in web["volumes"]
    assert c["services"]["train"]["profiles"] == ["train"] and "postgres" in c["services"]["postgres"]["profiles"]
    assert "healthcheck" in c["services"]["postgres"]
    pg_web = c["services"]["web-postgres"]
    assert pg_web["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (
        pg_web["environment"]["ARENA_DATABASE_URL"].startswith("postgresql+psycopg://")
        and "@postgres:5432/" in pg_web["environment"]["ARENA_DATABASE_URL"]
    )


def test_compose_names_only_files_and_commands_that_exist():
    from deconv_arena.cli import build_parser

    c = compose()
    for service in c["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists() or source == "./runs", source
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file()
    train = c["services"]["train"]
    build_parser().parse_args(train["entrypoint"][1:] + train["command"])  # exits on an unknown flag


def test_dockerfile_install_and_start_are_the_readmes():
    d, readme, makefile = dockerfile(), (ROOT / "README.md").read_text(), (ROOT / "Makefile").read_text()
    assert (
        re.search(r'^RUN pip install "?\.(\[postgres\])?"?$', d, re.M)
        and "$(PIP) install -e ." in makefile
        and "make run" in readme
    )
    cmd = re.search(r"^CMD \[(.*)\]$", d, re.M).group(1)
    assert shlex.split(cmd.replace(",", " ")) == ["deconv-arena", "serve"]
    assert "$(BIN)/deconv-arena serve" in makefile
    assert re.search(r"^USER (?!root)\w+", d, re.M) and "HEALTHCHECK" in d and "/readyz" in d and "--start-period" in d
    assert "STOPSIGNAL SIGTERM" in d and d.count("FROM ") == 2
    for path in re.findall(r"^COPY (?!--from)(\S+)", d, re.M):
        assert (ROOT / path).exists(), path


def test_ci_runs_the_readme_test_command():
    ci, readme = (ROOT / ".ci" / "run").read_text(), (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme
    assert (
        'missing="$missing chromium"' in ci
        and 'missing="$missing nginx-light"' in ci
        and "apt-get install -y -q $missing" in ci
    )
    assert "ARENA_TEST_REQUIRE_CLUSTER=1" in ci and "export ARENA_TEST_REQUIRE=all" in ci  # CI skips nothing it needs


def test_scale_profile_is_nginx_over_web_replicas_on_postgres():
    c = compose()
    web, nginx, pg = c["services"]["web"], c["services"]["nginx"], c["services"]["postgres"]
    assert nginx["profiles"] == ["scale"] and "scale" in pg["profiles"]
    assert "./deploy/nginx/arena.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert nginx["depends_on"]["web"]["condition"] == "service_healthy" and "nginx-health" in " ".join(
        nginx["healthcheck"]["test"]
    )
    site = (ROOT / "deploy" / "nginx" / "arena.conf").read_text()
    assert "server web:8000" in site and "location = /nginx-health" in site
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "scale.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert (
        env["ARENA_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["ARENA_DATABASE_URL"]
    )
    low, high = map(int, env["ARENA_WEB_PORTS"].split("-"))
    assert high - low + 1 >= 3 and web["ports"] == ["${ARENA_WEB_PORTS:-8000}:8000"]
    assert "ARENA_SECRET_KEY" not in env  # the secret comes from the shell, never from a committed file
    assert web["environment"]["ARENA_SECRET_KEY"] == "${ARENA_SECRET_KEY:-}"


def test_dockerignore_keeps_the_build_context_small():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "runs", "artifacts"} <= ignored
    copied = set(re.findall(r"^COPY (?!--from)(\S+)", dockerfile(), re.M)) - {"pyproject.toml", "README.md"}
    assert not copied & ignored, copied & ignored
