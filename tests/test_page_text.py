"""What a person reads: every page, at a desktop's and a phone's width, with a vote store of 0 votes, 1 vote and a few
hundred simulated ones, read as visible text in Debian's Chromium. A page fails on a Python repr, a None, nan or inf,
a chart that fails to draw, whose axis leaves the range its measure can take or whose text is under 11 px, an interval
whose two ends are equal, a console error, or sideways scrolling of the whole page (read with every chart's
disclosure open). The first screen of each page at each width is kept under artifacts/page-text/ for a person to
look at (docs/screens/ holds the committed ones)."""

from __future__ import annotations

import re
import time

import pytest

from app.ratings.gold import GOLD
from app.store import VoteStore
from arena.variants import VARIANTS
from tests.simraters import simulated_real_answers, simulated_votes, store_vote
from tests.test_browser import ARTIFACTS, CHROMIUM, FLAGS, ROOT, _serving  # noqa: F401 (the same live server)

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
SECRET = "page-text-secret-" + "k" * 16
REPRS = ("object at 0x", "<built-in", "<bound", "<function", "<generator", "Traceback")
WORDS = re.compile(r"(?<![\w-])(None|nan|NaN|inf|-inf|Infinity)(?![\w-])")
NUMBER = r"[-−]?\d[\d,]*(?:\.\d+)?"
BRACKETED = re.compile(rf"\[\s*({NUMBER})\s*[,–]\s*({NUMBER})\s*\]")
SPELLED = re.compile(rf"interval[^\n\d]{{0,30}}({NUMBER})\s*(?:–|to)\s*({NUMBER})")


def problems(text: str) -> list[str]:
    """What a reader must never see in a page's visible text."""
    found = [f"Python repr {r!r}" for r in REPRS if r in text]
    found += [f"{m.group(1)!r} in {text[max(0, m.start() - 60) : m.end() + 20]!r}" for m in WORDS.finditer(text)]
    for pattern in (BRACKETED, SPELLED):
        for m in pattern.finditer(text):
            if m.group(1) == m.group(2):
                found.append(f"an interval with equal ends: {text[max(0, m.start() - 60) : m.end()]!r}")
    return found


def test_the_text_rules_catch_what_they_are_for():
    """The reader's rules on known text, so the browser test below cannot pass by matching nothing."""
    assert problems("0 votes on <built-in method items of dict object at 0x7fa2> seeds")
    assert problems("rating None") and problems("ρ = nan") and problems("up to inf")
    assert problems("95 % interval 1095.4 – 1095.4") and problems("share 100 % [100, 100]")
    assert not problems("95 % interval 1095.4 – 1101.0; share 60 % [45, 75]; not settled; Nonetheless; infinite")


def _sign(rid: str) -> str:
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(SECRET, salt="rater").dumps(rid)


def _pages(base: str) -> list[str]:
    per_family = {}
    for n, v in VARIANTS.items():  # a model page of each family, the conditional ones included
        per_family.setdefault(v.family, n)
    return ["/", *(f"/models/{n}" for n in per_family.values()), "/rate", "/results", "/about"]


def _wait_for_charts(page, shown_only: bool = False, timeout: float = 90) -> None:
    """Until every chart (only those with a width: `shown_only`) is drawn or has failed; fails after `timeout` s."""
    skip = "f.offsetWidth === 0 || " if shown_only else ""
    waiting = f"""() => [...document.querySelectorAll('figure.chart')]
        .filter(f => !({skip}f.classList.contains('drawn') || f.dataset.error)).map(f => f.dataset.name)"""
    deadline = time.monotonic() + timeout
    while left := page.evaluate(waiting):
        assert time.monotonic() < deadline, f"charts not drawn within {timeout:.0f} s: {left}"
        page.wait_for_timeout(200)


def _draw_every_chart(page) -> list[str]:
    """Open every disclosure that holds a chart, wait until each chart is drawn (or has failed), and say what failed."""
    page.evaluate(
        """() => document.querySelectorAll('details').forEach(d => {
            if (d.querySelector('figure.chart')) d.open = true;
        })"""
    )
    _wait_for_charts(page)
    return page.evaluate(
        """() => [...document.querySelectorAll('figure.chart[data-error]')]
            .map(f => `chart ${f.dataset.name}: ${f.dataset.error}`)"""
    )


def _axes_outside_their_measure(page) -> list[str]:
    """A drawn chart writes the range its measure's axis draws (data-axis-min/max) beside the range the measure can
    take (data-measure-min/max); an axis outside it shows impossible values."""
    return page.evaluate(
        """() => [...document.querySelectorAll('figure.chart[data-measure-min], figure.chart[data-measure-max]')]
            .flatMap(f => {
            const d = f.dataset, out = [];
            if (d.axisMin === undefined) return [`${d.name}: drawn without its axis range`];
            if (d.measureMin !== undefined && Number(d.axisMin) < Number(d.measureMin))
                out.push(`${d.name}: axis from ${d.axisMin} below ${d.measureMin}`);
            if (d.measureMax !== undefined && Number(d.axisMax) > Number(d.measureMax))
                out.push(`${d.name}: axis to ${d.axisMax} above ${d.measureMax}`);
            return out;
        })"""
    )


SMALLEST_TEXT = 11  # px: the least a chart's ticks, labels and legends may be drawn at


def _small_chart_text(page) -> list[str]:
    """Chart text drawn smaller than SMALLEST_TEXT on the screen (SVG text scales with its drawing)."""
    return page.evaluate(
        f"""() => [...document.querySelectorAll('figure.chart svg text')]
            .filter(t => t.textContent.trim()).flatMap(t => {{
            const px = t.getBoundingClientRect().height;
            const what = `chart text ${{JSON.stringify(t.textContent)}} is ${{px.toFixed(1)}} px high`;
            return px > 0 && px < {SMALLEST_TEXT} ? [what] : [];
        }}).slice(0, 5)"""
    )


def _complaint(message) -> bool:
    """A console error, or a warning Vega logs about a chart (an empty field, a bad scale)."""
    return message.type == "error" or (message.type == "warning" and message.text.startswith("WARN"))


def _read(browser, base: str, path: str, width: str, cookie: str | None, shot: str) -> list[str]:
    context = browser.new_context(viewport=WIDTHS[width])
    if cookie:
        context.add_cookies([{"name": "arena_rater", "value": cookie, "url": base}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if _complaint(m) else None)
    response = page.goto(base + path, wait_until="networkidle")
    found = [f"HTTP {response.status}"] if response.status >= 400 else []
    _wait_for_charts(page, shown_only=True)
    out = ARTIFACTS / "page-text"
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{shot}-{width}.png"))
    found += _draw_every_chart(page) + _axes_outside_their_measure(page) + _small_chart_text(page)
    text = page.inner_text("body")
    found += problems(text) + errors
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        found.append(f"the page scrolls sideways by {overflow} px")
    context.close()
    return [f"{path} at {width} ({shot}): {f}" for f in found]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("page-text-db") / "arena.db"
    with _serving(ROOT / "models_store", db, secret_key=SECRET) as base:
        yield base, VoteStore(f"sqlite:///{db}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _read_everything(browser, base: str, store: VoteStore, label: str) -> list[str]:
    found = []
    rater = store.new_rater(f"reader-{label}")
    for width in WIDTHS:
        for path in _pages(base):
            shot = f"{label}-{path.strip('/').replace('/', '-') or 'compare'}"
            found += _read(browser, base, path, width, None, shot)
    # a task of each kind, as a rater sees it (the pending task is what /rate shows)
    for kind, models in (
        ("pair", ["gan_upsample", "gan_transpose"]),
        ("four", ["vae_transpose", "vae_upsample", "vae_bilinear", "vae_subpixel"]),
        ("gold", list(GOLD)),
        ("pair", sorted(n for n, v in VARIANTS.items() if v.family == "cgan")),
    ):
        rid = store.new_rater(f"{kind}-{label}")
        store.issue(rid, kind, models, 1234, 9, 3600)
        for width in WIDTHS:
            found += _read(browser, base, "/rate", width, _sign(rid), f"{label}-task-{kind}-{models[0]}")
    del rater
    return found


def test_every_page_reads_clean_at_both_widths_with_0_1_and_hundreds_of_votes(served, browser):
    base, store = served
    found = _read_everything(browser, base, store, "0-votes")
    rid = store.new_rater("one")
    store_vote(store, rid, "pair", ["gan_upsample", "gan_transpose"], 7, "A")
    simulated_real_answers(store, raters=1, each=1)  # one "real or generated?" answer: the section says what it needs
    found += _read_everything(browser, base, store, "1-vote")
    simulated_votes(store, raters=30, each=12)
    simulated_real_answers(store, raters=30, each=40)
    assert len(store.votes()) >= 300
    found += _read_everything(browser, base, store, "hundreds")
    assert not found, "\n".join(found)
