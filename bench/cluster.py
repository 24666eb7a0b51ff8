"""Several `deconv-arena serve` instances on one fresh PostgreSQL database behind nginx, all on 127.0.0.1.

Used by tests/test_scale.py and bench/load.py --instances N. nginx runs deploy/nginx/arena.conf with its
upstream lines pointed at the local instances; PostgreSQL is a server the caller already runs (an admin URL
whose role may create databases, as .ci/postgres.sh sets up).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
NGINX_SITE = ROOT / "deploy" / "nginx" / "arena.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_tools(admin_url: str | None) -> str | None:
    """Why a cluster cannot run here, or None."""
    if not admin_url:
        return "no PostgreSQL server: set ARENA_TEST_POSTGRES_URL (.ci/postgres.sh starts one and prints it)"
    if shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install nginx-light; .ci/run does)"
    return None


class FreshDatabase:
    """An empty database created beside the admin URL's, dropped on close."""

    def __init__(self, admin_url: str):
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"arena_scale_{secrets.token_hex(4)}"
        with self.admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def scalar(self, sql: str, **params):
        engine = create_engine(self.url)
        try:
            with engine.connect() as c:
                return c.execute(text(sql), params).scalar()
        finally:
            engine.dispose()

    def rows(self, sql: str) -> list[tuple]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as c:
                return [tuple(r) for r in c.execute(text(sql)).all()]
        finally:
            engine.dispose()

    def close(self) -> None:
        with self.admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


def nginx_config(workdir: Path, listen_port: int, upstream_ports: list[int]) -> Path:
    """The repository's site config with local upstreams, inside a main config an unprivileged nginx can run."""
    site = NGINX_SITE.read_text()
    head, rest = site.split("# upstreams-begin", 1)
    _, tail = rest.split("# upstreams-end", 1)
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in upstream_ports)
    site = head + servers + tail
    assert "listen 80;" in site
    # Which instance answered, for tests/test_scale.py: nginx names the upstream(s) it tried in X-Upstream.
    site = site.replace(
        "listen 80;", f"listen 127.0.0.1:{listen_port};\n    add_header X-Upstream $upstream_addr always;"
    )
    (workdir / "arena.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would otherwise drop to nobody
    temps = "".join(f"    {k}_temp_path {workdir / k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temps}    include {workdir / 'arena.conf'};\n}}\n"
    )
    path = workdir / "nginx.conf"
    path.write_text(main)
    return path


class Cluster:
    """N instances started at the same moment on one fresh database, nginx in front; a context manager."""

    def __init__(
        self, store: Path, admin_url: str, workdir: Path, instances: int = 3, env: dict[str, str] | None = None
    ):
        self.store, self.admin_url, self.workdir, self.n = Path(store), admin_url, Path(workdir), instances
        self.env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "ARENA_MODELS_STORE": str(self.store),
            "ARENA_HOST": "127.0.0.1",
            "ARENA_SECRET_KEY": "scale-test-" + secrets.token_hex(16),
            "ARENA_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.ports = [free_port() for _ in range(instances)]
        self.procs: list[subprocess.Popen | None] = [None] * instances
        self.front_port = free_port()
        self.nginx: subprocess.Popen | None = None
        self.db: FreshDatabase | None = None

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{self.front_port}"

    def instance(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def __enter__(self) -> "Cluster":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = FreshDatabase(self.admin_url)
        self.env["ARENA_DATABASE_URL"] = self.db.url
        try:
            for i in range(self.n):  # all at once, on the empty database: the migration race is part of the test
                self._spawn(i)
            for i in range(self.n):
                self.wait_ready(i)
            conf = nginx_config(self.workdir, self.front_port, self.ports)
            self.nginx = subprocess.Popen(
                ["nginx", "-c", str(conf), "-p", str(self.workdir), "-e", str(self.workdir / "error.log")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            self._wait(lambda: httpx.get(f"{self.front}/nginx-health", timeout=2).status_code == 200, 30, "nginx")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _spawn(self, i: int) -> None:
        log = open(self.workdir / f"instance{i}.log", "ab")
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "deconv_arena.cli", "serve", "--port", str(self.ports[i])],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def readyz(self, i: int) -> dict:
        return httpx.get(f"{self.instance(i)}/readyz", timeout=5).json()

    def wait_ready(self, i: int, timeout: float = 240) -> float:
        """Seconds until instance i has its models warm and rating on."""

        def ok() -> bool:
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"instance {i} exited with {proc.returncode}: {self.log(i)[-1500:]}")
            r = httpx.get(f"{self.instance(i)}/readyz", timeout=2)
            return r.status_code == 200 and r.json().get("rating", {}).get("status") == "ready"

        return self._wait(ok, timeout, f"instance {i}")

    def log(self, i: int) -> str:
        return (self.workdir / f"instance{i}.log").read_text(errors="replace")

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.procs[i] = None

    def restart(self, i: int) -> None:
        self._spawn(i)

    @staticmethod
    def _wait(ok, timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if ok():
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{what} did not become ready within {timeout:.0f} s")

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        if self.nginx is not None:
            self.nginx.terminate()
            self.nginx.wait(timeout=30)
        if self.db is not None:
            self.db.close()
