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
from arena.readouts import HISTORY_WORDS
from arena.stats import METRIC
from arena.variants import VARIANTS
from tests.simraters import simulated_real_answers, simulated_votes, store_vote
from tests.test_browser import ARTIFACTS, CHROMIUM, FLAGS, ROOT, _serving, task_words  # noqa: F401 (the same server)

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
SECRET = "page-text-secret-" + "k" * 16
REPRS = ("object at 0x", "<built-in", "<bound", "<function", "<generator", "Traceback")
WORDS = re.compile(r"(?<![\w-])(None|nan|NaN|inf|-inf|Infinity)(?![\w-])")
NUMBER = r"[-−+]?\d[\d,]*(?:\.\d+)?"
BRACKETED = re.compile(rf"\[\s*({NUMBER})\s*[,–]\s*({NUMBER})\s*\]")
SPELLED = re.compile(rf"interval[^\n\d]{{0,30}}({NUMBER})\s*(?:–|to)\s*({NUMBER})")
COUNTED = "votes|raters|seeds|runs|comparisons|answers|models|images|tasks|samples|epochs|checks|participants"
ONE_PLURAL = re.compile(rf"(?<![\d.,])1 ({COUNTED})\b")
# the names records and code give their fields (snake_case): a reader sees them in words, never raw
FIELDS = sorted({k for k in (*HISTORY_WORDS, *METRIC) if "_" in k}, key=len, reverse=True)
FIELD = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, FIELDS)) + r")(?![\w-])")


def problems(text: str) -> list[str]:
    """What a reader must never see in a page's visible text."""
    found = [f"Python repr {r!r}" for r in REPRS if r in text]
    found += [f"Markdown markup: {text[max(0, m.start() - 40) : m.end() + 20]!r}" for m in re.finditer("`", text)]
    found += [  # one parenthesis per aside: "Fréchet distance (classifier features; lower is better)"
        f"two asides side by side: {text[max(0, m.start() - 40) : m.end() + 20]!r}"
        for m in re.finditer(r"\)[ \t]+\(", text)
    ]
    found += [f"{m.group(1)!r} in {text[max(0, m.start() - 60) : m.end() + 20]!r}" for m in WORDS.finditer(text)]
    found += [f"a plural after one: {text[max(0, m.start() - 40) : m.end()]!r}" for m in ONE_PLURAL.finditer(text)]
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
    assert problems("1 votes … not settled with 0 votes") and problems("rests on 1 seeds")
    assert problems("it runs with `deconv-arena sweep --study s.toml`.")
    assert problems("Fréchet distance (classifier features) (lower is better)")
    assert not problems("a wrapped chart label (paper)\n(quick)")
    assert not problems("Fréchet distance (classifier features; lower is better), 3 seeds (paired), 40 runs")
    assert not problems("95 % interval 1095.4 – 1101.0; share 60 % [45, 75]; not settled; Nonetheless; infinite")
    assert not problems("21 votes, 0.1 seeds, 1 vote, 11 raters")
    assert field_names("per epoch: curve_checkerboard_ratio 0.3") and field_names("frechet_last5 of gan_upsample")
    assert not field_names("Fréchet distance of gan_upsample and vae_transpose; test ELBO")


def field_names(text: str) -> list[str]:
    """Record and metric field names (curve_checkerboard_ratio, frechet_last5) shown raw outside code."""
    return [f"a raw field name: {text[max(0, m.start() - 40) : m.end() + 20]!r}" for m in FIELD.finditer(text)]


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


def _cut_chart_text(page) -> list[str]:
    """Chart text that runs past the edge of its drawing, where the reader sees it cut off (a long axis title)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('figure.chart svg')].flatMap(svg => {
            const box = svg.getBoundingClientRect();
            if (box.width === 0) return [];
            return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).flatMap(t => {
                const r = t.getBoundingClientRect();
                return r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1)
                    ? [`chart text ${JSON.stringify(t.textContent)} cut at the chart's edge`] : [];
            });
        }).slice(0, 5)"""
    )


def _complaint(message) -> bool:
    """A console error, or a warning Vega logs about a chart (an empty field, a bad scale)."""
    return message.type == "error" or (message.type == "warning" and message.text.startswith("WARN"))


OLD_GRID = 260  # px: a task's grid before issue 44; a pair's grids are now at least twice that on a desktop


def grid_sizes(page, width: str) -> list[str]:
    """A task's grids are large enough to judge artefacts: on a phone each takes the column's full width, on a
    desktop a pair's are each at least twice the old 260 px (a 4-way task's four share one row there)."""
    sizes, column = page.evaluate(
        "() => [[...document.querySelectorAll('#grids img.grid')].map(i => i.getBoundingClientRect().width),"
        " document.getElementById('grids').clientWidth]"
    )
    least = column - 1 if width == "phone" else 2 * OLD_GRID if len(sizes) == 2 else 0
    return [f"a task grid {w:.0f} px wide, under {least} px" for w in sizes if w < least]


def strip_rows_a_reader_cannot_read(page) -> list[str]:
    """Every estimate the comparison page's strip shows names, in visible text on its row, the measure it is on and
    which way is better (a phone's layout once hid that line, leaving "−17.3 [−22.1, −12.5]" to mean nothing), and
    no cell runs past the window's edge — read as the page opens and again with every comparison shown (its "more
    comparisons" link; on a phone those rows were once laid out as a wide table cut off at the edge)."""
    found = []
    for state in ("", " with every comparison shown"):
        if state:
            page.evaluate("() => { location.hash = 'strip'; }")
            page.wait_for_function("() => document.querySelector('.strip:target') !== null")
        rows = page.evaluate(
            """() => [...document.querySelectorAll('.strip-table tbody tr')].filter(r => r.offsetParent !== null)
            .map(r => [r.cells[1].innerText.trim(), r.innerText,
                       Math.max(...[...r.cells].map(c => c.getBoundingClientRect().right)) - window.innerWidth])"""
        )
        for value, row, past in rows:
            if value not in ("", "–") and not re.search(r"\S, (lower|higher|closer to real .*) is better", row):
                found.append(f"the strip's estimate {value} shows no measure and direction{state}")
            if past > 1:
                found.append(f"a strip row ({row.splitlines()[0]}) runs {past:.0f} px past the window{state}")
    return found


def cut_off_once_opened(page) -> list[str]:
    """With every disclosure open, nothing but a wide table's own rows (which scroll inside it) or a chart lies past
    the window's edge: a replicate table's caption was once as wide as its table and cut off on a phone."""
    page.evaluate("() => document.querySelectorAll('main details').forEach(d => { d.open = true; })")
    page.wait_for_timeout(300)
    past = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
        .filter(e => e.offsetParent !== null && !e.closest('tr, pre, figure.chart'))
        .map(e => [e.tagName.toLowerCase(), (e.innerText || '').trim().slice(0, 50),
                   e.getBoundingClientRect().right - window.innerWidth])
        .filter(([tag, text, over]) => over > 1 && tag !== 'table' && tag !== 'tbody' && tag !== 'thead')"""
    )
    return [
        f"<{tag}> runs {over:.0f} px past the window once every disclosure is open: {text!r}"
        for tag, text, over in past
    ]


EMPTY_SCREENS = 1.5  # /results with no votes: at most this many screens high
UNCODED_TEXT = """() => { document.querySelectorAll('code, pre, kbd, samp').forEach(e => e.remove());
    return document.body.innerText; }"""


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
    found += _cut_chart_text(page)
    text = page.inner_text("body")
    found += problems(text) + errors
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        found.append(f"the page scrolls sideways by {overflow} px")
    if path == "/":
        found += strip_rows_a_reader_cannot_read(page)
    if path == "/rate" and cookie:
        found += task_words(page) + grid_sizes(page, width)
    if path == "/results" and shot.startswith("0-votes"):  # the empty state is one short screen
        height, screen = page.evaluate("() => [document.documentElement.scrollHeight, window.innerHeight]")
        if height > EMPTY_SCREENS * screen:
            found.append(f"the empty state is {height} px high, over {EMPTY_SCREENS} screens of {screen} px")
    found += cut_off_once_opened(page)
    found += field_names(page.evaluate(UNCODED_TEXT))  # last: it takes code, pre and kbd out of the page
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


def test_the_task_words_follow_each_task_from_four_to_two_grids_and_back(served, browser):
    """The defect a fresh page cannot show: after a 4-way task the next 2-way one, drawn by the page's script, still
    offered A B C D and asked which looks best. Three pending tasks in a row — four, pair, four — walked with keys."""
    base, store = served
    rid = store.new_rater("four-then-two")
    four = ["vae_transpose", "vae_upsample", "vae_bilinear", "vae_subpixel"]
    for kind, models in (("four", four), ("pair", ["gan_upsample", "gan_transpose"]), ("four", four)):
        store.issue(rid, kind, models, 4321, 9, 3600)
    context = browser.new_context(viewport=WIDTHS["desktop"])
    context.add_cookies([{"name": "arena_rater", "value": _sign(rid), "url": base}])
    page = context.new_page()
    page.goto(base + "/rate", wait_until="networkidle")
    for grids in (4, 2, 4):
        assert page.locator("#grids figure").count() == grids
        assert not task_words(page), task_words(page)
        before = page.get_attribute("#vote-form", "data-task")
        for key in ("a", "b", "c" if grids == 4 else "t"):
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.getElementById('vote-form').dataset.task !== '{before}'")
    context.close()


def _zoom_matches_the_served_grids(page, base, models, seed, n, zoom, row, col) -> None:
    """Every canvas of the zoom panel is its model's served tile at (row, col), each pixel repeated 8×8 (nearest
    neighbour, no smoothing), read back from the PNG the service serves for this seed."""
    import io

    import httpx
    import numpy as np
    from PIL import Image

    from arena.images import TILE

    shown = page.evaluate(
        """() => [...document.querySelectorAll('#zoom-panel figure')].map(f => {
            const c = f.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const px = []; for (let i = 0; i < d.length; i += 4) px.push(d[i]);
            return {model: f.querySelector('figcaption').textContent, size: c.width, pixels: px};
        })"""
    )
    assert [s["model"] for s in shown] == models and {s["size"] for s in shown} == {TILE * 8}
    step = TILE * zoom + 2
    for s in shown:
        png = httpx.get(f"{base}/models/{s['model']}/grid.png?seed={seed}&n={n}&scale={zoom}").content
        served_grid = np.asarray(Image.open(io.BytesIO(png)))
        top, left = 2 + row * step, 2 + col * step
        tile = served_grid[top : top + TILE * zoom : zoom, left : left + TILE * zoom : zoom]
        eightfold = tile.repeat(8, axis=0).repeat(8, axis=1)
        assert np.array_equal(np.array(s["pixels"]).reshape(TILE * 8, TILE * 8), eightfold), (s["model"], seed)


def test_a_clicked_cell_is_shown_8x_beside_the_same_cell_of_every_grid(served, browser):
    """Click a grid's cell: the zoom panel shows that cell of every shown grid at 8×, nearest neighbour — each
    canvas pixel is its served tile's pixel repeated 8×8. The cell goes into the address: a link with it opens the
    page on the same panel, a new seed redraws the panel from the new grids, and Escape closes it and drops it."""
    from urllib.parse import parse_qs, urlsplit

    from arena.images import TILE

    base, _ = served
    models, seed, n, zoom = ["gan_transpose", "gan_upsample", "vae_transpose"], 17, 4, 3
    context = browser.new_context(viewport=WIDTHS["phone"])
    page = context.new_page()
    page.goto(f"{base}/?seed={seed}&n={n}&zoom={zoom}&models={','.join(models)}", wait_until="networkidle")
    assert page.locator("#zoom-panel").is_hidden()
    grid = page.locator("[data-model] img.grid").first
    grid.scroll_into_view_if_needed()
    box, natural = (
        grid.bounding_box(),
        page.evaluate("() => document.querySelector('[data-model] img.grid').naturalWidth"),
    )
    step, row, col = TILE * zoom + 2, 1, 0  # the cell at row 2, column 1
    k = box["width"] / natural
    page.mouse.click(box["x"] + (2 + col * step + step / 2) * k, box["y"] + (2 + row * step + step / 2) * k)
    panel = page.locator("#zoom-panel")
    assert panel.is_visible() and "Row 2, column 1" in panel.inner_text()
    _zoom_matches_the_served_grids(page, base, models, seed, n, zoom, row, col)
    link = page.url
    assert parse_qs(urlsplit(link).query)["cell"] == ["2,1"]

    shared = context.new_page()  # the link, opened afresh: the same panel, drawn once the grids are in
    shared.goto(link, wait_until="networkidle")
    shared.wait_for_selector("#zoom-panel figure canvas")
    assert "Row 2, column 1" in shared.locator("#zoom-panel").inner_text()
    _zoom_matches_the_served_grids(shared, base, models, seed, n, zoom, row, col)
    shared.fill("#seed", "18")
    shared.click("#seed-form button[type=submit]:not(#random)")
    shared.wait_for_function("() => new URLSearchParams(location.search).get('seed') === '18'")
    shared.wait_for_load_state("networkidle")
    shared.wait_for_timeout(300)
    assert parse_qs(urlsplit(shared.url).query)["cell"] == ["2,1"]
    _zoom_matches_the_served_grids(shared, base, models, 18, n, zoom, row, col)  # the new seed's cell, not the old

    page.keyboard.press("Escape")
    assert panel.is_hidden() and "cell" not in parse_qs(urlsplit(page.url).query)
    off = context.new_page()  # a cell off the grid (a 2×2 grid has no row 9): no panel, no error
    off.goto(f"{base}/?seed={seed}&n={n}&zoom={zoom}&models={','.join(models)}&cell=9,1", wait_until="networkidle")
    off.wait_for_timeout(300)
    assert off.locator("#zoom-panel").is_hidden()
    context.close()


def test_the_progress_slider_shows_the_frame_it_names(served, browser):
    """The model page's progress picture is the still frame of the epoch its slider reads, on load and after a
    move; never the looping animation."""
    base, _ = served
    context = browser.new_context(viewport=WIDTHS["desktop"])
    page = context.new_page()
    page.goto(base + "/models/gan_upsample", wait_until="networkidle")
    reads = "() => [document.getElementById('frame').src, document.getElementById('frame-label').textContent]"
    for position in (None, "0", "7"):
        if position is not None:
            page.locator("#frame-range").fill(position)
        src, label = page.evaluate(reads)
        assert src.endswith(f"/progress/epoch_{int(label):04d}.png"), (position, src, label)
        page.wait_for_function("() => document.getElementById('frame').complete")
        assert page.evaluate("() => document.getElementById('frame').naturalWidth") > 0
    assert label == "7"
    context.close()
