"""The README and docs/ cannot drift from the code: the configuration table is `Settings`' own, every ARENA_ variable
they name exists, the README stays short, and its links (and the docs' links to each other) lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.settings import SETTINGS_BEGIN, SETTINGS_END, Settings, configuration_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", markdown.read_text(), flags=re.M | re.S)
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _relative_links(markdown: Path) -> list[str]:
    return [t for t in LINK.findall(markdown.read_text()) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_configuration_doc_is_generated_from_settings():
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split(SETTINGS_BEGIN, 1)[1].split(SETTINGS_END, 1)[0].strip()
    assert block == configuration_markdown(), "run `python -m app.core.settings` after changing Settings"
    for name in Settings.model_fields:
        assert f"`ARENA_{name.upper()}`" in block


def test_every_arena_variable_in_the_docs_exists():
    from training.evaluation import measures_jax as metrics_jax
    from training.sweeps import stages as sweep

    known = {f"ARENA_{name.upper()}" for name in Settings.model_fields} | {metrics_jax.SETTING, sweep.THREADS}
    for path in [ROOT / "README.md", *DOCS]:
        named = set(re.findall(r"\bARENA_[A-Z][A-Z0-9_]*\b", path.read_text()))
        unknown = {v for v in named - known if not v.startswith("ARENA_TEST_")}
        assert not unknown, f"{path.relative_to(ROOT)} names settings that do not exist: {sorted(unknown)}"


def test_readme_is_short_and_its_links_resolve():
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 200
    first_screen = "\n".join(readme.read_text().splitlines()[:40])  # what a newcomer sees first: the two commands
    assert "make run" in first_screen and "make test" in first_screen and "findings-begin" not in first_screen
    links = _relative_links(readme)
    assert any(link.startswith("docs/") and link.split("#")[0].endswith(".md") for link in links)
    for path in [readme, *DOCS]:
        for link in _relative_links(path):
            target, _, anchor = link.partition("#")
            resolved = (path.parent / target).resolve()
            assert resolved.exists(), f"{path.relative_to(ROOT)} links to {link}, which does not exist"
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved), f"{path.relative_to(ROOT)} links to {link}: no such heading"


def test_the_first_screen_of_every_page_is_in_the_docs_at_both_widths():
    """docs/screens/ holds what a person sees first on each page the page test reads (tests/test_page_text.py writes
    them, with a few hundred simulated votes), at 1366 and 390 px, each under 200 KB."""
    screens = ROOT / "docs" / "screens"
    names = {p.name for p in screens.glob("*.png")}
    for page in ("compare", "rate", "results", "about", "task-pair-gan_upsample", "task-four-vae_transpose"):
        for width in ("desktop", "phone"):
            assert f"{page}-{width}.png" in names, (page, width)
    assert any(n.startswith("models-") for n in names)
    for p in screens.glob("*.png"):
        assert p.stat().st_size <= 200 * 1024, (p.name, p.stat().st_size)
