"""Build the Dockerfile's image with Podman and run it for real: `make image-check`.

No Docker engine runs on our machines and Podman cannot start containers there (setting rlimits is not
permitted), so the image is built with `podman build --isolation=chroot`, and then its own filesystem, user,
environment, working directory and command are run in a private mount namespace (`podman image mount`,
`unshare -m`, `chroot --userspec`), on the host's network. Checks, each timed:

- ready (/readyz 200) within the HEALTHCHECK start period;
- POST /generate gives a PNG, and a rater can start, take a task and vote;
- the HEALTHCHECK command, run inside the image, exits 0;
- SIGTERM while requests are in flight: they all complete, and the process exits 0 within compose's grace period.

Installs Podman and debootstrap from Debian's packages when they are missing. Prints one JSON object with the
timings; exits 1 if a check fails. Sends traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TAG = "deconv-arena:image-check"
GRACE_S = 30  # docker-compose.yml stop_grace_period


def hold_in_flight(host: str, port: int, count: int) -> tuple[list[socket.socket], bool]:
    """`count` POST /generate requests of 64 images, each sent whole on its own socket; returned once the service has
    taken up every one (in flight, or already answered, by its own metrics) with at least one still in flight, and
    whether that happened within 10 s."""

    def taken_up() -> tuple[float, float]:
        text = httpx.get(f"http://{host}:{port}/metrics").text
        gauge = re.search(r"^arena_in_flight_requests (\S+)$", text, re.M)
        answered = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("arena_requests_total{")
            and 'route="/generate"' in line
            and 'model="gan_transpose"' in line
        ]
        # the gauge counts the asking /metrics request too
        return (float(gauge.group(1)) - 1 if gauge else 0.0), sum(answered)

    _, before = taken_up()
    held = []
    for k in range(count):
        s = socket.create_connection((host, port), timeout=60)
        s.sendall(
            f"POST /generate?model=gan_transpose&seed={1000 + k}&n=64 HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        held.append(s)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        in_flight, answered = taken_up()
        if in_flight >= 1 and in_flight + answered - before >= count:
            return held, True
        time.sleep(0.005)
    return held, False


def read_status(s: socket.socket) -> int:
    """The HTTP status the server answered on `s` (read to its close), or -1 if it closed without one."""
    chunks = []
    try:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        s.close()
    head = b"".join(chunks).split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[1].isdigit() else -1


def sh(*cmd: str, **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def healthcheck(config: dict) -> tuple[list[str], float]:
    """The image's own HEALTHCHECK (as built from the Dockerfile): command and start period in seconds."""
    hc = config.get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        raise SystemExit(f"the image carries no HEALTHCHECK ({hc}); was it built with --format docker?")
    argv = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    return argv, hc.get("StartPeriod", 0) / 1e9


def image_config() -> dict:
    """The image's run configuration; Podman reports the HEALTHCHECK beside it rather than inside it."""
    image = json.loads(sh("podman", "image", "inspect", TAG))[0]
    return {**image["Config"], "Healthcheck": image.get("Healthcheck") or image["Config"].get("Healthcheck")}


def chroot_cmd(mnt: str, data: Path, config: dict, argv: list[str]) -> list[str]:
    """argv run as the image would run it: its root, user, environment and working directory."""
    env = ["env", "-i", *config.get("Env", [])]
    script = (
        f"mount -t proc proc {mnt}/proc && mount --rbind /dev {mnt}/dev && mount -t tmpfs tmpfs {mnt}/tmp && "
        f"mount --bind {data} {mnt}/data && mount --bind /etc/resolv.conf {mnt}/etc/resolv.conf && "
        f"exec chroot --userspec={config.get('User') or 'root'} {mnt} "
        f"/bin/sh -c {shlex.quote('cd ' + (config.get('WorkingDir') or '/') + ' && exec ' + shlex.join(env + argv))}"
    )
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script]


PAGES = ("/", "/about", "/models/gan_upsample", "/rate", "/results", "/docs")


def smoke(c: httpx.Client) -> tuple[dict, list[str]]:
    """What a newcomer does first, against a running service: the pages, a grid, a vote. Returns (figures, failures);
    shared by the image check and the installed-wheel test (tests/test_packaging.py)."""
    out: dict = {"pages": {}}
    failures: list[str] = []
    for page in PAGES:
        out["pages"][page] = c.get(page).status_code
    failures += [f"GET {p}: {code}" for p, code in out["pages"].items() if code != 200]
    r = c.post("/generate", params={"model": "gan_upsample", "seed": 7, "n": 16})
    out["generate"] = r.status_code
    if r.status_code != 200 or not r.content.startswith(b"\x89PNG"):
        failures.append(f"POST /generate: {r.status_code} {r.text[:200] if r.status_code != 200 else ''}")
    c.post("/rate/start", data={"consent": "yes"})
    task = c.post("/api/rate/tasks")
    vote = (
        c.post(
            "/api/rate/votes",
            json={"task_id": task.json().get("task_id", ""), "overall": "A", "legibility": "A", "noise": "tie"},
        )
        if task.status_code == 200
        else task
    )
    out["vote"] = vote.status_code
    if vote.status_code != 201:
        failures.append(f"vote: {vote.status_code} {vote.text[:200]}")
    return out, failures


def install_tools() -> str | None:
    """Podman and debootstrap from Debian's packages when missing (as .ci/run installs what CI needs); why not, or
    None when both are there."""
    missing = [tool for tool in ("podman", "debootstrap") if shutil.which(tool) is None]
    if not missing:
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return f"{' and '.join(missing)} missing, and apt-get is not available to root here; install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            return f"`{' '.join(cmd)}` failed"
    return None


def main() -> int:
    why = install_tools()
    if why:
        print(json.dumps({"failed": why}))
        return 1
    out: dict = {}
    port_free = socket.socket()
    try:
        port_free.bind(("127.0.0.1", 8000))
    except OSError:
        print(
            json.dumps(
                {
                    "failed": (
                        "port 8000 is taken; the image's HEALTHCHECK calls 127.0.0.1:8000, so the check needs it free"
                    )
                }
            )
        )
        return 1
    finally:
        port_free.close()

    t0 = time.monotonic()
    subprocess.run([str(ROOT / "deploy" / "standin-base.sh")], check=True)
    out["base_image_s"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    # docker format: the OCI format has no HEALTHCHECK and podman would drop it
    subprocess.run(
        [
            "podman",
            "build",
            "--format",
            "docker",
            "--isolation=chroot",
            "--network=host",
            "--pull=never",
            "-t",
            TAG,
            str(ROOT),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    out["build_s"] = round(time.monotonic() - t0, 1)
    out["image_mib"] = round(int(sh("podman", "image", "inspect", "--format", "{{.Size}}", TAG)) / 2**20)

    config = image_config()
    check_cmd, start_period = healthcheck(config)
    mnt = sh("podman", "image", "mount", TAG)
    data = Path(tempfile.mkdtemp(prefix="arena-data-"))
    uid = int(sh("chroot", mnt, "id", "-u", config["User"]))
    shutil.chown(data, uid)
    failures: list[str] = []
    proc = subprocess.Popen(
        chroot_cmd(mnt, data, config, config["Cmd"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()
    try:
        base = "http://127.0.0.1:8000"
        t0 = time.monotonic()
        ready = None
        while time.monotonic() - t0 < start_period and proc.poll() is None:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    ready = time.monotonic() - t0
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        out["ready_s"] = round(ready, 1) if ready is not None else None
        if ready is None:
            failures.append(f"not ready within the HEALTHCHECK start period ({start_period:.0f} s)")
            raise RuntimeError
        out["start_period_s"] = start_period

        with httpx.Client(base_url=base, timeout=60) as c:
            figures, failed = smoke(c)
        out.update(figures)
        failures += failed
        leftovers = [
            p for p in ("app/models_store/_replicates", "app/models_store/_evaluator") if Path(mnt, p).exists()
        ]
        training_libs = sorted(
            p.name
            for p in Path(mnt, "opt/venv/lib").glob("python3*/site-packages/*")
            if p.name.split("-")[0].lower() in ("tensorflow", "keras", "tf2onnx", "jax")
        )
        out["image_holds"] = {"per_run_folders": leftovers, "training_libraries": training_libs}
        if leftovers or training_libs:
            failures.append(f"the image holds what it does not serve: {leftovers + training_libs}")

        hc = subprocess.run(chroot_cmd(mnt, data, config, check_cmd), capture_output=True, text=True, timeout=30)
        out["healthcheck_exit"] = hc.returncode
        if hc.returncode != 0:
            failures.append(f"HEALTHCHECK command exited {hc.returncode}: {hc.stderr[-300:]}")

        # Six 64-image grids sent on raw sockets, and SIGTERM only once the service has taken them all up (a fixed
        # sleep would race: the first grid's decode takes both cores, and a client still connecting is refused).
        held, all_in_flight = hold_in_flight("127.0.0.1", 8000, 6)
        out["in_flight_at_sigterm"] = all_in_flight
        if not all_in_flight:
            failures.append("the service never took up the six grids within 10 s (its /metrics)")
        results: list[int] = []
        inflight = [threading.Thread(target=lambda s=s: results.append(read_status(s))) for s in held]
        for t in inflight:
            t.start()
        t0 = time.monotonic()
        proc.terminate()  # unshare, sh, chroot and env all exec: this pid is the image's CMD itself
        for t in inflight:
            t.join(timeout=GRACE_S)
        code = proc.wait(timeout=GRACE_S)
        out["sigterm_exit_s"] = round(time.monotonic() - t0, 1)
        out["sigterm_exit_code"] = code
        out["in_flight_completed"] = f"{results.count(200)}/{len(inflight)}"
        time.sleep(0.2)  # the log reader catches up
        # uvicorn re-raises SIGTERM once it has shut down cleanly, so the status is 0 or "killed by SIGTERM" (143)
        clean = "Application shutdown complete" in "".join(log)
        out["shutdown_complete_logged"] = clean
        if code not in (0, -15) or not clean or results.count(200) != len(inflight):
            failures.append(f"SIGTERM: exit {code}, shutdown complete logged: {clean}, in-flight answers {results}")
    except RuntimeError:
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["podman", "image", "unmount", TAG], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
    out["failures"] = failures
    if failures:
        out["log_tail"] = "".join(log)[-2000:]
    print(json.dumps(out, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
