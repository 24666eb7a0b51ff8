"""Serving conditional generators: a digit on request, the class grid, labels in the body, and the refusals."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from arena.images import render_grid
from arena.latents import CLASSES, latents_from_seed, latents_from_seeds, with_labels
from arena.variants import VARIANTS
from tests.test_service import pixels, tiles

CGAN = next(n for n, v in VARIANTS.items() if v.classes and v.facts.kind == "gan")
CVAE = next(n for n, v in VARIANTS.items() if v.classes and v.facts.kind == "vae")
RAW = {"scale": 1, "padding": 0}


def grid(client, model, **params) -> bytes:
    r = client.post("/generate", params={"model": model, **RAW, **params})
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("model", [CGAN, CVAE])
def test_a_label_gives_n_images_of_that_digit_from_the_seeds_latents(client, model):
    entry = client.app.state.registry.get(model)
    got = grid(client, model, seed=11, n=5, nrow=5, label=7)
    rows = with_labels(latents_from_seed(11, 5, entry.latent_dim), [7] * 5)
    np.testing.assert_array_equal(pixels(got), np.asarray(render_grid(entry.decoder.decode_now(rows), nrow=5, **RAW)))
    other = grid(client, model, seed=11, n=5, nrow=5, label=1)
    assert not np.array_equal(pixels(got), pixels(other)), "the label must change the images"


@pytest.mark.parametrize("model", [CGAN, CVAE])
def test_the_class_grid_has_a_row_per_digit_with_the_same_latents(client, model):
    r = client.post("/generate", params={"model": model, "seed": 5, "n": 3, "format": "json", **RAW})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["n"] == 30 and doc["nrow"] == 3 and doc["seed"] == 5
    assert doc["labels"] == [d for d in range(CLASSES) for _ in range(3)]
    png = base64.b64decode(doc["png_base64"])
    assert pixels(png).shape == (28 * CLASSES, 28 * 3)
    cells = tiles(png, 30, 3)
    for digit in (0, 7, 9):  # row d is what label=d gives for the same seed: one style per column across digits
        alone = tiles(grid(client, model, seed=5, n=3, nrow=3, label=digit), 3, 3)
        np.testing.assert_array_equal(cells[digit * 3 : digit * 3 + 3], alone)
    default = client.post("/generate", params={"model": model, "seed": 5, **RAW})
    assert pixels(default.content).shape == (28 * CLASSES, 28 * 4)  # 4 columns unless n says otherwise


def test_labels_in_the_body_pair_with_seeds_and_latents(client):
    entry = client.app.state.registry.get(CVAE)
    body = client.post(
        "/generate", params={"model": CVAE, "nrow": 3, **RAW}, json={"seeds": [4, 9, 4], "labels": [2, 2, 8]}
    )
    assert body.status_code == 200, body.text
    rows = with_labels(latents_from_seeds([4, 9, 4], entry.latent_dim), [2, 2, 8])
    np.testing.assert_array_equal(
        pixels(body.content), np.asarray(render_grid(entry.decoder.decode_now(rows), nrow=3, **RAW))
    )
    explicit = client.post(
        "/generate",
        params={"model": CVAE, "nrow": 3, **RAW},
        json={"latents": latents_from_seeds([4, 9, 4], entry.latent_dim).tolist(), "labels": [2, 2, 8]},
    )
    np.testing.assert_array_equal(pixels(explicit.content), pixels(body.content))
    single = tiles(grid(client, CVAE, seed=4, n=1, nrow=1, label=8), 1, 1)[0]
    np.testing.assert_array_equal(tiles(body.content, 3, 3)[2], single)  # seed 4's first latent as an 8


def test_grid_png_interpolation_and_manifold_take_the_label(client):
    g = client.get(f"/models/{CGAN}/grid.png", params={"seed": 3, "n": 2, "label": 4, **RAW})
    assert g.status_code == 200 and pixels(g.content).shape == (28, 56)
    classes = client.get(f"/models/{CGAN}/grid.png", params={"seed": 3, "n": 2, **RAW})
    np.testing.assert_array_equal(tiles(classes.content, 20, 2)[8:10], tiles(g.content, 2, 2))
    i = client.get(f"/models/{CGAN}/interpolate.png", params={"seed_a": 1, "seed_b": 2, "steps": 3, "label": 6})
    assert i.status_code == 200
    m = client.get(f"/models/{CVAE}/manifold.png", params={"size": 4, "label": 3})
    assert m.status_code == 200 and pixels(m.content).shape == (112, 112)
    assert not np.array_equal(
        pixels(m.content), pixels(client.get(f"/models/{CVAE}/manifold.png", params={"size": 4, "label": 5}).content)
    )
    recon = client.post("/generate", params={"model": CVAE, "mode": "reconstruct", "n": 4})
    assert recon.status_code == 200, recon.text


@pytest.mark.parametrize(
    ("params", "body", "status", "needles"),
    [
        ({"model": "gan_upsample", "label": 7}, None, 400, ["label=7", "unconditional", CGAN]),
        ({"model": "vae_upsample"}, {"seeds": [1], "labels": [3]}, 400, ["labels=[3]", "unconditional"]),
        ({"model": CGAN, "label": 10}, None, 422, ["label=10", "less than or equal to 9"]),
        ({"model": CGAN, "label": -1}, None, 422, ["label=-1", "greater than or equal to 0"]),
        ({"model": CGAN, "label": "seven"}, None, 422, ["label=seven", "valid integer"]),
        ({"model": CGAN, "n": 7}, None, 400, ["n=7", "columns, 1 … 6", "label=0 … 9"]),
        ({"model": CGAN, "n": 3, "nrow": 2}, None, 400, ["nrow=2", "one row per digit"]),
        ({"model": CGAN}, {"seeds": [1, 2]}, 422, ["labels", "conditional", "0 … 9"]),
        ({"model": CGAN}, {"seeds": [1, 2], "labels": [1]}, 422, ["'labels' has 1 entries", "one per seed (2)"]),
        ({"model": CGAN}, {"seeds": [1], "labels": [12]}, 422, ["less than or equal to 9"]),
        ({"model": CGAN, "label": 2}, {"seeds": [1], "labels": [1]}, 400, ["not both"]),
        ({"model": CVAE, "mode": "reconstruct", "label": 2}, None, 400, ["label=2", "their own labels"]),
    ],
)
def test_bad_labels_are_4xx_naming_the_value_and_what_is_accepted(client, params, body, status, needles):
    r = client.post("/generate", params=params, json=body)
    assert r.status_code == status, r.text
    for needle in needles:
        assert needle in r.text, (needle, r.text)


def test_routes_refuse_a_missing_or_unwanted_label(client):
    r = client.get(f"/models/{CGAN}/interpolate.png", params={"seed_a": 1, "seed_b": 2})
    assert r.status_code == 400 and "label is required" in r.text and CGAN in r.text
    r = client.get(f"/models/{CVAE}/manifold.png")
    assert r.status_code == 400 and "label is required" in r.text
    r = client.get("/models/gan_upsample/interpolate.png", params={"seed_a": 1, "seed_b": 2, "label": 1})
    assert r.status_code == 400 and "unconditional" in r.text


def test_models_api_says_which_models_are_conditional(client):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert models[CGAN]["classes"] == CLASSES and models["gan_upsample"]["classes"] == 0
    assert models[CVAE]["latent_dim"] == 2 and models[CVAE]["classes"] == CLASSES


@pytest.mark.parametrize("model", [CGAN, CVAE])
def test_a_conditional_interpolation_draws_the_digit_asked_for(client, model):
    """The row is the family's path between the two seeds' first latents, decoded with the label asked for; another
    digit gives another row (a route that dropped the label would fail both)."""
    from arena.latents import lerp, slerp
    from arena.variants import FAMILIES

    entry = client.app.state.registry.get(model)
    params = {"seed_a": 3, "seed_b": 8, "steps": 5, **RAW}
    got = client.get(f"/models/{model}/interpolate.png", params={**params, "label": 2})
    assert got.status_code == 200, got.text
    a, b = latents_from_seed(3, 1, entry.latent_dim)[0], latents_from_seed(8, 1, entry.latent_dim)[0]
    path = (slerp if FAMILIES[entry.family].interpolation == "slerp" else lerp)(a, b, 5)
    expected = render_grid(entry.decoder.decode_now(with_labels(path, [2] * 5)), nrow=5, **RAW)
    np.testing.assert_array_equal(pixels(got.content), np.asarray(expected))
    other = client.get(f"/models/{model}/interpolate.png", params={**params, "label": 9})
    assert not np.array_equal(pixels(got.content), pixels(other.content)), "the label must change the row"


def test_a_cvae_reconstruction_decodes_each_test_digit_with_its_own_label(client, tiny_data):
    """The shipped encodings carry each test digit's true label as the decoder's one-hot input, and the served grid
    decodes exactly those rows: with another digit's label the images differ."""
    entry = client.app.state.registry.get(CVAE)
    rows = entry.recon_latents[:6]
    codes = rows[:, entry.latent_dim :]
    np.testing.assert_array_equal(codes.argmax(1), tiny_data.y_test[:6])
    assert set(np.unique(codes)) == {0.0, 1.0} and (codes.sum(1) == 1).all()
    got = client.post("/generate", params={"model": CVAE, "mode": "reconstruct", "n": 6, "nrow": 6, **RAW})
    assert got.status_code == 200, got.text
    np.testing.assert_array_equal(
        pixels(got.content), np.asarray(render_grid(entry.decoder.decode_now(rows), nrow=6, **RAW))
    )
    shifted = with_labels(rows[:, : entry.latent_dim], [(int(d) + 1) % CLASSES for d in tiny_data.y_test[:6]])
    assert not np.array_equal(
        pixels(got.content), np.asarray(render_grid(entry.decoder.decode_now(shifted), nrow=6, **RAW))
    )
