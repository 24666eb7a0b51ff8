"""Benches that cannot rot: every name a bench/ script imports from the project (at its top or inside a function)
still exists where it imports it from, every script imports, and every script with a command line parses its own
--help. The benches' figures themselves come from running them (docs/benchmarks.md); here only that they can run."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("app", "arena", "training", "deconv_arena", "bench")
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if p.name != "__init__.py")
# The peers' apps need the bench extra (LitServe, Ray); without it they are compiled and their project imports are
# checked by name.
NEEDS_EXTRA = {"litserve_app.py": "litserve", "ray_app.py": "ray.serve"}  # CI installs ray's core, not Serve


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def project_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every `from <project module or sibling script> import <name>` anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in PROJECT or (path.parent / f"{node.module}.py").is_file():
                found += [(node.lineno, node.module, a.name) for a in node.names]
    return found


def top_level_names(path: Path) -> set[str]:
    """What a sibling script defines or imports at its top level."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def missing_names(path: Path) -> list[str]:
    out = []
    for line, module, name in project_imports(path):
        sibling = path.parent / f"{module}.py"
        if sibling.is_file():  # a script beside it (bench/common.py), imported as the scripts run: from bench/
            if name not in top_level_names(sibling):
                out.append(f"{path.name}:{line}: {module} has no {name}")
            continue
        try:
            held = importlib.import_module(module)
        except ImportError as e:
            out.append(f"{path.name}:{line}: module {module}: {e}")
            continue
        if not hasattr(held, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule imported by name
            except ImportError:
                out.append(f"{path.name}:{line}: {module} has no {name}")
    return out


def test_the_check_finds_a_name_that_moved(tmp_path):
    rotten = tmp_path / "rotten.py"
    rotten.write_text("def main():\n    from training.sweeps.stages import no_such_name\n")
    assert missing_names(rotten) == ["rotten.py:2: training.sweeps.stages has no no_such_name"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_project_name_a_bench_imports_exists(script):
    assert not missing_names(script)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_bench_imports_and_parses_its_command_line(script):
    source = script.read_text()
    extra = NEEDS_EXTRA.get(script.name)
    if extra and not _importable(extra):  # without the bench extra: it compiles (its project names: above)
        compile(source, str(script), "exec")
        return
    has_cli = "argparse" in source and "__main__" in source
    # as the scripts run (python bench/x.py: bench/ first on the path); a script without a command line is imported
    command = (
        [sys.executable, str(script), "--help"]
        if has_cli
        else [
            sys.executable,
            "-c",
            f"import runpy, sys; sys.path.insert(0, {str(script.parent)!r}); "
            f"runpy.run_path({str(script)!r}, run_name='bench_import_check')",
        ]
    )
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    if has_cli:
        assert "usage:" in run.stdout, run.stdout[-500:]


@pytest.mark.slow  # a tiny sweep on the local engine and on a two-CPU local Ray cluster (about a minute)
def test_the_ray_sweep_bench_runs_its_smoke_size(tmp_path):
    """The README's Ray figure comes from this bench: it must run end to end, here at one seed per variant."""
    out = tmp_path / "ray.json"
    run = subprocess.run(
        [sys.executable, "bench/sweep.py", "ray", "--seeds", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [r for r in (json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")) if "engine" in r]
    assert [r["engine"] for r in rows] == ["local", "ray"] and all(r["done"] == r["runs"] == 2 for r in rows)
