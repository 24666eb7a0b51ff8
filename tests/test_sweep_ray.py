"""The sweep on a two-node Ray cluster on localhost: `ray start --head`, a second node joining it with its own
resources, a tiny sweep (2 VAE variants × 2 seeds, smoke profile) spread over both nodes, and one worker process
killed (SIGKILL) after its task's first epoch: Ray retries the task, the retry resumes from that epoch's checkpoint,
the store ends complete, and every run is installed exactly once. Bounded in time; every process the test started
is stopped by its id (the process groups of the two `ray start --block`) at the end."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
HOOKED = f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'hooks'}"  # the product, and the hold's sitecustomize


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sids: set[int]) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sids and fields[0] != "Z":  # the session id (a zombie is already dead)
            out.append(int(stat.parent.name))
    return out


@pytest.fixture
def two_nodes(tmp_path):
    """A two-node cluster whose processes import tests/hooks/sitecustomize.py, which holds the first training task
    to finish its first epoch (the product has no such switch); yields the address and the hold folder."""
    require(
        "ray",
        None if importlib.util.find_spec("ray") and RAY.is_file() else "Ray is not installed (pip install '.[ray]')",
    )
    port, temp = _free_port(), tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are capped
    # RAY_AUTH_MODE=disabled: a ~/.ray/auth_token left by an earlier local Ray turns token auth on for `ray start`,
    # which the probe and the sweep would then have to present; this cluster is on localhost and lives for one test.
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONPATH": HOOKED}
    env["ARENA_SWEEP_TEST_HOLD"] = str(hold)
    common = ["--block", "--num-cpus=1", "--disable-usage-stats"]
    procs = [
        subprocess.Popen(
            [
                str(RAY),
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                '--resources={"head_node": 1}',
                *common,
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    address = f"127.0.0.1:{port}"
    try:
        _wait_nodes(address, 1, env)
        procs.append(
            subprocess.Popen(
                [str(RAY), "start", f"--address={address}", '--resources={"second_node": 1}', *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_nodes(address, 2, env)
        yield address, hold
    finally:
        sids = {p.pid for p in procs}  # each `ray start` leads its own session: the head's or the node's processes
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            for pid in _session_pids(sids):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:  # it ended between the listing and the signal
                    pass
            deadline = time.monotonic() + grace
            while _session_pids(sids) and time.monotonic() < deadline:
                time.sleep(0.2)
        for p in procs:
            p.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)
        assert not _session_pids(sids)


def _wait_nodes(address: str, n: int, env: dict, timeout: float = 90) -> None:
    probe = (
        f"import ray; ray.init(address='{address}', logging_level='ERROR'); print(sum(x['Alive'] for x in ray.nodes()))"
    )
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            last = "the probe timed out"
            continue
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        last = (done.stdout + done.stderr)[-1500:]
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not reach {n} nodes in {timeout} s; last probe: {last}")


def test_sweep_spreads_over_two_ray_nodes_and_survives_a_killed_worker(two_nodes, tiny_data, tiny_npz, tmp_path):
    from training.evaluation.classifier import train_evaluator

    address, hold = two_nodes
    store, work = tmp_path / "store", tmp_path / "runs"
    train_evaluator(tiny_data, store, epochs=1, log=lambda _: None)  # the curves and the evaluation need one
    broken = work / "_replicates" / "smoke-seed2" / "vae_transpose"  # a corrupt checkpoint: that job fails, alone
    broken.mkdir(parents=True)
    (broken / "checkpoint.npz").write_bytes(b"not a checkpoint")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env["RAY_AUTH_MODE"] = "disabled"
    argv = [
        sys.executable,
        "-m",
        "deconv_arena.cli",
        "sweep",
        "--engine",
        "ray",
        "--address",
        address,
        "--variant",
        "vae_upsample",
        "--variant",
        "vae_transpose",
        "--seeds",
        "1-2",
        "--profile",
        "smoke",
        "--store",
        str(store),
        "--workdir",
        str(work),
        "--data",
        str(tiny_npz),
    ]
    sweep = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    killed, other = None, None
    try:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and sweep.poll() is None:
            held = (hold / "worker.pid").read_text().split() if (hold / "worker.pid").is_file() else []
            if len(held) == 3:  # the held task owns its node's only CPU: the next to reach epoch 1 is elsewhere
                marks = {p.name[len("epoch1-") :]: p.read_text().split() for p in hold.glob("epoch1-*")}
                others = [(slug, m) for slug, m in marks.items() if slug != held[0] and len(m) == 2]
                if others:
                    killed, other = (held[0], int(held[1]), held[2]), (others[0][0], others[0][1][1])
                    os.kill(killed[1], signal.SIGKILL)
            time.sleep(0.2)
        out, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, out[-4000:]  # one job failed
    assert killed is not None, "no two training tasks reached their first epoch's checkpoint while one was held"
    assert "sweep: 3 done, 1 failed" in out and "failed: vae_transpose smoke seed 2: train: TrainingError" in out
    labels = [f"{v} smoke seed {s}" for v in ("vae_upsample", "vae_transpose") for s in (1, 2)]
    labels.remove("vae_transpose smoke seed 2")
    found = re.findall(r"^trained (.+) on node (\w+)", out, re.M)
    trained = dict(found)
    assert sorted(t[0] for t in found) == sorted(labels)  # each run came back and was installed once
    assert other[1] != killed[2], (killed, other)  # both nodes trained: the held one and the one beside it
    variant, _, seed = other[0].rpartition("-smoke-seed")
    assert trained[f"{variant} smoke seed {seed}"] == other[1][:8], (trained, other)
    for label in labels:
        variant, _, _, seed = label.split()
        run = store / "_replicates" / f"smoke-seed{seed}" / variant
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["epochs_done"] == 2 and (run / "metrics.json").is_file()
        slug = f"{variant}-smoke-seed{seed}"
        assert manifest["resumed_after_epochs"] == ([1] if slug == killed[0] else []), (label, killed)
    models = json.loads((store / "replicates.json").read_text())["models"]
    assert (
        sorted(models["vae_upsample"]["smoke"]["seeds"]) == [1, 2] and models["vae_upsample"]["smoke"]["failed"] == {}
    )
    entry = models["vae_transpose"]["smoke"]
    assert entry["seeds"] == [1] and list(entry["failed"]) == ["2"] and "corrupt" in entry["failed"]["2"], entry
    assert not [p for p in store.rglob("*") if ".staging-" in p.name]
