"""The layers, checked by walking every import (those inside functions too): the shared layer `arena` imports
neither the trainer nor the service nor their frameworks (no Keras, no plotting: facts and statistics only);
`training` and the service `app` import only `arena` and themselves; the command line `deconv_arena` sits above
both; and no module imports itself back through others. The generators' own Keras layer lives in
training/families/layers.py, and every shipped .keras file that uses it loads with that module alone."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("arena", "training", "app", "deconv_arena")
MAY_IMPORT = {
    "arena": {"arena"},
    "training": {"arena", "training"},
    "app": {"arena", "app"},
    "deconv_arena": set(PACKAGES),
}
FORBIDDEN_LIBRARIES = {
    "arena": {
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "tensorflow",
        "jax",
        "keras",
        "matplotlib",
    },
    "training": {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic"},
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic's scripts, run by Alembic, not imported
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module named by an import statement anywhere in the file: project modules resolved to the most specific
    known module, libraries by their top-level name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            found.add(name if name in known else name.split(".")[0])
    return found


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    mods = modules(root)
    return {m: imports_of(p, set(mods)) for m, p in mods.items()}


def violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, deps in g.items():
        layer = module.split(".")[0]
        for dep in deps:
            top = dep.split(".")[0]
            if top in PACKAGES and top not in MAY_IMPORT[layer]:
                bad.append(f"{module} imports {dep} ({layer} may import only {', '.join(sorted(MAY_IMPORT[layer]))})")
            if top in FORBIDDEN_LIBRARIES.get(layer, ()):
                bad.append(f"{module} imports the library {top}")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), a package's __init__ aside."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g or w == v:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_import_runs_down_the_layers():
    assert violations(graph()) == []


def test_the_shared_layer_imports_no_framework_anywhere():
    """Not at module top nor inside a function: the service runs ONNX and must not need Keras to import arena/."""
    g = graph()
    found = {m: sorted(deps & FORBIDDEN_LIBRARIES["arena"]) for m, deps in g.items() if m.split(".")[0] == "arena"}
    assert {m: libs for m, libs in found.items() if libs} == {}
    assert {"keras", "matplotlib", "fastapi", "starlette", "sqlalchemy", "tensorflow", "jax"} <= FORBIDDEN_LIBRARIES[
        "arena"
    ]


def test_no_module_imports_itself_back():
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"arena/a.py": "def f():\n    from training import b\n", "training/b.py": ""}, "arena.a imports training.b"),
        ({"app/a.py": "import training.b\n", "training/b.py": ""}, "app.a imports training.b"),
        ({"training/a.py": "from app.b import x\n", "app/b.py": "x = 1\n"}, "training.a imports app.b"),
        (
            {"training/a.py": "from deconv_arena import cli\n", "deconv_arena/cli.py": ""},
            "training.a imports deconv_arena.cli",
        ),
        ({"arena/a.py": "import fastapi\n"}, "arena.a imports the library fastapi"),
        ({"arena/a.py": "def f():\n    import keras\n"}, "arena.a imports the library keras"),
        ({"arena/a.py": "def f():\n    from keras import ops\n"}, "arena.a imports the library keras"),
        ({"arena/a.py": "def f():\n    import matplotlib.pyplot as plt\n"}, "arena.a imports the library matplotlib"),
    ],
)
def test_the_checker_catches_an_arrow_the_wrong_way(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
    assert any(v.startswith(expected) for v in violations(graph(tmp_path)))


def test_the_checker_catches_a_cycle_hidden_in_a_function(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "a.py").write_text("from training.b import g\n")
    (tmp_path / "training" / "b.py").write_text("def g():\n    from training.a import f\n")
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
    assert cycles(graph(tmp_path)) == [["training.a", "training.b"]]


def _uses_depth_to_space(keras_file: Path) -> list[dict]:
    """The DepthToSpace layer configs a .keras file's config.json holds."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DepthToSpace":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(zipfile.ZipFile(keras_file).read("config.json")))
    return found


SUBPIXEL_FILES = sorted(f for f in (ROOT / "models_store").rglob("generator.keras") if _uses_depth_to_space(f))


def test_shipped_files_name_the_layer_by_its_registered_name():
    """Keras finds a custom layer by its registered name, "deconv_arena>DepthToSpace"; the module path a file records
    (one that no longer exists, for the shipped ones) is not what loading goes by."""
    assert SUBPIXEL_FILES, "no shipped generator uses DepthToSpace"
    for f in SUBPIXEL_FILES:
        assert {c["registered_name"] for c in _uses_depth_to_space(f)} == {"deconv_arena>DepthToSpace"}, f


@pytest.mark.slow
def test_each_shipped_subpixel_generator_loads_after_importing_only_training_layers():
    """In a fresh interpreter: plain Keras plus training.families.layers, no other project module, loads every shipped
    file with the layer and runs it on one latent."""
    script = f"""
import sys
import keras
import numpy as np
import training.families.layers
for path in {[str(f) for f in SUBPIXEL_FILES]!r}:
    model = keras.saving.load_model(path, compile=False)
    out = np.asarray(model(np.zeros((1,) + tuple(model.inputs[0].shape[1:]), "float32")))
    assert out.shape[1:] == (28, 28, 1), (path, out.shape)
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("arena", "app", "training", "deconv_arena"))
assert ours == ["training", "training.families", "training.families.layers"], ours
print("loaded", len({[str(f) for f in SUBPIXEL_FILES]!r}))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == f"loaded {len(SUBPIXEL_FILES)}"


def test_no_module_or_package_name_is_used_twice_in_the_product():
    """A name says what a module holds: no two product modules (or a module and a package) share one, and each
    package's opening line says what lives in it. The build file (setup.py) counts as a name in use."""
    seen: dict[str, list[str]] = {"setup": ["setup.py"]}
    for package in ("arena", "training", "app", "deconv_arena"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:  # Alembic's files: env.py and revisions, named by Alembic
                continue
            rel = path.relative_to(ROOT)
            if path.name == "__init__.py":
                doc = ast.get_docstring(ast.parse(path.read_text()))
                assert doc, f"{rel} does not say what lives in its folder"
                if rel.parent != Path(package):
                    seen.setdefault(rel.parent.name, []).append(str(rel.parent))
                continue
            seen.setdefault(path.stem, []).append(str(rel))
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert twice == {}, twice


def test_training_is_in_rooms():
    """training/ holds its rooms only, each a package; no module lies loose at its top."""
    loose = sorted(p.name for p in (ROOT / "training").glob("*.py") if p.name != "__init__.py")
    rooms = sorted(p.name for p in (ROOT / "training").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert loose == [] and rooms == ["evaluation", "families", "interchange", "loop", "sweeps"], (loose, rooms)
