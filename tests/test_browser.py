"""In a real browser: Playwright driving Debian's Chromium against a live server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from arena.variants import VARIANTS
from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True, scope="module")
def _needs_chromium():
    require(
        "browser",
        None if Path(CHROMIUM).exists() else f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _serving(store: Path, db: Path, **settings):
    """uvicorn on a free 127.0.0.1 port in a thread, serving `store`; yields the base URL once /readyz says 200."""
    import httpx
    import uvicorn

    from app.core.settings import Settings
    from app.main import create_app

    port = _free_port()
    app = create_app(
        Settings(models_store=store, database_url=f"sqlite:///{db}", port=port, **{"results_ttl_s": 0, **settings})
    )  # results as of each vote
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        raise AssertionError("live server never became ready")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_server(tiny_store, tmp_path_factory):
    with _serving(tiny_store, tmp_path_factory.mktemp("browser-db") / "arena.db") as base:
        yield base


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory):
    """The shipped models_store: real training curves, replicate intervals and every trained variant."""
    with _serving(ROOT / "models_store", tmp_path_factory.mktemp("shipped-db") / "arena.db") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A page that records every console error, uncaught exception and failed or 4xx/5xx request; a test using it
    fails on any of them, so every page it visits must load clean."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(f"{pg.url} console: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(f"{pg.url} exception: {e}"))
    pg.on("requestfailed", lambda r: errors.append(f"failed: {r.url} ({r.failure})"))
    pg.on("response", lambda r: errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    pg.errors = errors
    yield pg
    context.close()
    assert errors == [], "\n".join(errors)


def test_every_page_loads_with_no_browser_errors(live_server, page):
    pages = ["/", "/about", "/docs", "/rate", "/results", "/favicon.ico"]
    pages += [f"/models/{name}" for name in ("gan_transpose", "gan_upsample", "vae_transpose", "vae_upsample")]
    for path in pages:
        page.goto(live_server + path)
        page.wait_for_load_state("networkidle")
    page.goto(live_server + "/docs")
    page.wait_for_selector(".swagger-ui .opblock")  # Swagger UI rendered the service's operations
    assert page.locator(".swagger-ui .opblock").count() > 5


def test_shipped_store_pages_load_with_no_browser_errors(shipped_server, page):
    """What users see: pages drawn from the shipped models (curves, replicate charts and verdicts, nine models), which
    the tiny test models cannot show; a style attribute in the curves SVG once broke the CSP here."""
    names = [
        p.name
        for p in sorted((ROOT / "models_store").iterdir())
        if (p / "manifest.json").is_file() and not p.name.startswith("_")
    ]
    assert len(names) >= 4
    for path in ["/", "/about", "/results", *(f"/models/{name}" for name in names)]:
        page.goto(shipped_server + path)
        page.wait_for_load_state("networkidle")
        assert not page.locator("figure.chart[data-error]").count(), (
            path,
            page.locator("figure.chart[data-error]").first.get_attribute("data-error"),
        )
    page.goto(shipped_server + "/")
    page.wait_for_selector("figure.chart.drawn svg g.mark-line path")


def _loaded_widths(page) -> list[int]:
    return page.eval_on_selector_all("img.grid", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")


def test_comparison_page_seed_change_and_model_page(live_server, page):
    page.goto(live_server + "/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.grid')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert len(_loaded_widths(page)) == len(VARIANTS) and all(w > 0 for w in _loaded_widths(page))
    before = page.eval_on_selector_all("img.grid", "imgs => imgs.map(i => i.src)")
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    page.fill("#seed", "31337")
    page.press("#seed", "Enter")
    page.wait_for_function("() => location.search.includes('seed=31337')")
    after = page.eval_on_selector_all("img.grid", "imgs => imgs.map(i => i.src)")
    assert all("seed=31337" in s for s in after) and set(after).isdisjoint(before)
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.grid')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "seed=31337" in page.url
    page.reload()
    assert page.input_value("#seed") == "31337"

    page.click("nav details.models-menu summary")  # the one models menu opens, then the model's link
    page.click("nav a[href='/models/gan_upsample']")
    page.wait_for_selector("#interp-row")
    page.wait_for_function(
        "() => { const i = document.getElementById('interp-row'); return i.complete && i.naturalWidth > 0; }"
    )
    assert page.eval_on_selector("#interp-row", "i => i.naturalWidth") == 10 * 28 * 3 + 11 * 2
    page.screenshot(path=str(ARTIFACTS / "model_page.png"), full_page=True)


def test_works_without_javascript(live_server, browser):
    context = browser.new_context(java_script_enabled=False)
    pg = context.new_page()
    pg.goto(live_server + "/")
    pg.fill("#seed", "4242")
    pg.click("button[type=submit]:not([name])")
    pg.wait_for_load_state()
    assert "seed=4242" in pg.url
    srcs = [el.get_attribute("src") for el in pg.query_selector_all("img.grid")]
    assert len(srcs) == len(VARIANTS) and all("seed=4242" in s for s in srcs)
    context.close()


TASK_WORDS = """() => ({
    keys: [...document.querySelectorAll('#keys-hint kbd')].map(k => k.textContent.trim()).filter(k => /^[A-Z]$/.test(k)
        && !['T', 'X'].includes(k)),
    grids: [...document.querySelectorAll('#grids figcaption')].map(f => f.textContent.trim()),
    title: document.getElementById('task-title').textContent.trim(),
    wording: document.getElementById('task-wording').textContent.trim(),
})"""
COUNT_WORD = {2: ("Which looks better?", "Two"), 4: ("Which looks best?", "Four")}


def task_words(page) -> list[str]:
    """A task's words match what it shows: the keys offered are its grids' letters, the question and the wording
    count its grids (a 2-way task never offers C or D, a 4-way one never asks which of two is better)."""
    shown = page.evaluate(TASK_WORDS)
    n = len(shown["grids"])
    found = [] if shown["keys"] == shown["grids"] else [f"keys {shown['keys']} offered for grids {shown['grids']}"]
    title, count = COUNT_WORD.get(n, ("?", "?"))
    if shown["title"] != title:
        found.append(f"{n} grids under the question {shown['title']!r}")
    if not shown["wording"].startswith(count):
        found.append(f"{n} grids described as {shown['wording'][:40]!r}")
    return found


def test_rate_three_tasks_with_the_keyboard_undo_one_and_see_results(live_server, page):
    page.goto(live_server + "/rate")
    page.check("input[name=consent]")
    page.click("text=Start rating")
    page.wait_for_selector("#vote-form")
    for expected in ("1", "2", "3"):
        page.wait_for_function(
            "() => [...document.querySelectorAll('#grids img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        before = page.get_attribute("#vote-form", "data-task")
        assert not task_words(page), task_words(page)  # the hint and question follow each task, 2-way or 4-way
        # a best-of-four task (10 % of tasks where a family has four models) has no tie: answer C there instead
        four = page.locator("#vote-form input[value=all_bad]").count() > 0
        for key in ("a", "b", "c" if four else "t"):
            page.keyboard.press(key)
        assert page.get_attribute("#vote-form", "data-task") == before  # three answers do not submit by themselves
        page.keyboard.press("Enter")  # one way to submit, for keys as for the mouse's button
        page.wait_for_function(f"() => document.getElementById('progress').textContent === '{expected}'")
        page.wait_for_function(f"() => document.getElementById('vote-form').dataset.task !== '{before}'")
        assert page.inner_text("#rate-status") == "Vote saved."
        last = before
    page.wait_for_function(
        "() => [...document.querySelectorAll('#grids img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(ARTIFACTS / "rate.png"), full_page=True)
    page.keyboard.press("u")
    page.wait_for_function("() => document.getElementById('progress').textContent === '2'")
    page.wait_for_function(f"() => document.getElementById('vote-form').dataset.task === '{last}'")  # it is back
    page.keyboard.press("a")
    assert page.inner_text("#rate-status") == ""  # the last message clears once the rater answers again
    page.goto(live_server + "/results")
    shown = page.inner_text("main")  # two votes stand; a known-answer task among them is never counted
    assert "(2 in all;" in shown or "(2 votes so far, all known-answer checks" in shown, shown
    page.screenshot(path=str(ARTIFACTS / "results.png"), full_page=True)


def test_a_rater_on_a_phone_sees_the_open_question_the_messages_and_each_new_task_from_its_top(live_server, browser):
    """A pair's grids stack and fill a phone's screen: the bar at the window's bottom names the open question while
    it lies below, a message (an early Enter) shows in the window, a vote brings the next task in from its title
    (the page once stayed scrolled down on the new task's questions), the keyboard's words give way to the undo
    window's, and Enter on a focused link follows the link (it once tried to submit the vote)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    pg = context.new_page()
    pg.goto(live_server + "/rate")
    pg.check("input[name=consent]")
    pg.click("text=Start rating")
    pg.wait_for_selector("#vote-form")
    pg.wait_for_load_state("networkidle")
    in_window = (
        "s => { const r = document.querySelector(s).getBoundingClientRect(); "
        "return r.top >= 0 && r.bottom <= innerHeight; }"
    )
    assert pg.inner_text("#rate-next") == "Below: " + pg.inner_text(".question[data-question=overall] legend")
    assert pg.is_hidden("#keys-hint") and "can be undone within" in pg.inner_text("main p.note")
    pg.keyboard.press("Enter")
    assert pg.inner_text("#rate-status").startswith("Answer all three questions first")
    assert pg.evaluate(f"({in_window})('#rate-status')")
    four = pg.locator("#vote-form input[value=all_bad]").count() > 0
    for q in ("overall", "legibility", "noise"):
        pg.check(f"#vote-form input[name={q}][value={'C' if four else 'A'}]")
    assert pg.inner_text("#rate-next") == ""
    pg.click("#submit-vote")
    pg.wait_for_function("() => document.getElementById('progress').textContent === '1'")
    pg.wait_for_function(
        "() => [...document.querySelectorAll('#grids img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    pg.wait_for_timeout(200)
    assert pg.evaluate(f"({in_window})('#task-title')") and pg.inner_text("#rate-status") == "Vote saved."
    assert pg.inner_text("#rate-next").startswith("Below: 1.")
    pg.focus("nav a[href='/results']")
    with pg.expect_navigation():
        pg.keyboard.press("Enter")
    assert pg.url.endswith("/results")
    context.close()


def test_conditional_grids_follow_the_image_count_and_the_digit_chooser_at_phone_width(live_server, browser):
    cgan = next(n for n, v in VARIANTS.items() if v.classes and v.facts.kind == "gan")
    context = browser.new_context(viewport={"width": 375, "height": 800})
    pg = context.new_page()
    loaded = "() => [...document.querySelectorAll('img.grid')].every(i => i.complete && i.naturalWidth > 0)"
    pg.goto(live_server + "/?seed=9&n=16")
    pg.wait_for_function(loaded)
    card = f"[data-model={cgan}] img.grid"
    assert "n=2&" in pg.get_attribute(card, "src")  # 16 images -> a class grid of 2 columns
    pg.select_option("#n", "64")
    pg.press("#seed", "Enter")
    pg.wait_for_function(f"() => document.querySelector('{card}').src.includes('n=6&')")
    pg.wait_for_function(loaded)
    size = pg.eval_on_selector(card, "i => [i.naturalWidth, i.naturalHeight]")
    assert size == [6 * 28 * 3 + 7 * 2, 10 * 28 * 3 + 11 * 2]  # 6 columns, one row per digit
    assert pg.eval_on_selector(card, "i => i.getBoundingClientRect().right") <= 375  # scaled to the phone's width
    pg.goto(f"{live_server}/models/{cgan}?seed=9")
    pg.select_option("#label", "7")
    pg.click("#label-form button")
    pg.wait_for_function("() => location.search.includes('label=7')")
    pg.wait_for_function(loaded)
    sample = pg.eval_on_selector("img.grid", "i => [i.src, i.naturalWidth]")
    assert "label=7" in sample[0] and sample[1] == 4 * 28 * 3 + 5 * 2
    assert "asked for a 7" in pg.get_attribute("#interp-row", "alt")
    context.close()


def test_shipped_pages_fit_a_phone_without_sideways_scrolling(shipped_server, browser):
    """The forest and interaction plots once kept their 560-px width on a 375-px phone (the whole page scrolled
    sideways); wide tables scroll inside their own box."""
    cgan = next(n for n, v in VARIANTS.items() if v.classes)
    context = browser.new_context(viewport={"width": 375, "height": 800})
    pg = context.new_page()
    for path in ["/", "/about", f"/models/{cgan}", "/results"]:
        pg.goto(shipped_server + path)
        pg.wait_for_load_state("networkidle")
        assert pg.evaluate("document.documentElement.scrollWidth") <= 375, path
    context.close()


def test_the_forest_plot_names_every_question_in_full_and_gives_the_bars_the_width(shipped_server, browser):
    """The forest plot once kept its names in a 260-px column beside the bars: on a 390-px phone the bars had
    40 px and the names were cut ("cvae_upsample − cvae_transpose (pape…", twice, for two machines). Each name now
    stands above its bar, whole, inside the chart, and the axis spans the chart's width."""
    figure = "figure[data-name=findings-forest-plot]"
    for width in (1366, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        pg = context.new_page()
        pg.goto(shipped_server + "/about")
        pg.wait_for_selector(f"{figure}.drawn svg g.role-axis")
        names = pg.eval_on_selector_all(
            f"{figure} table.data tbody tr td:first-child", "tds => tds.map(t => t.textContent)"
        )
        seen = pg.evaluate(
            """sel => {
                const svg = document.querySelector(sel + ' svg').getBoundingClientRect();
                const texts = [...document.querySelectorAll(sel + ' svg g.mark-text.role-mark text')]
                    .filter(t => t.textContent.trim())
                    .map(t => { const r = t.getBoundingClientRect(); return [r.top, t.textContent, r.left, r.right]; })
                    .sort((a, b) => a[0] - b[0]);
                const axis = document.querySelector(sel + ' svg g.role-axis').getBoundingClientRect();
                return {texts, left: svg.left, right: svg.right, axis: axis.width, width: svg.width};
            }""",
            figure,
        )
        assert len(names) >= 2, names
        shown = " ".join(t for _, t, _, _ in seen["texts"])
        assert shown.split() == " ".join(names).split(), (width, shown, names)
        outside = [t for _, t, lo, hi in seen["texts"] if lo < seen["left"] - 0.5 or hi > seen["right"] + 0.5]
        assert not outside, (width, outside)
        assert seen["axis"] >= 0.8 * seen["width"], (width, seen["axis"], seen["width"])
        context.close()


def test_the_ablation_table_fits_its_box_on_a_laptop_and_says_each_machines_setup_once(shipped_server, browser):
    """At 1366 px the ablation table was 1,412 px in a 1,168-px box: s/epoch, trained on and epochs lay off to the
    side, and every GPU row repeated "NVIDIA H100 80GB HBM3, jax, TF32 (jax default)" in four lines. Now it fits;
    each row names its machine, the note below the table gives each machine's setup once, and a control names its
    reference beneath its own name."""
    from arena.variants import VARIANTS

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    pg.goto(shipped_server + "/about")
    pg.wait_for_load_state("networkidle")
    table = pg.evaluate(
        """() => { const t = document.querySelector('table.ablation');
            const top = [...t.querySelectorAll('thead tr:first-child th')];
            const before = top.slice(0, top.findIndex(h => h.textContent === 'trained on'));
            return {scroll: t.scrollWidth, box: t.clientWidth, where: before.reduce((n, h) => n + h.colSpan, 0),
                    rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.innerText)),
                    note: [...document.querySelectorAll('p.note')].map(p => p.textContent)
                        .find(p => p.startsWith('Trained on: ')) || ''}; }"""
    )
    assert table["scroll"] <= table["box"] + 1, (table["scroll"], table["box"])
    where = table["where"]
    assert len(table["rows"]) == len(VARIANTS)
    for cells, (name, v) in zip(table["rows"], VARIANTS.items()):
        assert cells[0].split("\n")[0] == name
        assert (f"vs {v.reference}" in cells[0]) == bool(v.reference), cells[0]
        machine = cells[where]
        assert machine == "–" or f"{machine}, " in table["note"] or machine.count(",") >= 2, (name, machine)
    context.close()


def test_the_comparison_page_opens_on_the_grids_and_one_models_menu(shipped_server, browser):
    """At 1366×900 the first grid starts within 1,200 px of the top (the findings follow the grids); the navigation
    is one models menu, not fourteen links, on a phone too."""
    for viewport, limit in (({"width": 1366, "height": 900}, 1200), ({"width": 375, "height": 844}, 2400)):
        context = browser.new_context(viewport=viewport)
        pg = context.new_page()
        pg.goto(shipped_server + "/")
        pg.wait_for_load_state("networkidle")
        first_grid = pg.evaluate("document.querySelector('img.grid').getBoundingClientRect().top + window.scrollY")
        findings = pg.evaluate("document.getElementById('findings-title').getBoundingClientRect().top + window.scrollY")
        assert first_grid <= limit and first_grid < findings, (viewport, first_grid, findings)
        nav_links = pg.evaluate("[...document.querySelectorAll('nav > a')].length")
        assert nav_links <= 6 and pg.locator("nav details.models-menu summary").count() == 1
        nav_height = pg.evaluate("document.querySelector('nav').getBoundingClientRect().height")
        assert nav_height < 120, nav_height
        context.close()


def test_the_spectral_pictures_load_on_the_comparison_and_model_pages(shipped_server, browser):
    """Under each family the heat maps (real digits, each model, each difference) and the profile chart, as a reader
    of the shipped store sees them; the model page draws its own beside real digits'."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    for path, least in (("/", 2 * len(VARIANTS) + 1), ("/models/gan_transpose", 3)):
        pg.goto(shipped_server + path)
        pg.wait_for_load_state("networkidle")
        sizes = pg.evaluate(
            "[...document.querySelectorAll('.spectra img')].map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(sizes) >= least and all(ok and w == h == 144 for ok, w, h in sizes), (path, sizes)
        pg.wait_for_selector(".spectra figure.chart.drawn g.mark-line path")
        assert pg.locator(".spectra figure.chart.drawn g.mark-line path").count() >= 2, path
        if path == "/":  # each model's difference stands under its own spectrum (it once sat one column left)
            misplaced = pg.evaluate(
                """() => [...document.querySelectorAll('.spectra')].flatMap(sp => {
                    const left = {};
                    sp.querySelectorAll('img').forEach(i => {
                        const m = i.getAttribute('src').match(/models\/([a-z0-9_]+)\/spectrum\.png(\?of=(\w+))?/);
                        if (m && m[3] !== 'real') left[m[1] + (m[3] || '')] = i.getBoundingClientRect().left;
                    });
                    return Object.keys(left).filter(k => k.endsWith('difference'))
                        .filter(k => Math.abs(left[k] - left[k.replace('difference', '')]) > 1);
                })"""
            )
            assert not misplaced, misplaced
    context.close()


# The charts (app/views/charts.py; their specs and tables: tests/test_charts.py)
def test_charts_draw_save_as_svg_and_png_and_show_tooltips(shipped_server, page):
    page.goto(shipped_server + "/models/gan_transpose")
    page.wait_for_selector("figure.chart.drawn svg g.mark-line path")
    first = page.locator("figure.chart.drawn").first
    name = first.get_attribute("data-name")
    saved = {}
    for label, starts in (("Save as SVG", b"<svg"), ("Save as PNG", b"\x89PNG")):
        menu = first.locator(".vega-embed details")
        if not menu.evaluate("d => d.open"):
            first.locator(".vega-embed summary").click()
        with page.expect_download() as download:
            first.get_by_text(label).click()
        saved[label] = Path(download.value.path()).read_bytes()
        assert download.value.suggested_filename.startswith(name) and saved[label].startswith(starts), label
    assert b"losses per epoch" in saved["Save as SVG"]  # the saved chart carries its title
    box = first.locator("svg g.mark-symbol path").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#vg-tooltip-element.visible")
    assert "epoch" in page.inner_text("#vg-tooltip-element")


def test_without_javascript_each_chart_is_its_table(shipped_server, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    pg = context.new_page()
    for path in ("/", "/models/gan_transpose"):
        pg.goto(shipped_server + path)
        figures = pg.locator("figure.chart")
        assert figures.count() >= 3, path
        for i in range(figures.count()):
            fig = figures.nth(i)
            assert fig.locator(".vega svg").count() == 0
            rows = fig.locator("details.chart-data table tbody tr").count()
            href = fig.locator("a.csv").get_attribute("href")
            assert href.startswith("data:text/csv"), path
            if fig.locator("xpath=ancestor::details[not(@open)]").count() == 0:  # shown: its table is open
                assert fig.locator("details.chart-data[open] table").is_visible(), (path, i)
            assert rows >= 1, (path, i)
    context.close()


def test_every_table_can_be_taken_away_as_csv(shipped_server, page):
    """Tables that are not a chart's own get a CSV link built from what the page shows: the file's header row is the
    table's header row."""
    import csv as csvlib
    import io

    page.goto(shipped_server + "/")
    page.wait_for_load_state("networkidle")
    tables = page.locator("main table:not(figure.chart table)")
    links = page.locator("main a.table-csv")
    assert tables.count() >= 3 and links.count() == tables.count()
    first = tables.first
    header = [c.strip() for c in first.locator("tr").first.locator("th, td").all_inner_texts()]
    first.evaluate("t => { const d = t.closest('details'); if (d) d.open = true; }")
    with page.expect_download() as download:
        page.locator("main a.table-csv").first.click()
    rows = list(csvlib.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert [" ".join(h.split()) for h in header] == rows[0] and len(rows) == first.locator("tr").count()


def test_a_participant_walks_a_crowd_study_from_the_platform_link_to_the_completion_redirect(
    tiny_store, tmp_path, browser
):
    """A Prolific participant: the link, consent with time and pay, a "real or generated?" image answered by key, a
    pair by keys, a known-answer check failed and one passed (one failure does not screen out), the completion code,
    and the platform's completion URL five seconds later (answered here by the test: no request leaves 127.0.0.1).
    The consent page, an image task and the completion page are read at 1366 and 390 px."""
    from app.store import VoteStore
    from tests.test_crowd import crowd_file

    campaign = crowd_file(tmp_path, pairs=1, checks=2, real_or_generated=2, screen_out_failures=2,
                          completion_url="http://127.0.0.1:9/complete?cc={code}")  # fmt: skip
    db = tmp_path / "walk.db"
    secret = "walk-secret-0123456789abcdef0123"
    with _serving(tiny_store, db, crowd_campaigns=str(campaign), secret_key=secret) as base:
        store = VoteStore(f"sqlite:///{db}")
        for width in (1366, 390):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
            page.route(
                "http://127.0.0.1:9/**", lambda route: route.fulfill(status=200, body="completed on the platform")
            )
            pid = f"W{width}"
            page.goto(f"{base}/study/pilot?PROLIFIC_PID={pid}&STUDY_ID=STUDY1&SESSION_ID=s1")
            text = page.inner_text("main")
            assert "£0.80" in text and "5 short tasks" in text and "about 4 minutes" in text, text
            page.screenshot(path=str(ARTIFACTS / f"study-consent-{width}.png"))
            widths = [page.evaluate("document.documentElement.scrollWidth")]  # no sideways scrolling on any page
            page.check("input[name=consent]")
            with page.expect_navigation():
                page.click("button[type=submit]")
            checks = []
            for _ in range(8):
                page.wait_for_load_state("load")
                widths.append(page.evaluate("document.documentElement.scrollWidth"))
                if page.locator("#real-form").count():
                    if not checks and not (ARTIFACTS / f"study-real-{width}.png").exists():
                        page.screenshot(path=str(ARTIFACTS / f"study-real-{width}.png"))
                    assert page.locator("img.single").evaluate("i => i.complete && i.naturalWidth") == 224
                    with page.expect_navigation():
                        page.keyboard.press("r")
                    continue
                if not page.locator("#vote-form").count():
                    break
                task = page.locator("input[name=task_id]").get_attribute("value")
                models = store.task(task).models
                answer = "A"
                if "real_mnist" in models:
                    right = "AB"[models.index("real_mnist")]
                    answer = right if checks else ("B" if right == "A" else "A")  # the first check failed
                    checks.append(answer == right)
                for _ in range(3):
                    page.keyboard.press(answer.lower())
                with page.expect_navigation():
                    page.keyboard.press("Enter")
            assert checks == [False, True], checks
            text = page.inner_text("main")
            assert "Your completion code" in text and "DONE42" in text, text
            page.screenshot(path=str(ARTIFACTS / f"study-done-{width}.png"))
            page.wait_for_url("http://127.0.0.1:9/complete?cc=DONE42", timeout=15000)
            assert "completed on the platform" in page.inner_text("body")
            assert errors == [] and max(widths) <= width, (errors, widths)
            row = store.participant("pilot", pid)
            assert row.status == "completed" and store.rater(row.rater_id).gold_failed == 1
            context.close()
