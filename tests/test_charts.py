"""The pages' charts (app/views/charts.py): Vega-Lite specs that the schema accepts, axes held to what a measure can
take, tables that say what the chart draws and download as CSV; the vendored scripts are the pinned npm files. In a
browser (tests/test_browser.py, on its live server) every chart is drawn, saves as SVG and PNG and shows tooltips, and
without JavaScript it is its table."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import altair as alt
import pytest

from app.views import charts
from app.views.spectrum_pictures import profile_chart
from arena.stats import METRIC

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "app" / "static" / "vendor"


def test_the_vendored_chart_scripts_are_the_pinned_npm_files_with_their_licences():
    pins = tomllib.loads((VENDOR / "VERSIONS.toml").read_text())
    assert set(pins) == {"vega", "vega-lite", "vega-embed"}
    for name, pin in pins.items():
        assert hashlib.sha256((VENDOR / pin["file"]).read_bytes()).hexdigest() == pin["sha256"], name
        assert "Redistribution and use" in (VENDOR / f"{name}.LICENSE").read_text(), name
    scripts = (ROOT / "templates" / "_chart_scripts.html").read_text()
    assert all(f"/static/vendor/{pin['file']}" in scripts for pin in pins.values())


def _every_chart() -> list[charts.Chart]:
    """One chart of each kind, on data that strays past its measure's range (intervals below 0 or above 1)."""
    frechet, precision = METRIC["frechet"], METRIC["precision"]
    rows = [
        {"name": "a", "mean": 2.0, "low": -3.0, "high": 7.0, "n": 3, "values": [0.5, 2.0, 3.5]},
        {"name": "b", "mean": 9.0, "low": 6.0, "high": 12.0, "n": 3, "values": [8.0, 9.0, 10.0]},
    ]
    shares = [{"name": "a", "mean": 0.97, "low": 0.9, "high": 1.04, "n": 3, "values": [0.95, 0.97, 0.99]}]
    finding = {
        "a": "x",
        "b": "y",
        "profile": "paper",
        "test": {"delta": 5.0, "score_difference": {"mean": -4.0, "low": -9.0, "high": 1.0}},
    }
    design = {
        "factor": "network",
        "means": {
            "frechet": {
                f"{o}|{n}": {"mean": m, "low": m - 4, "high": m + 4}
                for (o, n), m in zip(
                    [
                        ("transpose", "tutorial"),
                        ("transpose", "shallow"),
                        ("resize", "tutorial"),
                        ("resize", "shallow"),
                    ],
                    (3.0, 20.0, 25.0, 30.0),
                )
            }
        },
    }
    section = {"profile": {"cycles_per_pixel": [0.0, 0.25, 0.5], "model": [-1.0, -2.0, -3.0], "real": [-1.0, -2.5, -4]}}
    made = [
        charts.interval_chart(rows, "Fréchet distance", "lower", frechet.lowest, frechet.highest),
        charts.interval_chart(shares, "precision", "higher", precision.lowest, precision.highest),
        charts.curve_chart(
            {"a": [(1, 5.0), (2, 1.0)]}, "Fréchet", bands={"a": [(1, -2.0, 9.0), (2, 0.5, 1.5)]}, lowest=0.0
        ),
        charts.curve_chart({"a": [(1, 5.0), (2, 0.01)]}, "checkerboard", log_y=True, bands={"a": [(1, -1.0, 8.0)]}),
        charts.forest_chart([finding]),
        charts.interaction_chart(design),
        *charts.per_class_charts({"c": {"conditional": {"per_class": {"accuracy": [0.99] * 10}}}}),
        profile_chart({"m": section}, "spectrum"),
        charts.rating_chart("overall", [{"model": "a", "rating": 1000.0, "lower": 950.0, "upper": 1040.0}]),
    ]
    assert all(made)
    return made


def _domain(chart: charts.Chart) -> list[float]:
    """The measure axis's domain, from the layer that names it."""
    for layer in chart.spec.get("layer", [chart.spec]):
        scale = (layer.get("encoding", {}).get(chart.axis) or {}).get("scale")
        if scale and "domain" in scale:
            return scale["domain"]
    raise AssertionError(f"{chart.name}: no domain on its {chart.axis} axis")


def test_every_chart_is_valid_vega_lite_and_its_measure_axis_stays_in_range():
    for chart in _every_chart():
        json.dumps(chart.spec)  # what the page's script reads: plain JSON (an object in the data would be a 500)
        alt.LayerChart.from_dict(chart.spec) if "layer" in chart.spec else alt.Chart.from_dict(chart.spec)
        assert chart.spec["width"] == "container" and chart.spec["config"]["axis"]["labelFontSize"] >= 11
        assert all(len(line) <= charts.TITLE_CHARS for line in chart.spec["title"]), chart.title
        if chart.axis:
            low, high = _domain(chart)
            assert chart.lowest is None or low >= chart.lowest, (chart.name, low)
            assert chart.highest is None or high <= chart.highest, (chart.name, high)
    interval = _every_chart()[0]
    assert _domain(interval)[0] == 0.0  # an interval reaching below 0 is drawn from 0, not from -3
    assert dict((r[0], r[3]) for r in interval.rows)["a"] == 0.0  # and its table says where it is drawn from


def test_a_charts_table_is_its_csv_and_names_a_missing_value():
    for chart in _every_chart():
        parsed = list(csv.reader(io.StringIO(chart.csv)))
        assert tuple(parsed[0]) == chart.columns and len(parsed) == len(chart.rows) + 1, chart.name
        assert len(chart.cells()) == len(chart.rows) and all(len(r) == len(chart.columns) for r in chart.cells())
    curve = charts.curve_chart({"a": [(1, 2.0)], "b": [(2, 3.0)]}, "x", bands={"a": [(1, 1.0, 3.0), (2, 1.5, 2.5)]})
    assert curve.columns[-2:] == ("replicates' 95 % low", "replicates' 95 % high")
    assert ["a", "2", "–", "1.5", "2.5"] in curve.cells()  # a band without its own value: the value is missing
    assert charts.curve_chart({"a": [(1, 2.0)]}, "y").columns == ("model", "epoch", "y")  # no bands, no band columns


def test_the_chart_scripts_are_served_gzipped_from_the_app(client):
    """823 KB of script travel as about 277 KB; a browser that asks for no compression gets the file as it is."""
    pins = tomllib.loads((VENDOR / "VERSIONS.toml").read_text())
    for pin in pins.values():
        zipped = client.get(f"/static/vendor/{pin['file']}", headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
        assert hashlib.sha256(zipped.content).hexdigest() == pin["sha256"]  # the client undoes the gzip
        plain = client.get(f"/static/vendor/{pin['file']}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and len(plain.content) == (VENDOR / pin["file"]).stat().st_size
    assert client.get("/static/vendor/vega-embed.css").text.startswith("/* vega-embed")


def test_a_chart_is_built_once_per_distinct_data():
    """The comparison page draws about a hundred charts: each is kept by its data, so a second request reuses it and
    other data gets its own chart."""
    rows = [{"model": "a", "rating": 1000.0, "lower": 950.0, "upper": 1040.0}]
    first = charts.rating_chart("overall", rows)
    assert charts.rating_chart("overall", [dict(r) for r in rows]) is first
    other = charts.rating_chart("overall", [{**rows[0], "upper": 1050.0}])
    assert other is not first and other.rows[0][3] == 1050.0
    calls = []
    twice = charts.memoized(lambda x: calls.append(x) or len(calls))
    assert twice({1, 2}) == 1 and twice({1, 2}) == 2  # not JSON: built every time, never wrongly shared


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (1e-4, 10.0, [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]),  # decades where there are enough
        (0.008, 0.13, [0.01, 0.02, 0.05, 0.1]),  # a band within about a decade: 1-2-5 (one tick before, at 0.1)
        (0.03, 0.09, [0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09]),
        (0.9, 1.8, [0.9, 0.95, 1.0, 1.5]),
    ],
)
def test_a_log_axis_gets_at_least_three_round_ticks_inside_its_range(low, high, expected):
    ticks = charts.log_ticks(low, high)
    assert ticks == pytest.approx(expected) and all(low <= t <= high for t in ticks)


def _colours(chart: charts.Chart) -> dict[str, str]:
    """Series → colour, from the layer whose colour encoding carries its scale."""
    for layer in chart.spec.get("layer", [chart.spec]):
        scale = (layer.get("encoding", {}).get("color") or {}).get("scale")
        if scale and "range" in scale:
            return dict(zip(scale["domain"], scale["range"]))
    raise AssertionError(f"{chart.name}: no colour scale")


def test_a_model_has_one_colour_on_every_chart_and_a_charts_series_are_told_apart():
    """The same model was red on one chart and blue on the next (each chart coloured its series in its own order).
    Now a model's colour is its place in its family: each report pair red (transposed) and blue (resize), on the
    curves, the per-digit bars, the spectra, and the operator lines of a factorial."""
    from arena.variants import VARIANTS

    section = {"profile": {"cycles_per_pixel": [0.0, 0.5], "model": [-1.0, -2.0], "real": [-1.0, -2.5]}}
    per_digit = {"conditional": {"per_class": {"accuracy": [0.9] * 10}}}
    by_family: dict[str, list[str]] = {}
    for name, v in VARIANTS.items():
        by_family.setdefault(v.family, []).append(name)
    seen: dict[str, set[str]] = {}
    for family, names in by_family.items():
        for some in (names, names[::-1], names[1:], names[:2]):  # which models a chart holds, in any order
            made = [
                charts.curve_chart({n: [(1, 1.0 + i), (2, 2.0)] for i, n in enumerate(some)}, "Fréchet"),
                *charts.per_class_charts({n: per_digit for n in some}),
                profile_chart({n: section for n in some}, "spectrum"),
            ]
            for chart in made:
                colours = _colours(chart)
                assert len(set(colours.values())) == len(colours), (chart.name, colours)  # told apart
                for n in some:
                    seen.setdefault(n, set()).add(colours[n])
        assert VARIANTS[names[1]].reference == names[0]  # the family's pair: its reference first, then its partner
        assert [charts.model_colour(n) for n in names[:2]] == list(charts.COLOURS[:2])
    assert all(len(c) == 1 for c in seen.values()), {n: c for n, c in seen.items() if len(c) > 1}
    design = {
        "factor": "network",
        "means": {
            "frechet": {
                f"{o}|{n}": {"mean": 1.0, "low": 0.0, "high": 2.0}
                for o in ("transpose", "resize")
                for n in ("tutorial", "shallow")
            }
        },
    }
    operators = _colours(charts.interaction_chart(design))
    assert operators[charts.OPERATORS["transpose"].words] == charts.model_colour("gan_transpose")
    assert operators[charts.OPERATORS["resize"].words] == charts.model_colour("gan_upsample")
    loss = _colours(charts.curve_chart({"generator": [(1, 1.0)], "discriminator": [(1, 2.0)]}, "loss"))
    assert len(set(loss.values())) == 2  # series that are not models take the palette's colours
