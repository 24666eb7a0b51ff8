"""deploy/gpu_tree.sh: the lean tree a device call carries (issue 38), built in a clone of this checkout's HEAD."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "deploy" / "gpu_tree.sh"
MIB = 1 << 20


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def script(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=repo, capture_output=True, text=True)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the lean-tree tests need git and a git checkout of the project")
    repo = tmp_path_factory.mktemp("gpu-tree") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "user.name", "test")
    return repo


def travelling_bytes(repo: Path) -> tuple[int, list[str]]:
    """What a device call sends without `carry`: tracked files and untracked ones git does not ignore."""
    names = git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    names = [n for n in names if n and (repo / n).is_file()]
    return sum((repo / n).stat().st_size for n in names), names


def test_the_lean_tree_fits_and_keeps_what_a_plan_run_reads(clone, tmp_path):
    head, head_tree = git(clone, "rev-parse", "HEAD").strip(), git(clone, "ls-tree", "-r", "HEAD")
    data = tmp_path / "mnist.npz"
    data.write_bytes(b"\x01" * 4096)
    entered = script(clone, "enter", "--data", str(data), "--no-wheels")
    assert entered.returncode == 0, entered.stderr
    try:
        assert git(clone, "symbolic-ref", "--short", "HEAD").strip() == "gpu-lean"
        size, names = travelling_bytes(clone)
        assert size < 40 * MIB, f"{size / MIB:.1f} MiB travel"
        assert (clone / ".carry" / "mnist.npz").read_bytes() == data.read_bytes()
        assert not any(n.startswith(".carry/") for n in names)  # only `carry` takes it along
        kept = set(names)
        for needed in (
            "studies/gan-operator-network-v1.toml",
            "models_store/_evaluator/classifier.keras",
            "models_store/_evaluator/reference.npz",
            "arena/variants.py",
            "training/sweeps/stages.py",
            "deconv_arena/cli.py",
            "pyproject.toml",
        ):
            assert needed in kept, needed
        assert not any(n.endswith((".png", ".gif")) for n in names)
        assert not any(n.startswith("models_store/_replicates/") for n in names)
        served = {n.split("/")[1] for n in head_tree.split("\n") if n.count("/") >= 2 and "models_store/" in n}
        served = {s for s in served if not s.startswith("_")}
        assert served and not any(n.split("/")[1] in served for n in names if n.startswith("models_store/"))
        assert "gpu_tree.sh: already on the lean tree" in script(clone, "enter").stderr
    finally:
        left = script(clone, "leave")
    assert left.returncode == 0, left.stderr
    assert git(clone, "rev-parse", "HEAD").strip() == head and git(clone, "ls-tree", "-r", "HEAD") == head_tree
    assert git(clone, "symbolic-ref", "--short", "HEAD").strip() == git(clone, "branch", "--show-current").strip()
    assert "gpu-lean" not in git(clone, "branch", "--list")
    assert git(clone, "status", "--porcelain") == ""  # every dropped file is back in the work tree
    assert script(clone, "leave").returncode == 2


def test_size_reports_the_lean_tree_without_touching_the_work_tree(clone):
    before = git(clone, "status", "--porcelain", "--ignored")
    out = script(clone, "size")
    assert out.returncode == 0, out.stderr
    lean = int(out.stdout.split(": ")[1].split(" bytes")[0])
    assert 0 < lean < 40 * MIB
    assert git(clone, "status", "--porcelain", "--ignored") == before and "gpu-lean" not in git(clone, "branch")


def test_enter_refuses_uncommitted_changes_and_unknown_arguments(clone, tmp_path):
    (clone / "scratch.txt").write_text("not committed")
    try:
        refused = script(clone, "enter", "--no-wheels")
        assert refused.returncode == 2 and "uncommitted changes" in refused.stderr and "scratch.txt" in refused.stderr
        assert "gpu-lean" not in git(clone, "branch")
    finally:
        (clone / "scratch.txt").unlink()
    bad = script(clone, "enter", "--dta", "x")
    assert bad.returncode == 2 and "unknown argument '--dta'" in bad.stderr and "--data PATH" in bad.stderr
    missing = script(clone, "enter", "--data", str(tmp_path / "none.npz"), "--no-wheels")
    assert missing.returncode == 2 and "none.npz: no such file" in missing.stderr
    assert "gpu-lean" not in git(clone, "branch")  # a bad --data stops before the switch
