"""The spectral pictures (issue 39), drawn from what evaluation wrote (metrics.json `spectrum`, arena/spectra.py):
each model's mean 2-D log power spectrum as a heat map beside real digits', on one colour scale for every picture
the service shows, and a family's azimuthal averages on one chart with real digits as the reference."""

from __future__ import annotations

import io
from html import escape
from typing import Any, Iterable

import altair as alt
import numpy as np
from PIL import Image

from app.views.charts import Chart, memoized, rounded, series_colours, slug, vega_spec

# Viridis (perceptually uniform, readable in grey), sampled at nine even steps; interpolated linearly between.
VIRIDIS = (
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (40, 174, 128),
    (94, 201, 98),
    (173, 220, 48),
    (253, 231, 37),
)
# Blue – white – red for a difference from real digits, symmetric about zero (white: as real digits).
DIVERGING = (
    (33, 102, 172),
    (103, 169, 207),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (239, 138, 98),
    (178, 24, 43),
)
DC_GREY = (128, 128, 128)  # the centre bin: the mean is removed, so no power is drawn there
ZOOM = 6
NYQUIST = 0.5  # cycles per pixel


def spectrum_of(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """A model's spectrum section, when its evaluation wrote one."""
    return (metrics or {}).get("spectrum")


def _grid(rows: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], np.float64)


def picture(section: dict[str, Any], of: str) -> np.ndarray:
    """The log10 spectrum drawn for `of`: the model's, real digits', or their difference (model − real: decades
    above real digits' power)."""
    power = section["log10_power"]
    if of == "difference":
        return _grid(power["model"]) - _grid(power["real"])
    return _grid(power[of])


def colour_scale(sections: Iterable[dict[str, Any] | None], of: str = "model") -> tuple[float, float] | None:
    """(low, high) over every given section's pictures of the kind `of` draws — model and real share one scale; a
    difference's is symmetric about 0 — so colours compare across models and pages."""
    sections = [s for s in sections if s]
    if not sections:
        return None
    if of == "difference":
        reach = max(float(np.nanmax(np.abs(picture(s, of)))) for s in sections)
        return (-reach, reach)
    values = np.concatenate([picture(s, side).ravel() for s in sections for side in ("model", "real")])
    return float(np.nanmin(values)), float(np.nanmax(values))


def _ramp(t: np.ndarray, anchors) -> np.ndarray:
    """RGB for values in [0, 1] along the anchors, interpolated linearly."""
    anchors = np.asarray(anchors, np.float64)
    x = np.clip(np.nan_to_num(t), 0.0, 1.0) * (len(anchors) - 1)
    i = np.minimum(x.astype(int), len(anchors) - 2)
    f = (x - i)[..., None]
    return np.rint(anchors[i] * (1 - f) + anchors[i + 1] * f).astype(np.uint8)


def ramp_of(of: str):
    return DIVERGING if of == "difference" else VIRIDIS


def spectrum_png(grid: np.ndarray, scale: tuple[float, float], of: str = "model", zoom: int = ZOOM) -> bytes:
    """A centred spectrum picture as a heat map (DC in the middle, grey; Nyquist at the top and left edges), each bin
    a zoom × zoom square."""
    lo, hi = scale
    rgb = _ramp((grid - lo) / ((hi - lo) or 1.0), ramp_of(of))
    rgb[np.isnan(grid)] = DC_GREY
    image = Image.fromarray(rgb, "RGB").resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _power_of_ten(e: float, digits: int = 1) -> str:
    return f'10<tspan baseline-shift="super" font-size="8">{e:.{digits}f}</tspan>'.replace("-", "−")


def colour_bar_svg(scale: tuple[float, float], of: str = "model", width: int = 440) -> str:
    """A heat map's key: its colour ramp from the scale's low to high end."""
    lo, hi = scale
    anchors = ramp_of(of)
    gradient = f"ramp-{of}"
    stops = "".join(f'<stop offset="{i / (len(anchors) - 1):.3f}" stop-color="rgb{c}"/>' for i, c in enumerate(anchors))
    if of == "difference":
        ends = (f"{lo:+.1f} decades", f"{hi:+.1f} decades")
        what = "model − real digits, log10 power (red: more power than real digits)"
    else:
        ends = (_power_of_ten(lo), _power_of_ten(hi))
        what = "share of an image's non-DC power per frequency bin (log scale)"
    return (
        f'<svg class="colour-bar" role="img" viewBox="0 0 {width} 44" width="{width}" height="44" '
        f'aria-label="colour scale from {lo:.1f} to {hi:.1f}: {escape(what)}">'
        f'<defs><linearGradient id="{gradient}">{stops}</linearGradient></defs>'
        f'<rect x="0" y="2" width="{width}" height="12" fill="url(#{gradient})"/>'
        f'<text x="0" y="27" font-size="10" fill="currentColor">{ends[0]}</text>'
        f'<text x="{width}" y="27" font-size="10" fill="currentColor" text-anchor="end">{ends[1]}</text>'
        f'<text x="0" y="41" font-size="10" fill="#888">{escape(what)}</text></svg>'
    )


@memoized
def profile_chart(sections: dict[str, dict[str, Any]], title: str) -> Chart | None:
    """Each model's azimuthal average of the mean power spectrum and real digits' (dashed) on one log-scale chart,
    Nyquist marked. The sections store decades (log10 of power). None without data."""
    sections = {k: v for k, v in sections.items() if v}
    if not sections:
        return None
    first = next(iter(sections.values()))["profile"]
    series = [(name, s["profile"]["cycles_per_pixel"], s["profile"]["model"]) for name, s in sections.items()]
    series.append(("real digits", first["cycles_per_pixel"], first["real"]))
    rows = [
        {"model": name, "frequency": x, "power": 10.0**v, "kind": "real" if name == "real digits" else "model"}
        for name, xs, vs in series
        for x, v in zip(xs, vs)
        if v is not None
    ]
    names = [name for name, _, _ in series]
    chart = alt.layer(
        alt.Chart(alt.Data(values=rows))
        .mark_line(strokeWidth=1.6)
        .encode(
            x=alt.X("frequency:Q", title=["radial frequency (cycles per pixel;", "0.71 at the corner)"]),
            y=alt.Y("power:Q", scale=alt.Scale(type="log"), title="power (share of non-DC energy)"),
            color=alt.Color(
                "model:N",
                title=None,
                sort=names,
                scale=series_colours(names, **{"real digits": "#222"}),
            ),
            strokeDash=alt.StrokeDash(
                "kind:N", legend=None, scale=alt.Scale(domain=["model", "real"], range=[[1, 0], [5, 3]])
            ),
            tooltip=["model:N", alt.Tooltip("frequency:Q", format=".3f"), alt.Tooltip("power:Q", format=".3g")],
        ),
        alt.Chart(alt.Data(values=[{"Nyquist": NYQUIST}]))
        .mark_rule(strokeDash=[3, 3], color="#888")
        .encode(x="Nyquist:Q", tooltip=["Nyquist:Q"]),
    )
    return Chart(
        name=slug(title),
        title=title,
        spec=vega_spec(chart, title, height=240),
        columns=("model", "cycles per pixel", "power (share of non-DC energy)"),
        rows=[(r["model"], rounded(r["frequency"], 4), rounded(r["power"], 4)) for r in rows],
    )


def spectra_view(names: list[str], metrics: dict[str, dict[str, Any] | None], title: str) -> dict[str, Any] | None:
    """What a page shows: the models with a spectrum (in order), their sample count, the profile chart, and the colour
    bar of `scale`; None when none of them was evaluated with one."""
    sections = {n: spectrum_of(metrics.get(n)) for n in names}
    sections = {n: s for n, s in sections.items() if s}
    if not sections:
        return None
    return {
        "models": [{"name": n, "samples": s["samples"]} for n, s in sections.items()],
        "missing": [n for n in names if n not in sections],
        "samples": " / ".join(f"{n:,}" for n in sorted({s["samples"] for s in sections.values()})),
        "real_samples": next(iter(sections.values())).get("real_samples"),
        "crop": next(iter(sections.values()))["crop_pixels"],
        "size": next(iter(sections.values()))["size"],
        "profile": profile_chart(sections, title),
    }
