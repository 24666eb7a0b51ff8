"""Server-rendered pages with the tiny test models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arena.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]


def test_comparison_page_shows_every_variant_from_one_seed(client):
    r = client.get("/?seed=77&n=9&zoom=2")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    srcs = re.findall(r'src="(/models/([a-z0-9_]+)/grid\.png[^"]*)"', r.text)
    assert len(srcs) == len(VARIANTS)
    for src, name in srcs:  # a conditional model shows its class grid: one row per digit, 9 images -> 2 columns
        assert f"seed=77&amp;n={2 if VARIANTS[name].classes else 9}&amp;scale=2" in src, src
    srcs = [src for src, _ in srcs]
    assert r.text.index("gan_transpose") < r.text.index("gan_upsample") < r.text.index("vae_transpose")
    assert "Epochs trained" in r.text and "Seconds / epoch" in r.text
    for s in srcs:
        assert client.get(s.replace("&amp;", "&")).status_code == 200


def test_bad_seed_in_query_falls_back_with_a_notice(client):
    for raw, needle in (
        ("abc", "&#39;abc&#39; is not a whole number"),
        ("-5", "seed -5 is out of range"),
        ("99999999999", "out of range"),
    ):
        r = client.get(f"/?seed={raw}")
        assert r.status_code == 200 and needle in r.text and "seed=2023" in r.text
    r = client.get("/?n=7")
    assert r.status_code == 200 and "n 7 is out of range" in r.text


def test_random_redirects_to_a_shareable_url(client):
    r = client.get("/?random=1&n=4", follow_redirects=False)
    assert r.status_code == 303 and re.match(r"^/\?seed=\d+&n=4&zoom=3$", r.headers["location"])


def test_model_page_shows_provenance_and_interpolation(client):
    r = client.get("/models/gan_transpose?a=5&b=6")
    assert r.status_code == 200
    assert "Conv2DTranspose" in r.text and "2,330,944" in r.text and "interpolate.png?seed_a=5&amp;seed_b=6" in r.text
    assert "the report's protocol: 50" in r.text
    v = client.get("/models/vae_upsample").text
    assert "manifold.png" in v and "mode=reconstruct" in v and "test_digits.png" in v
    assert client.get("/models/vae_upsample/test_digits.png").headers["content-type"] == "image/png"


def test_model_files_are_served_only_from_the_allow_list(client):
    assert client.get("/models/gan_upsample/files/progress.gif").status_code == 200
    assert client.get("/models/gan_upsample/files/progress/epoch_0001.png").status_code == 200
    assert client.get("/models/gan_upsample/files/generator.keras").status_code == 404
    assert client.get("/models/gan_upsample/files/../vae_upsample/manifest.json").status_code == 404


def test_unknown_model_page_is_a_friendly_404(client):
    r = client.get("/models/<img src=x onerror=alert(1)>")
    assert (
        r.status_code == 404 and "No such model" in r.text and "<img src=x" not in r.text and "&lt;img src=x" in r.text
    )
    r = client.get("/no/such/page", headers={"accept": "text/html"})
    assert r.status_code == 404 and "Page not found" in r.text
    assert client.get("/no/such/page", headers={"accept": "application/json"}).json() == {"detail": "Not Found"}


def test_about_and_api_reference(client):
    assert "Odena" in client.get("/about").text
    docs = client.get("/docs")
    assert docs.status_code == 200 and 'src="/static/apidocs/swagger-ui-bundle.js"' in docs.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", docs.text) and not re.search(r'(src|href)="https?://', docs.text)
    assert "script-src 'self';" in docs.headers["content-security-policy"]  # styles may be inline there, scripts not
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):  # served by the app, no CDN
        assert client.get(f"/static/apidocs/{asset}").status_code == 200
    assert client.get("/favicon.ico").headers["content-type"] == "image/png"
    spec = client.get("/openapi.json").json()
    assert "/generate" in spec["paths"] and spec["paths"]["/generate"]["post"]["parameters"][0]["name"] == "model"


def test_pages_send_a_strict_csp_and_use_no_inline_script(client):
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text) and " onclick=" not in r.text
    assert not re.search(r'(src|href)="https?://', r.text), "external assets"


def test_no_inline_style_attributes_the_csp_would_block():
    """style-src 'self' blocks style="…" attributes (a console error in every browser): none in the templates; the
    charts' scripts are told to inject no style of their own (vega-embed's and vega-tooltip's come from
    /static/vendor/vega-embed.css) and to interpret expressions rather than eval them (script-src 'self')."""
    root = Path(__file__).resolve().parents[1]
    for template in (root / "templates").glob("*.html"):
        assert not re.search(r"\sstyle=", template.read_text()), template.name
    script = (root / "app" / "static" / "charts.js").read_text()
    for option in ("ast: true", "defaultStyle: false", "disableDefaultStyle: true"):
        assert option in script, option
    css = (root / "app" / "static" / "vendor" / "vega-embed.css").read_text()
    assert ".vega-embed .vega-actions" in css and "#vg-tooltip-element.visible" in css


def test_comparison_page_takes_any_subset_of_models_in_the_url(client):
    r = client.get("/?seed=5&n=4&models=vae_subpixel,gan_transpose_k4")
    srcs = re.findall(r'src="/models/([a-z0-9_]+)/grid\.png', r.text)
    assert r.status_code == 200 and srcs == ["gan_transpose_k4", "vae_subpixel"]  # in the page's order, groups kept
    assert 'name="models" value="gan_transpose_k4,vae_subpixel"' in r.text and "2 of " in r.text
    r = client.get("/?models=gan_upsample&models=nope")
    assert re.findall(r'src="/models/([a-z0-9_]+)/grid\.png', r.text) == ["gan_upsample"]
    assert "&#39;nope&#39; is not a model here; accepted: gan_transpose" in r.text
    r = client.get("/?models=nope")
    assert (
        len(re.findall(r'src="/models/[a-z0-9_]+/grid\.png', r.text)) == len(VARIANTS)
        and "showing every model" in r.text
    )
    r = client.get("/?random=1&n=4&models=vae_upsample", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("&models=vae_upsample")


def test_conditional_models_show_class_grids_and_a_digit_chooser(client):
    from app.api.pages import N_CHOICES, class_columns
    from arena.latents import CLASSES

    cgan = next(n for n, v in VARIANTS.items() if v.classes and v.facts.kind == "gan")
    cvae = next(n for n, v in VARIANTS.items() if v.classes and v.facts.kind == "vae")
    page = client.get("/?seed=5&n=64").text
    assert 'id="g-cgan"' in page and 'id="g-cvae"' in page and "one row per digit 0–9" in page
    assert f'/models/{cgan}/grid.png?seed=5&amp;n=6&amp;scale=3"' in page
    assert [class_columns(n) for n in N_CHOICES] == [2, 2, 2, 3, 4, 6]  # ⌈n / 10⌉ columns, 2 … 6
    assert all(class_columns(n) * CLASSES <= 64 for n in N_CHOICES)
    m = client.get(f"/models/{cgan}?seed=8").text
    assert 'id="label-form"' in m and '<option value="all" selected>' in m
    assert "grid.png?seed=8&amp;n=4&amp;scale=3" in m and "interpolate.png?seed_a=1&amp;seed_b=2" in m
    seven = client.get(f"/models/{cgan}?seed=8&label=7").text
    assert f"/models/{cgan}/grid.png?seed=8&amp;n=16&amp;scale=3&amp;label=7" in seven
    assert "&amp;label=7" in seven.split('id="interp-row"')[1][:400]
    v = client.get(f"/models/{cvae}?label=3").text
    assert "manifold.png?size=15&amp;scale=1&amp;padding=0&amp;label=3" in v and "mode=reconstruct" in v
    for src in re.findall(r'src="(/models/[a-z0-9_]+/[a-z_]+\.png[^"]*)"', seven + v):
        assert client.get(src.replace("&amp;", "&")).status_code == 200, src
    bad = client.get(f"/models/{cgan}?label=12").text
    assert "label 12 is out of range" in bad and '<option value="all" selected>' not in bad
    plain = client.get("/models/gan_upsample?label=3").text
    assert "is ignored: gan_upsample is unconditional" in plain and 'id="label-form"' not in plain


def layer_values(spec: dict, i: int) -> list[dict]:
    """The rows a chart's layer draws (Altair keeps inline rows in the layer, or at the top when all layers share
    them, or names them in `datasets`)."""
    data = spec["layer"][i].get("data") or spec["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def test_per_class_bars_draw_one_bar_per_model_and_digit():
    from app.views.charts import PER_CLASS, per_class_charts

    per = {
        "accuracy": [0.5 + d / 20 for d in range(10)],
        "frechet": [float(d) for d in range(10)],
        "checkerboard_ratio": [1.2] * 10,
        "diversity_ratio": [0.9] * 9 + [None],
    }
    charts = per_class_charts(
        {
            "a": {"conditional": {"per_class": per}},
            "b": {"conditional": {"per_class": per}},
            "plain": {"frechet": {"distance": 3.0}},
            "unevaluated": None,
        }
    )
    assert len(charts) == len(PER_CLASS)
    bars = [layer_values(c.spec, 0) for c in charts]
    assert len(bars[0]) == 2 * 10 and len(bars[3]) == 2 * 9  # a class without samples has no bar
    assert ("a", 9, 0.95) in charts[0].rows and ("a", 9, None) in charts[3].rows  # the table says it is missing
    assert len(charts[2].spec["layer"]) == 2 and len(charts[0].spec["layer"]) == 1  # real digits' line where defined
    assert charts[0].spec["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, 1.0]  # accuracy: at most 1
    assert (
        all({r[0] for r in c.rows} == {"a", "b"} for c in charts) and per_class_charts({"plain": {"frechet": {}}}) == []
    )


@pytest.mark.slow  # starts the service on the shipped models (about a minute)
def test_the_results_bench_runs_and_reports_against_healthz(tmp_path):
    """bench/results.py end to end on a small store: it serves, measures both routes and writes its figures."""
    import json
    import subprocess
    import sys

    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "bench/results.py", "--votes", "250", "--requests", "5", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["counted_votes"] > 200 and all(figures[p]["p50"] > 0 for p in ("/healthz", "/results", "/"))
    assert "/results p50 is" in done.stdout


def test_the_comparison_can_be_taken_away_as_a_figure_and_a_table(client):
    """/compare.png: the shown models' grids in one labelled PNG, named for its seed; /compare.csv: a row per shown
    model with the page's figures as numbers; both follow the page's URL state and refuse bad values."""
    import csv
    import io

    from PIL import Image

    names = list(VARIANTS)[:2]
    r = client.get("/compare.png", params={"seed": 5, "n": 4, "zoom": 1, "models": ",".join(names)})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert 'filename="deconv-arena-comparison-seed_5.png"' in r.headers["content-disposition"]
    assert Image.open(io.BytesIO(r.content)).size[1] > 2 * 28
    one = client.get("/compare.png", params={"seed": 5, "n": 4, "zoom": 1, "models": names[0]}).content
    assert one != r.content
    rows = list(csv.DictReader(io.StringIO(client.get("/compare.csv", params={"models": ",".join(names)}).text)))
    assert [row["model"] for row in rows] == names
    assert client.get("/compare.png", params={"seed": -1}).status_code == 422
    assert 'href="/compare.png?seed=2023' in client.get("/").text


def test_the_findings_strip_shows_plans_estimates_and_no_verdict_without_a_plan():
    """One row per plan (a version replaced before any run of it left out), then the report's pairs' exploratory
    estimates with their forest mark; a verdict word only where a plan's own runs gave one."""
    from app.views.strip import strip_rows

    plan = {"title": "t", "study": [], "exploratory": [], "study_runs_planned": 80}
    iv = {"mean": -9.0, "low": -16.0, "high": -2.0, "n": 10}
    comparison = {
        "a": "vae_upsample",
        "b": "vae_transpose",
        "question": "q",
        "profile": "paper",
        "epochs": 10,
        "trained_on": "CPU, tensorflow, float32",
        "primary": "frechet",
        "metrics": {"frechet": {"score_difference": iv, "n": 10, "delta": 4.7, "kind": "exploratory"}},
    }
    stats = {
        "studies": [{**plan, "plan": "g v1", "study_runs": 0}, {**plan, "plan": "g v2", "study_runs": 3}],
        "comparisons": [comparison],
    }
    rows = strip_rows(stats)
    assert [r["what"] for r in rows] == ["plan g v2", "vae_upsample − vae_transpose"]
    assert rows[0]["word"].startswith("3 of 80 runs in") and rows[1]["word"] == "exploratory, 10 seeds"
    assert rows[1]["value"] == "−9.0 [−16.0, −2.0]" and "<svg" in rows[1]["mark"]
    assert rows[1]["metric"].endswith("lower is better") and rows[1]["delta"] == 4.7  # the mark's unit, shown
    assert not any("better" in r["word"] for r in rows)
    assert "trained on" not in rows[1]["metric"]  # one row of the pair: no machine needed to tell it apart
    elsewhere = {**comparison, "trained_on": "NVIDIA H200, jax, TF32 (jax default)"}
    twice = strip_rows({**stats, "comparisons": [comparison, elsewhere]})[1:]
    assert [r["metric"].rsplit("; trained on ", 1)[1] for r in twice] == [
        "CPU, tensorflow, float32",
        elsewhere["trained_on"],
    ]
    # a plan's verdict on the same pair is told apart by its standing; the exploratory row needs no machine for it
    effect = {"contrast": "vae_upsample − vae_transpose", "effect": "pair", "estimate": -12.4, "seeds": 40}
    answered = {
        **plan,
        "plan": "v v1",
        "study_runs": 80,
        "study": [
            {
                "primary": "frechet",
                "delta": 5.0,
                "effects": [{**effect, "interval": [-15.3, -9.6], "verdict": "vae_upsample better"}],
            }
        ],
    }
    both = strip_rows({"studies": [answered], "comparisons": [comparison]})
    assert [r["kind"] for r in both] == ["verdict", "exploratory"] and both[0]["what"] == both[1]["what"]
    assert both[0]["word"] == "vae_upsample better (plan v v1, 40 seeds)" and "trained on" not in both[1]["metric"]


def test_a_forest_mark_shows_an_arrow_where_its_values_run_past_the_axis():
    """The mark's axis is ±MARK_SPAN δ; an estimate or interval beyond it is drawn at the edge with an arrowhead on
    that side, and none where everything fits."""
    from app.views.strip import MARK_SPAN, forest_mark

    arrows = lambda svg: svg.count('class="past"')  # noqa: E731
    d = 5.0
    assert arrows(forest_mark(-1.0, -2.0, 1.0, d, "fits")) == 0
    left = forest_mark(-17.3, -22.1, -12.5, d, "far left")
    assert arrows(left) == 1 and 'points="0,' in left
    right = forest_mark(2.0, -1.0, (MARK_SPAN + 1) * d, d, "right end past")
    assert arrows(right) == 1 and 'points="120,' in right
    assert arrows(forest_mark(0.0, -20.0, 20.0, d, "both sides")) == 2


def test_large_pages_travel_gzipped_and_read_the_same(client):
    """A page with charts carries their specs and tables: gzipped where the browser accepts it (Vary says so), the
    same text once decoded; a small page and a browser that asks for no compression get it as it is."""
    zipped = client.get("/", headers={"Accept-Encoding": "gzip"})
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in plain.headers and zipped.text == plain.text
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3
    assert "content-encoding" not in client.get("/rate/start", headers={"Accept-Encoding": "gzip"}).headers
    grid = client.get("/models/gan_upsample/grid.png?seed=1&n=4", headers={"Accept-Encoding": "gzip"})
    assert grid.status_code == 200 and "content-encoding" not in grid.headers  # PNG: never recompressed


def test_each_card_says_what_its_figures_rest_on(tmp_path):
    """A card's figures are one served run's: the card says which run (its seed) and how many samples, so its
    number is never read as the across-seed answer (a cVAE card's single run once read against the findings)."""
    import json

    from tests.conftest import make_client, wait_ready

    store = ROOT / "models_store"
    with make_client(store, tmp_path, shared=False) as c:
        wait_ready(c)
        page = c.get("/").text
    cards = dict(re.findall(r'<article class="card" data-model="([a-z0-9_]+)">(.*?)</article>', page, re.S))
    assert set(cards) == set(VARIANTS)
    for name, card in cards.items():
        seed = json.loads((store / name / "manifest.json").read_text())["seeds"]["init_and_order"]
        samples = json.loads((store / name / "metrics.json").read_text())["samples"]
        assert f"one training run (seed {seed}); its metrics on {samples:,} samples" in card, name


def test_the_comparison_page_says_what_each_count_of_comparisons_counts(tmp_path):
    """The strip said "8 more comparisons", the findings "13" and the forest plot drew 12 rows, with nothing to say
    why: the strip holds the report's protocol only, the findings add the quick-profile runs, and the forest plot
    leaves out a comparison without an estimate. Each count now says what it counts, from the same data."""
    import re

    from app.views.charts import forest_chart
    from app.views.findings import comparison_findings
    from app.views.strip import strip_rows
    from tests.conftest import make_client, wait_ready

    with make_client(ROOT / "models_store", tmp_path) as client:  # the shipped store: quick runs beside the paper's
        wait_ready(client, timeout=300)
        stats = client.app.state.registry.replicate_statistics
        page = re.sub(r"<[^>]+>", "", client.get("/").text)
    findings = comparison_findings(stats)
    forest = forest_chart(findings)
    strip = [r for r in strip_rows(stats) if r["kind"] not in ("plan", "verdict")]  # a plan's rows are its own
    assert {f["profile"] for f in findings} - {"paper"}, "the shipped store has quick-profile comparisons"
    assert len(strip) == sum(f["profile"] == "paper" for f in findings) < len(findings)
    assert f"the findings: all {len(findings)} comparisons, quick-profile runs too" in page
    assert f"one sentence per question ({len(findings)}), the forest plot ({len(forest.rows)} with an estimate)" in page
    assert len(forest.rows) == sum(f["test"] is not None for f in findings)


def test_an_answered_plan_is_read_first_then_one_under_way_then_one_awaiting_its_runs():
    """With the VAE study answered, the pages and the README listed it after two GAN plans with no run yet (and the
    README's study block grew past its 4,000 characters on a simulated completion)."""
    from app.views.findings import reading_order
    from app.views.strip import strip_rows

    base = {"title": "t", "study": [], "exploratory": [], "study_runs_planned": 8}
    waiting = [{**base, "plan": f"g v{v}", "study_runs": 0} for v in (1, 2)]
    running = {**base, "plan": "r v1", "study_runs": 3}
    effect = {"contrast": "a − b", "effect": "pair", "estimate": -1.0, "interval": [-2.0, 0.5], "seeds": 4}
    answered = {
        **running,
        "plan": "v v1",
        "study_runs": 8,
        "study": [{"primary": "frechet", "delta": 5.0, "effects": [{**effect, "verdict": "inconclusive"}]}],
    }
    studies = [*waiting, running, answered]
    # g v1, replaced by g v2 before any run of it, is left out (the About page lists every plan file)
    assert [st["plan"] for st in reading_order(studies)] == ["v v1", "r v1", "g v2"]
    shown = [r["word"] for r in strip_rows({"studies": studies, "comparisons": []})]
    assert shown[0].startswith("inconclusive (plan v v1") and shown[1].startswith("3 of")


def test_the_about_page_explains_a_plan_file_once_and_lists_every_one(tmp_path):
    """/about repeated the same 60-word explanation under each plan file (three times on the shipped store); it now
    says it once and lists each file with its hash, when it was committed, and whether a newer version replaced it
    before any run (the version the other pages leave out)."""
    import json

    from tests.conftest import make_client

    stats = json.loads((ROOT / "models_store" / "replicates.json").read_text())
    store = tmp_path / "store"
    store.mkdir()
    (store / "replicates.json").write_text(json.dumps(stats))
    with make_client(store, tmp_path, shared=False) as client:
        page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", client.get("/about").text))
    assert page.count("A plan file fixes its questions") == 1
    for st in stats["studies"]:
        item = re.split(r" studies/| Exploratory", page.split(f"{st['file']}: SHA-256 ", 1)[1])[0]
        when = st["committed_at"]
        assert item.startswith(f"{st['sha256'][:16]}, committed {when[:10]} {when[11:16]} UTC"), item
        replaced = st["plan"] == "gan-operator-network v1"  # v2 replaced it before any run of it
        assert ("replaced by a newer version before any run of it" in item) == replaced, item
