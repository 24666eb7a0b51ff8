"""The kinds of grid: each one's image count and latents are what its route draws (known answers from the shared
latent functions, checked against the route's bytes, ETag and JSON), and app/serving/specs.py stays free of the web
framework, its refusals being domain exceptions that app/api/refusals.py maps to HTTP."""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from app.serving.specs import (
    ClassGrid,
    GridSpec,
    InterpolationGrid,
    LatentGrid,
    ManifoldGrid,
    ReconstructionGrid,
    SeedGrid,
    SeedListGrid,
    UnfitRequest,
)
from arena.images import png_bytes, render_grid
from arena.latents import class_grid, latents_from_seed, latents_from_seeds, lerp, slerp, with_labels

ROOT = Path(__file__).resolve().parents[1]
LATENTS = [[0.25] * 100, [-0.5] * 100, [1.0] * 100]


def test_only_the_encode_stage_of_the_serving_package_knows_the_web_framework():
    """setup (the registry), decode (specs), predict, shapes, the catalogue record and the decoder are plain Python;
    the encode stage alone writes HTTP responses."""
    stages = sorted((ROOT / "app" / "serving").glob("*.py"))
    assert {p.stem for p in stages} >= {"registry", "specs", "predict", "encode", "shapes", "catalogue", "decoder"}
    for path in stages:
        tree = ast.parse(path.read_text())
        named = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        named |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        web = {m for m in named if m.split(".")[0] in ("fastapi", "starlette")}
        assert bool(web) == (path.stem == "encode"), (path.name, web)


def _entry(client, name):
    return client.app.state.registry.get(name)


def _drawn(entry, spec: GridSpec, inputs: np.ndarray) -> bytes:
    """The PNG of these generator inputs in the spec's layout, decoded directly (no batcher, no cache)."""
    return png_bytes(render_grid(entry.decoder.decode_now(inputs), spec.nrow, spec.scale, spec.padding))


# (route request, model, spec, image count, known latents of the model, known generator inputs from those latents)
CASES = {
    "seed": (
        ("POST", "/generate?model=gan_upsample&seed=7&n=5&format=json", None),
        "gan_upsample",
        SeedGrid(7, 5),
        5,
        lambda e: latents_from_seed(7, 5, e.latent_dim),
        lambda e, z: z,
    ),
    "seed, one digit": (
        ("POST", "/generate?model=cgan_upsample&seed=7&n=5&label=3&format=json", None),
        "cgan_upsample",
        SeedGrid(7, 5).labelled(3),
        5,
        lambda e: latents_from_seed(7, 5, e.latent_dim),
        lambda e, z: with_labels(z, [3] * 5, e.classes),
    ),
    "seeds": (
        ("POST", "/generate?model=gan_upsample&format=json", {"seeds": [3, 1, 4]}),
        "gan_upsample",
        SeedListGrid((3, 1, 4)),
        3,
        lambda e: latents_from_seeds([3, 1, 4], e.latent_dim),
        lambda e, z: z,
    ),
    "latents": (
        ("POST", "/generate?model=gan_upsample&nrow=1&format=json", {"latents": LATENTS}),
        "gan_upsample",
        LatentGrid.of(np.asarray(LATENTS, np.float32), nrow=1),
        3,
        lambda e: np.asarray(LATENTS, np.float32),
        lambda e, z: z,
    ),
    "class grid": (
        ("POST", "/generate?model=cgan_upsample&seed=2&n=3&format=json", None),
        "cgan_upsample",
        ClassGrid(2, 3),
        30,
        lambda e: latents_from_seed(2, 3, e.latent_dim),
        lambda e, z: class_grid(z, e.classes)[0],
    ),
    "reconstruction": (
        ("POST", "/generate?model=vae_upsample&mode=reconstruct&n=5&format=json", None),
        "vae_upsample",
        ReconstructionGrid(5),
        5,
        lambda e: e.recon_latents[:5],
        lambda e, z: z,
    ),
    "interpolation (slerp)": (
        ("GET", "/models/gan_upsample/interpolate.png?seed_a=1&seed_b=2&steps=4", None),
        "gan_upsample",
        InterpolationGrid(1, 2, 4, scale=3, padding=2),
        4,
        lambda e: slerp(latents_from_seed(1, 1, e.latent_dim)[0], latents_from_seed(2, 1, e.latent_dim)[0], 4),
        lambda e, z: z,
    ),
    "interpolation (lerp, one digit)": (
        ("GET", "/models/cvae_upsample/interpolate.png?seed_a=1&seed_b=2&steps=3&label=5", None),
        "cvae_upsample",
        InterpolationGrid(1, 2, 3, scale=3, padding=2).labelled(5),
        3,
        lambda e: lerp(latents_from_seed(1, 1, e.latent_dim)[0], latents_from_seed(2, 1, e.latent_dim)[0], 3),
        lambda e, z: with_labels(z, [5] * 3, e.classes),
    ),
    "manifold": (
        ("GET", "/models/vae_upsample/manifold.png?size=3", None),
        "vae_upsample",
        ManifoldGrid(3, scale=1, padding=0),
        9,
        lambda e: np.array([[x, y] for y in norm.ppf([0.95, 0.5, 0.05]) for x in norm.ppf([0.05, 0.5, 0.95])]),
        lambda e, z: z,
    ),
}


@pytest.mark.parametrize("kind", CASES)
def test_each_kind_counts_and_draws_what_its_route_serves(client, kind):
    (method, path, body), name, spec, count, known_latents, known_inputs = CASES[kind]
    entry = _entry(client, name)
    r = client.request(method, path, json=body)
    assert r.status_code == 200, r.text
    assert spec.count == count
    latents = spec.latents(entry)
    np.testing.assert_allclose(latents, known_latents(entry), rtol=0, atol=1e-6)
    inputs = spec.inputs(entry)
    np.testing.assert_array_equal(inputs, known_inputs(entry, latents))
    png = base64.b64decode(r.json()["png_base64"]) if "format=json" in path else r.content
    assert png == _drawn(entry, spec, inputs)
    assert r.headers["etag"] == spec.etag(entry)
    if "format=json" in path:
        out = r.json()
        assert out["n"] == count and out["nrow"] == spec.nrow and out["mode"] == spec.mode
        assert out["labels"] == spec.asked_labels()


def test_a_grid_a_model_cannot_draw_is_a_domain_refusal(client):
    with pytest.raises(UnfitRequest, match="2-d latent space; 'gan_upsample' has 100"):
        ManifoldGrid(3).latents(_entry(client, "gan_upsample"))
    assert client.get("/models/gan_upsample/manifold.png").status_code == 400


@pytest.mark.parametrize("kind", CASES)
def test_a_retrained_model_gets_new_etags_and_the_same_version_the_same(client, kind):
    """A cache or browser holding a grid's ETag must not get a 304 for a retrained model's grid: two entries that differ
    only in the served file's hash (the version) give different ETags for every kind of grid; the same version the
    same ETag. The served response's header is held to the first entry's (one home for the ETag)."""
    from dataclasses import replace

    (method, path, body), name, spec, *_ = CASES[kind]
    entry = _entry(client, name)
    files = entry.manifest["files"]
    retrained = replace(entry, manifest={**entry.manifest, "files": {**files, "generator.onnx": "f" * 64}})
    assert retrained.version != entry.version
    assert spec.etag(retrained) != spec.etag(entry)
    assert spec.etag(replace(entry, manifest=dict(entry.manifest))) == spec.etag(entry)
    r = client.request(method, path, json=body)
    assert r.headers["etag"] == spec.etag(entry) != spec.etag(retrained)
