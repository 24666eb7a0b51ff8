"""Server-rendered pages: the comparison, a page per model, About and the API reference."""

from __future__ import annotations

import gzip
import json
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import RegistryDep, SettingsDep
from app.serving.catalogue import architecture
from app.serving.specs import CLASS_COLUMNS, MAX_CLASS_COLUMNS
from app.views.about_tables import COND_COLUMNS, PAGE_COLUMNS, conditional_rows, header_rows, machine_notes
from app.views.charts import curve_chart, forest_chart, interaction_chart, per_class_charts, replicate_view
from app.views.findings import (
    comparison_findings,
    factorial_findings,
    reading_order,
    study_effect_note,
    study_progress,
    study_provenance,
)
from app.views.key_figures import figures_for, legend, rests_on
from app.views.spectrum_pictures import colour_bar_svg, colour_scale, picture, spectra_view, spectrum_of, spectrum_png
from app.views.strip import strip_rows
from arena.ablation import ablation_rows
from arena.images import png_bytes, render_grid
from arena.latents import CLASSES, MAX_SEED
from arena.readouts import HISTORY_WORDS, LOSSES, training_curves
from arena.records import MANIFEST, METRICS_FILE, generator_file
from arena.stats import METRIC, estimate_text, p_text, with_note
from arena.variants import FAMILIES, OPERATORS, VARIANTS, Factorial

APP = Path(__file__).resolve().parents[1]
# An installed package carries the templates as app/templates (package data); a checkout has them at the top level.
TEMPLATES = APP / "templates" if (APP / "templates").is_dir() else APP.parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))


def as_text(value: Any) -> str:
    """A stored setting as a reader reads it: no value is "–", a shape is "batch × 7 × 7 × 256", a pair of numbers
    "5 × 5"; never Python's None or list syntax."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return " × ".join("batch" if v is None else as_text(v) for v in value) if value else "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def code_spans(text: str) -> Markup:
    """A generated sentence shared with the Markdown docs, for a page: its `command` spans as <code>, the rest
    escaped (a reader never sees a Markdown backtick)."""
    parts = str(text).split("`")
    return Markup("").join(Markup("<code>%s</code>") % p if i % 2 else escape(p) for i, p in enumerate(parts))


templates.env.filters["text"] = as_text
templates.env.filters["code"] = code_spans
templates.env.filters["estimate"] = estimate_text
templates.env.filters["p"] = p_text
templates.env.filters["with_note"] = with_note
templates.env.filters["effect_note"] = study_effect_note
router = APIRouter(include_in_schema=False)

N_CHOICES = (4, 9, 16, 25, 36, 64)
ZOOM_CHOICES = (1, 2, 3, 4, 6, 8)
GROUPS = tuple(
    (f.name, f"{f.title}: transposed vs resize-convolution", f.short, names)
    for f in FAMILIES.values()
    if (names := tuple(v.name for v in VARIANTS.values() if v.family == f.name))
)
LABEL_CHOICES = tuple(range(CLASSES))
# Files of a model folder that pages may link to; nothing else in the store is served.
SERVABLE = {"progress.gif", METRICS_FILE, MANIFEST}
METRIC_WORDS = {k: m.label for k, m in METRIC.items()}  # a metric key as the model page names it


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    registry = request.app.state.registry
    base = {
        "version": request.app.version,
        "nav_models": list(registry.entries),
        "notices": [],
        "has_rating": getattr(request.app.state, "ratings", None) is not None,
    }
    page = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    return compressed(request, page)


GZIP_FROM = 16 * 1024  # bytes: a page with charts carries their specs and tables (the comparison page ~780 KB)


def compressed(request: Request, page: HTMLResponse) -> HTMLResponse:
    """The page gzipped where the browser accepts it and it is large enough to gain (the comparison page: 784 KB to
    144 KB in about 20 ms); the grids and other binary responses are never touched."""
    if len(page.body) < GZIP_FROM or "gzip" not in request.headers.get("accept-encoding", ""):
        return page
    headers = {k: v for k, v in page.headers.items() if k.lower() != "content-length"}
    out = HTMLResponse(gzip.compress(page.body, compresslevel=1), status_code=page.status_code, headers=headers)
    out.headers["content-encoding"] = "gzip"
    out.headers["vary"] = "Accept-Encoding"
    return out


def parse_int(
    raw: str | None,
    name: str,
    default: int,
    lo: int,
    hi: int,
    notices: list[str],
    choices: tuple[int, ...] | None = None,
) -> int:
    """A page's query value, or the default with a notice saying what was wrong (pages never 422)."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        notices.append(
            f"{name} {raw[:40]!r} is not a whole number; showing {name} {default} instead (accepted: {lo} … {hi})."
        )
        return default
    if not lo <= value <= hi or (choices and value not in choices):
        accepted = ", ".join(map(str, choices)) if choices else f"{lo} … {hi}"
        notices.append(f"{name} {value} is out of range; showing {name} {default} instead (accepted: {accepted}).")
        return default
    return value


def parse_models(raw: list[str], known: list[str], notices: list[str]) -> list[str] | None:
    """`?models=a,b` (or `?models=a&models=b`): the subset to show, in the page's order; None shows every model.
    Unknown names are dropped with a notice naming them and the accepted ones."""
    asked = [n.strip() for part in raw for n in part.split(",") if n.strip()]
    if not asked:
        return None
    unknown = [n for n in asked if n not in known]
    if unknown:
        notices.append(
            f"models: {', '.join(repr(n[:40]) for n in unknown[:5])} "
            f"{'is' if len(unknown) == 1 else 'are'} not a model here; accepted: {', '.join(known)}."
        )
    chosen = [n for n in known if n in asked]
    if not chosen:
        notices.append("none of the requested models exists; showing every model.")
        return None
    return chosen


def families_shown(registry) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(family, title, label, names) per family: the table's variants first (the report's pair, then its controls),
    then models imported into the store."""
    return [
        (
            family,
            title,
            label,
            table_names
            + tuple(
                n
                for n, e in registry.entries.items()
                if n not in VARIANTS and (e.manifest or {}).get("family") == family
            ),
        )
        for family, title, label, table_names in GROUPS
    ]


def model_card(name: str, e) -> dict[str, Any]:
    """What the comparison page shows of one model beside its grid."""
    return {
        "name": name,
        "status": e.status,
        "reason": e.reason,
        "upsampling": e.manifest.get("upsampling") or VARIANTS[name].upsampling,
        "architecture": architecture(name, e.manifest),
        "figures": figures_for(e.manifest, e.metrics) if e.manifest else [],
        "rests_on": rests_on(e.manifest, e.metrics) if e.manifest else None,
        "classes": e.classes if e.manifest else 0,
    }


def family_group(registry, family: str, title: str, label: str, names: list[str]) -> dict[str, Any]:
    """One family's part of the comparison page: its models, replicate charts, training curves and per-digit bars."""
    models = [model_card(name, registry.entries[name]) for name in names if name in registry.entries]
    curves = {
        name: training_curves(registry.entries[name].manifest, "curve_checkerboard_ratio")
        for name in names
        if name in registry.entries
    }
    bands = {name: replicate_band(registry, name, "curve_checkerboard_ratio") for name in curves}
    return {
        "family": family,
        "title": title,
        "family_label": label,
        "models": models,
        "replicates": replicate_view(registry.replicate_statistics, [m["name"] for m in models]),
        "curves": curve_chart(
            curves,
            f"{label}: checkerboard index (× real digits) during training",
            log_y=True,
            bands=bands,
            lowest=METRIC["checkerboard_ratio"].lowest,
        ),
        "curve_models": sorted(k for k, v in curves.items() if v),
        "per_class": per_class_charts({m["name"]: registry.entries[m["name"]].metrics for m in models}),
        "spectrum_bars": colour_bars(registry, family),
        "spectra": spectra_view(
            [m["name"] for m in models],
            {m["name"]: registry.entries[m["name"]].metrics for m in models},
            f"{label}: azimuthal average of the mean power spectrum",
        ),
    }


def warm_charts(registry) -> None:
    """Build the charts of the comparison page (every model shown), its findings and every model page once, so the
    first requests find them built (app/views/charts.py keeps each by its data)."""
    try:
        for family, title, label, names in families_shown(registry):
            family_group(registry, family, title, label, names)
        findings_context(registry.replicate_statistics)
        for name in list(registry.entries):
            model_charts(registry, name)
    except Exception as e:  # a warm-up never stops the service: the page builds what it lacks
        logging.getLogger("arena").warning(json.dumps({"event": "warm_charts_failed", "error": repr(e)}))


VIEWS = ("samples", "artefacts")  # what a grid shows: the images, or their period-2 component (arena/artefacts.py)


@router.get("/", response_class=HTMLResponse)
def compare(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    q, notices = request.query_params, []
    if q.get("random"):
        keep = "".join(f"&models={quote(m)}" for m in q.getlist("models"))
        return RedirectResponse(
            f"/?seed={secrets.randbelow(MAX_SEED + 1)}&n={q.get('n', 16)}&zoom={q.get('zoom', 3)}{keep}",
            status_code=303,
        )
    seed = parse_int(q.get("seed"), "seed", settings.default_seed, 0, MAX_SEED, notices)
    n = parse_int(q.get("n"), "n", 16, 1, 64, notices, N_CHOICES)
    zoom = parse_int(q.get("zoom"), "zoom", 3, 1, 8, notices, ZOOM_CHOICES)
    view = q.get("view", "samples")
    if view not in VIEWS:
        notices.append(f"view {view[:40]!r} is not one of {', '.join(VIEWS)}; showing samples.")
        view = "samples"
    families = families_shown(registry)
    every = [n for *_, names in families for n in names]
    selected = parse_models(q.getlist("models"), every, notices)
    groups = []
    for family, title, label, all_names in families:
        names = [n for n in all_names if selected is None or n in selected]
        if names:
            groups.append(family_group(registry, family, title, label, names))
    choices = [
        {"label": label, "names": [{"name": m, "checked": selected is None or m in selected} for m in names]}
        for _, _, label, names in families
    ]
    ctx = {
        "nav": "compare",
        **findings_context(registry.replicate_statistics, people_by_pair(request, registry)),
        "strip": strip_rows(registry.replicate_statistics),
        "seed": seed,
        "n": n,
        "zoom": zoom,
        "view": view,
        "groups": groups,
        "models_param": ",".join(selected) if selected else "",
        "choices": choices,
        "shown": len(selected or every),
        "total": len(every),
        "legend": legend(),
        "n_choices": N_CHOICES,
        "class_columns": class_columns(n),
        "columns_by_n": json.dumps({str(k): class_columns(k) for k in N_CHOICES}),
        "zoom_choices": ZOOM_CHOICES,
        "default_seed": settings.default_seed,
        "notices": notices,
    }
    return render(request, "index.html", ctx)


def class_columns(n: int) -> int:
    """A conditional model's class grid for the page's image count: one row per digit, about n / 10 columns (2 … 6)."""
    return min(MAX_CLASS_COLUMNS, max(2, -(-n // CLASSES)))


def not_found(request: Request, name: str) -> HTMLResponse:
    known = ", ".join(request.app.state.registry.entries)
    return render(
        request,
        "error.html",
        {
            "nav": "",
            "title": "No such model",
            "message": f"There is no model called “{name[:64]}”. The models are: {known}.",
        },
        status=404,
    )


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str, registry: RegistryDep, settings: SettingsDep) -> Response:
    if name not in registry.entries:
        return not_found(request, name)
    e, notices = registry.get(name), []
    q = request.query_params
    seed = parse_int(q.get("seed"), "seed", settings.default_seed, 0, MAX_SEED, notices)
    seed_a = parse_int(q.get("a"), "a", 1, 0, MAX_SEED, notices)
    seed_b = parse_int(q.get("b"), "b", 2, 0, MAX_SEED, notices)
    label = None  # a conditional model's digit; none: its class grid
    if e.classes and q.get("label") not in (None, "", "all"):
        label = parse_int(q.get("label"), "label", 0, 0, CLASSES - 1, notices)
    elif q.get("label") not in (None, "", "all"):
        notices.append(f"label {q.get('label')[:40]!r} is ignored: {name} is unconditional (it takes no digit).")
    manifest = e.manifest or None
    frames = sorted(p.name for p in (registry.store / name / "progress").glob("epoch_*.png")) if manifest else []
    plots = sorted(p.name for p in (registry.store / name / "report").glob("*.png")) if manifest else []
    history_keys = list(
        dict.fromkeys(
            k for h in (manifest or {}).get("history") or [] for k in h if k not in ("epoch", "seconds", "steps")
        )
    )
    ctx = {
        "nav": name,
        "m": e.summary(),
        "manifest": manifest,
        "metrics": e.metrics,
        "figures": figures_for(e.manifest, e.metrics) if manifest else [],
        "frames": frames,
        "plots": plots,
        "history_keys": history_keys,
        "history_words": HISTORY_WORDS,
        "metric_words": METRIC_WORDS,
        "frame_epochs": [int(f[len("epoch_") : -len(".png")]) for f in frames],
        "seed": seed,
        "seed_a": seed_a,
        "seed_b": seed_b,
        "label": label,
        "kind": FAMILIES[e.family].kind if e.family in FAMILIES else e.family,
        "family_title": FAMILIES[e.family].title if e.family in FAMILIES else str(e.family).upper(),
        "label_choices": LABEL_CHOICES if e.classes else (),
        "class_columns": CLASS_COLUMNS,
        "spectrum_bars": colour_bars(registry, e.family),
        "generator_file": generator_file(manifest) if manifest else None,
        "notices": notices,
        **model_charts(registry, name),
    }
    return render(request, "model.html", ctx)


def model_charts(registry, name: str) -> dict[str, Any]:
    """A model page's charts: its losses, per-digit bars, spectrum profile, replicate intervals and training curves."""
    e = registry.entries[name]
    manifest = e.manifest or None
    losses = {HISTORY_WORDS[k]: curve for k in LOSSES if (curve := training_curves(manifest, k))}
    return {
        "loss_chart": curve_chart(losses, "losses per epoch", series_name="loss") if losses else None,
        "per_class": per_class_charts({name: e.metrics}),
        "spectra": spectra_view([name], {name: e.metrics}, f"{name}: azimuthal average of the mean power spectrum"),
        "replicates": replicate_view(
            registry.replicate_statistics, [name] + [c["b"] if c["a"] == name else c["a"] for c in e.comparisons]
        ),
        "curves": model_curves(
            name,
            manifest,
            {k: replicate_band(registry, name, k) for k in ("curve_checkerboard_ratio", "curve_frechet")},
        ),
    }


def replicate_band(registry, name: str, key: str) -> list[tuple[int, float, float]]:
    """(epoch, low, high) of a curve over the replicates trained with the served run's budget (none: empty)."""
    entry = registry.entries.get(name)
    profile = ((entry.manifest or {}).get("config") or {}).get("profile") if entry is not None else None
    stats = ((registry.replicate_statistics or {}).get("models") or {}).get(name, {}).get(profile or "", {})
    return [
        (p["epoch"], p["low"], p["high"]) for p in (stats.get("curves") or {}).get(key, []) if p.get("low") is not None
    ]


def model_curves(name: str, manifest: dict[str, Any] | None, bands: dict[str, list] | None = None) -> dict[str, Any]:
    """The training curves of one model: two charts, and from which epoch they exist (a resumed run, or one trained
    before curves were recorded, has none for its earlier epochs)."""
    cb, fd = training_curves(manifest, "curve_checkerboard_ratio"), training_curves(manifest, "curve_frechet")
    done = (manifest or {}).get("epochs_done") or 0
    first = cb[0][0] if cb else None
    cost = [h["curve_seconds"] for h in (manifest or {}).get("history") or [] if h.get("curve_seconds") is not None]
    return {
        "charts": [
            chart
            for chart in (
                curve_chart(
                    {name: cb},
                    "checkerboard index (× real digits), 2,000 samples",
                    log_y=True,
                    bands={name: (bands or {}).get("curve_checkerboard_ratio", [])},
                    lowest=METRIC["checkerboard_ratio"].lowest,
                ),
                curve_chart(
                    {name: fd},
                    "Fréchet distance (classifier features), 2,000 samples",
                    bands={name: (bands or {}).get("curve_frechet", [])},
                    lowest=METRIC["frechet"].lowest,
                ),
            )
            if chart
        ]
        if cb or (bands and any(bands.values()))
        else [],
        "banded": bool(bands and any(bands.values())),
        "own": bool(cb),
        "first_epoch": first,
        "epochs_done": done,
        "partial": bool(first and first > 1),
        "seconds_mean": round(sum(cost) / len(cost), 2) if cost else None,
    }


@router.get("/models/{name}/files/{path:path}")
def model_file(request: Request, name: str, path: str, registry: RegistryDep) -> Response:
    parts = Path(path).parts
    allowed = path in SERVABLE or (
        len(parts) == 2 and parts[0] in ("progress", "report") and parts[1].endswith(".png") and ".." not in parts
    )
    file = registry.store / name / path
    if name not in registry.entries or not allowed or not file.is_file():
        return Response('{"detail": "no such file"}', status_code=404, media_type="application/json")
    return FileResponse(file, headers={"Cache-Control": "public, max-age=300"})


SPECTRUM_OF = ("model", "real", "difference")


def spectrum_scale(registry, family: str | None, of: str = "model") -> tuple[float, float] | None:
    """One colour scale for a family's spectrum pictures of a kind: the range over all its models (and real digits),
    so a colour means the same power on the comparison page and on each of its models' pages."""
    return colour_scale((spectrum_of(e.metrics) for e in registry.entries.values() if e.family == family), of)


def colour_bars(registry, family: str | None) -> dict[str, str]:
    """The keys of a family's two kinds of spectrum picture: power, and difference from real digits."""
    return {
        of: colour_bar_svg(scale, of)
        for of in ("model", "difference")
        if (scale := spectrum_scale(registry, family, of))
    }


@router.get("/models/{name}/spectrum.png")
def spectrum_picture(request: Request, name: str, registry: RegistryDep) -> Response:
    """The model's mean 2-D log power spectrum (`of=model`, the default), real digits' (`of=real`) or the difference
    (`of=difference`, model − real), as a heat map on the service's one colour scale for that kind."""
    of = request.query_params.get("of", "model")
    if of not in SPECTRUM_OF:
        return Response(
            json.dumps({"detail": f"of={of[:40]!r} is not accepted; accepted: {', '.join(SPECTRUM_OF)}"}),
            status_code=400,
            media_type="application/json",
        )
    e = registry.entries.get(name)
    section = spectrum_of(e.metrics) if e is not None else None
    if section is None:
        why = "no such model" if e is None else f"{name} has no spectrum yet: deconv-arena evaluate --variant {name}"
        return Response(json.dumps({"detail": why}), status_code=404, media_type="application/json")
    png = spectrum_png(picture(section, of), spectrum_scale(registry, e.family, of), of)
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=300"})


@router.get("/models/{name}/test_digits.png")
def test_digits(request: Request, name: str, registry: RegistryDep) -> Response:
    e = registry.entries.get(name)
    if e is None or e.recon_digits is None:
        return Response(
            '{"detail": "this model has no shipped test digits (VAEs only)"}',
            status_code=404,
            media_type="application/json",
        )
    png = png_bytes(render_grid(e.recon_digits.astype("float32") / 255.0, nrow=8, scale=2, padding=2))
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/about", response_class=HTMLResponse)
def about(request: Request, registry: RegistryDep) -> Response:
    ablation, machines = machine_notes(ablation_rows(registry.store))
    return render(
        request,
        "about.html",
        {
            "nav": "about",
            "legend": legend(),
            "ablation": ablation,
            "machines": machines,
            "columns": PAGE_COLUMNS,
            "header": header_rows(),
            "conditional": conditional_rows(registry.store),
            "conditional_columns": COND_COLUMNS,
            "plan_files": plan_files((registry.replicate_statistics or {}).get("studies", [])),
            **findings_context(registry.replicate_statistics, people_by_pair(request, registry)),
        },
    )


def plan_files(studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every plan file, replaced versions too, for the About page's list: its path, hash, when git shows it
    committed (minutes, UTC) and whether a newer version replaced it before any run (the pages then leave it out)."""
    import datetime as dt

    shown = {st["plan"] for st in reading_order(studies)}
    out = []
    for st in studies:
        when = st.get("committed_at")
        stamp = dt.datetime.fromisoformat(when).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if when else None
        out.append({**st, "committed": stamp, "replaced": st["plan"] not in shown})
    return out


def people_by_pair(request: Request, registry) -> dict[frozenset, dict]:
    """People's verdict per campaign question, by pair; empty while the vote store is unavailable (the comparison
    page never fails for it)."""
    from app.ratings.analysis import cached_campaign
    from app.store import StoreUnavailable

    ratings = getattr(request.app.state, "ratings", None)
    if ratings is None:
        return {}
    try:
        campaign = cached_campaign(ratings, registry)
    except (StoreUnavailable, SQLAlchemyError):
        return {}
    return {frozenset((q["a"], q["b"])): q for q in campaign["questions"] if q["served"]}


def findings_context(stats: dict | None, people: dict[frozenset, dict] | None = None) -> dict:
    """The generated conclusions: each question's verdict on its primary metric (with a forest plot, and people's
    verdict on the same pair of served models where the campaign asks it) and the operator × network factorial (cell
    means, interaction plot, effects)."""
    stats = stats or {}
    questions, designs = comparison_findings(stats), factorial_findings(stats)
    for f in questions:
        f["people"] = (people or {}).get(frozenset((f["a"], f["b"])))
    for d in designs:
        d["plot"] = interaction_chart(d["design"]) if d.get("design") else None
        d["operators"] = [(o, OPERATORS[o].short) for o in Factorial.OPERATORS]
    return {
        "findings": questions,
        "factorials": designs,
        "forest": forest_chart(questions),
        "stats_method": stats.get("method"),
        "studies": [
            {
                **st,
                "rows": st["study"] or st["exploratory"],
                "own": bool(st["study"]),
                "progress": study_progress(st),
                "provenance": study_provenance(st),
            }
            for st in reading_order(stats.get("studies", []))
        ],
    }


# The API reference: the standard Swagger UI, its assets served by the app itself from the fastapi-offline package
# (no CDN); our own small script starts it, so the page needs no inline script. ReDoc is left out: its standalone
# bundle loads the Redocly logo from its CDN whatever the options, so it cannot be served offline unpatched.
API_DOCS_CSP = (  # Swagger UI sets style attributes as it renders; scripts stay 'self' only
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def swagger_ui(request: Request) -> Response:
    response = render(request, "swagger.html", {"nav": "docs"})
    response.headers["Content-Security-Policy"] = API_DOCS_CSP
    return response


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return FileResponse(
        Path(__file__).resolve().parents[1] / "static" / "favicon.png",
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
