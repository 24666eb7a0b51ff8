"""The generation service: loading, reproducibility, caching, batching, bad input, observability."""

from __future__ import annotations

import base64
import io
import shutil
import zlib

import numpy as np
import pytest
from PIL import Image

from arena.images import png_bytes, render_grid
from arena.latents import latents_from_seed
from app.core.settings import DEFAULT_BUCKETS
from app.registry import Registry
from app.shapes import plan
from tests.conftest import ROOT, make_client, wait_ready
from arena.variants import VARIANTS


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def tiles(png: bytes, n: int, nrow: int, scale: int = 1, padding: int = 0) -> np.ndarray:
    img, t = pixels(png), 28 * scale
    return np.stack([img[padding + (i // nrow) * (t + padding) :][:t, padding + (i % nrow) * (t + padding) :][:, :t] for i in range(n)])


def test_health_ready_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] and set(ready["models"]) == set(VARIANTS)
    for m in ready["models"].values():  # each compiled shape is served through or rejected with a reason
        assert m["batch_shapes"] and sorted(m["batch_shapes"] + [int(s) for s in m["rejected_batch_shapes"]]) == list(DEFAULT_BUCKETS), m
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert models["gan_transpose"]["params"] == 2_330_944 and models["vae_upsample"]["latent_dim"] == 2
    full = client.get("/api/models/vae_transpose").json()
    assert full["manifest"]["files"]["generator.keras"].startswith(full["version"])


def test_generate_png_headers_and_size(client):
    r = client.post("/generate", params={"model": "gan_upsample", "seed": 7, "n": 6, "nrow": 3, "scale": 2, "padding": 1})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-model"] == "gan_upsample" and r.headers["x-seed"] == "7" and r.headers["etag"]
    assert Image.open(io.BytesIO(r.content)).size == (3 * 56 + 4, 2 * 56 + 3)
    assert "decode;" in r.headers["server-timing"] and "render;" in r.headers["server-timing"]
    again = client.post("/generate", params={"model": "gan_upsample", "seed": 7, "n": 6, "nrow": 3, "scale": 2, "padding": 1})
    assert again.headers["server-timing"] == 'cache;desc="hit"' and again.content == r.content


def test_same_seed_same_pixels_and_prefix_property(client):
    a = client.post("/generate", params={"model": "gan_transpose", "seed": 11, "n": 16, "nrow": 16, "scale": 1, "padding": 0}).content
    client.app.state.cache._items.clear()
    b = client.post("/generate", params={"model": "gan_transpose", "seed": 11, "n": 16, "nrow": 16, "scale": 1, "padding": 0}).content
    assert a == b
    small = client.post("/generate", params={"model": "gan_transpose", "seed": 11, "n": 5, "nrow": 5, "scale": 1, "padding": 0}).content
    np.testing.assert_array_equal(tiles(small, 5, 5), tiles(a, 16, 16)[:5])


def test_image_i_is_row_i_of_the_seeds_latents(client):
    registry = client.app.state.registry
    entry = registry.get("vae_upsample")
    expected = render_grid(entry.decode_now(latents_from_seed(99, 4, 2)), nrow=4, scale=1, padding=0)
    got = client.post("/generate", params={"model": "vae_upsample", "seed": 99, "n": 4, "nrow": 4, "scale": 1, "padding": 0}).content
    np.testing.assert_array_equal(pixels(got), np.asarray(expected))
    explicit = client.post("/generate", params={"model": "vae_upsample", "nrow": 4, "scale": 1, "padding": 0}, json={"latents": latents_from_seed(99, 4, 2).tolist()}).content
    np.testing.assert_array_equal(pixels(explicit), pixels(got))


def test_seed_omitted_returns_the_random_seed_used(client):
    r = client.post("/generate", params={"model": "vae_transpose", "n": 4})
    seed = int(r.headers["x-seed"])
    again = client.post("/generate", params={"model": "vae_transpose", "n": 4, "seed": seed})
    assert again.content == r.content


def test_seeds_body_gives_one_image_per_seed(client):
    r = client.post("/generate", params={"model": "gan_upsample", "nrow": 3, "scale": 1, "padding": 0}, json={"seeds": [5, 6, 7]})
    assert r.headers["x-seed"] == "5,6,7"
    each = [tiles(client.post("/generate", params={"model": "gan_upsample", "seed": s, "n": 1, "scale": 1, "padding": 0}).content, 1, 1)[0] for s in (5, 6, 7)]
    np.testing.assert_array_equal(tiles(r.content, 3, 3), np.stack(each))


def test_json_format(client):
    r = client.post("/generate", params={"model": "vae_transpose", "seed": 3, "n": 4, "format": "json"})
    body = r.json()
    assert body["model"] == "vae_transpose" and body["seed"] == 3 and body["n"] == 4 and "decode" in body["timing_ms"]
    png = client.post("/generate", params={"model": "vae_transpose", "seed": 3, "n": 4}).content
    assert base64.b64decode(body["png_base64"]) == png


def test_reconstruct_mode_for_vaes(client):
    r = client.post("/generate", params={"model": "vae_transpose", "mode": "reconstruct", "n": 8, "nrow": 8, "scale": 1, "padding": 0})
    assert r.status_code == 200 and pixels(r.content).shape == (28, 8 * 28)
    entry = client.app.state.registry.get("vae_transpose")
    np.testing.assert_array_equal(tiles(r.content, 8, 8), np.asarray(render_grid(entry.decode_now(entry.recon_latents[:8]), 8, 1, 0)).reshape(28, 8, 28).transpose(1, 0, 2))


def test_grid_png_etag_304_and_immutable(client):
    url = "/models/gan_transpose/grid.png?seed=5&n=4"
    r = client.get(url)
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.content == client.post("/generate", params={"model": "gan_transpose", "seed": 5, "n": 4}).content
    assert client.get(url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_interpolation_and_manifold(client):
    row = client.get("/models/gan_upsample/interpolate.png", params={"seed_a": 1, "seed_b": 2, "steps": 6, "scale": 1, "padding": 0})
    assert pixels(row.content).shape == (28, 6 * 28)
    ends = tiles(row.content, 6, 6)
    first = tiles(client.post("/generate", params={"model": "gan_upsample", "seed": 1, "n": 1, "scale": 1, "padding": 0}).content, 1, 1)[0]
    np.testing.assert_array_equal(ends[0], first)
    m = client.get("/models/vae_upsample/manifold.png", params={"size": 5})
    assert pixels(m.content).shape == (140, 140)
    assert client.get("/models/gan_upsample/manifold.png").status_code == 400


@pytest.mark.parametrize(
    ("params", "body", "status", "needle"),
    [
        ({"model": "nope"}, None, 404, "gan_transpose (ready)"),
        ({"model": "gan_upsample", "n": 0}, None, 422, "n=0"),
        ({"model": "gan_upsample", "n": 65}, None, 422, "n=65"),
        ({"model": "gan_upsample", "scale": 9}, None, 422, "scale=9"),
        ({"model": "gan_upsample", "seed": "abc"}, None, 422, "seed=abc"),
        ({"model": "gan_upsample", "seed": "1.5"}, None, 422, "valid integer"),
        ({"model": "gan_upsample", "seed": -1}, None, 422, "greater than or equal to 0"),
        ({"model": "gan_upsample", "seed": 2**32}, None, 422, "less than or equal to 4294967295"),
        ({"model": "gan_upsample"}, {"latents": [[0.0] * 99]}, 422, "length 99; gan_upsample takes vectors of length 100"),
        ({"model": "vae_upsample"}, {"latents": [[0.0, 11.0]]}, 422, "less than or equal to 10"),
        ({"model": "vae_upsample"}, {"seeds": [1], "latents": [[0, 0]]}, 422, "exactly one"),
        ({"model": "vae_upsample"}, {"seeds": []}, 422, "at least 1"),
        ({"model": "vae_upsample", "seed": 3}, {"seeds": [1]}, 400, "not both"),
        ({"model": "gan_upsample", "mode": "reconstruct"}, None, 400, "needs a VAE"),
        ({"model": "vae_upsample", "mode": "reconstruct", "n": 17}, None, 400, "n=17"),
        ({"model": "vae_upsample", "mode": "dream"}, None, 422, "mode=dream"),
    ],
)
def test_bad_input_is_4xx_naming_the_value(client, params, body, status, needle):
    r = client.post("/generate", params=params, json=body)
    assert r.status_code == status, r.text
    assert needle in r.text


def test_nan_and_inf_latents_rejected(client):
    for token in ("NaN", "Infinity", "-Infinity"):
        r = client.post("/generate?model=vae_upsample", content=f'{{"latents": [[0, {token}]]}}', headers={"content-type": "application/json"})
        assert r.status_code == 422 and "finite" in r.text


def test_body_over_limit_is_413(client):
    big = b'{"seeds": [' + b"1," * 600_000 + b"1]}"
    r = client.post("/generate?model=vae_upsample", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1048576" in r.json()["detail"]

    def chunks():
        yield big[:500_000]
        yield big[500_000:]

    r = client.post("/generate?model=vae_upsample", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_malformed_json_body_is_422(client):
    r = client.post("/generate?model=vae_upsample", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


TF_SERVING_LIKE = (1, 4, 8, 16, 32, 64)


@pytest.mark.parametrize(("n", "buckets", "shapes"), [
    (1, TF_SERVING_LIKE, [1]), (5, TF_SERVING_LIKE, [8]), (16, TF_SERVING_LIKE, [16]), (17, TF_SERVING_LIKE, [16, 1]),
    (64, TF_SERVING_LIKE, [64]), (65, TF_SERVING_LIKE, [64, 1]), (130, TF_SERVING_LIKE, [64, 64, 4]), (17, (8,), [8, 8, 8]),
    (1, (12, 16, 24, 48, 64), [12]), (25, (12, 16, 24, 48, 64), [16, 12]), (32, (12, 16, 24, 48, 64), [16, 16]),
    (40, (12, 16, 24, 48, 64), [24, 16]), (200, (12, 16, 24, 48, 64), [64, 64, 48, 24]), (23, DEFAULT_BUCKETS, [24]),
])
def test_batch_plan_is_the_least_work(n, buckets, shapes):
    assert plan(n, buckets) == shapes and sum(shapes) >= n


@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (9, 3), (115, 460)])
def test_png_writer_round_trips_through_pillow(shape):
    rng = np.random.default_rng(shape[1])
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    image[shape[0] // 2 :] = image[shape[0] // 2]  # repeated rows take the Up filter
    png = png_bytes(image)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == "L" and decoded.size == (shape[1], shape[0])
    np.testing.assert_array_equal(np.asarray(decoded), image)


def test_png_writer_filters_repeated_rows_with_up():
    grid = render_grid(np.random.default_rng(0).random((4, 28, 28)), 2, 4, 2)
    png = png_bytes(grid)
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    width = grid.size[0]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(grid.size[1], width + 1)
    filters = raw[:, 0]
    assert set(filters) == {0, 2} and (raw[filters == 2, 1:] == 0).all()
    assert (filters == 2).sum() >= grid.size[1] * 3 // 4 - 4  # scale 4: three of every four rows repeat
    with pytest.raises(ValueError, match="2-d grayscale"):
        png_bytes(np.zeros((2, 2, 3), np.uint8))


def test_metrics_exposed(client):
    client.post("/generate", params={"model": "gan_upsample", "seed": 1, "n": 1})
    text = client.get("/metrics").text
    assert 'arena_requests_total{model="gan_upsample",route="/generate",status="200"}' in text
    assert "arena_batch_latents_bucket" in text and 'arena_grid_cache_total{result="hit"}' in text


def test_security_headers(client):
    r = client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in r.headers  # CSP is for documents
    page = client.get("/about")
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.fixture()
def damaged_store(tiny_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    with open(store / "gan_transpose" / "generator.keras", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 64)
    shutil.rmtree(store / "vae_upsample")
    (store / "vae_transpose" / "generator.keras").write_bytes(b"not a zip")
    return store


def test_corrupt_and_missing_models_are_isolated(damaged_store, tmp_path):
    with make_client(damaged_store, tmp_path) as c:
        wait_ready(c)
        status = c.get("/readyz").json()["models"]
        assert status["gan_upsample"]["status"] == "ready"
        assert "checksum" in status["gan_transpose"]["reason"] and "checksum" in status["vae_transpose"]["reason"]
        assert "not trained yet" in status["vae_upsample"]["reason"]
        r = c.post("/generate", params={"model": "gan_transpose"})
        assert r.status_code == 503 and "checksum" in r.json()["detail"]
        assert c.post("/generate", params={"model": "gan_upsample", "seed": 1}).status_code == 200


def test_unloadable_file_with_matching_checksum_is_unavailable(tiny_store, tmp_path):
    import json

    from arena.manifest import sha256_file

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    bad = store / "gan_upsample" / "generator.keras"
    bad.write_bytes(b"PK not really a keras file")
    manifest = json.loads((store / "gan_upsample" / "manifest.json").read_text())
    manifest["files"]["generator.keras"] = sha256_file(bad)
    (store / "gan_upsample" / "manifest.json").write_text(json.dumps(manifest))
    registry = Registry(store)
    registry.load_all()
    assert registry.get("gan_upsample").status == "unavailable" and "failed to load" in registry.get("gan_upsample").reason
    assert registry.get("gan_transpose").status == "ready"


def test_readyz_is_503_while_loading(tiny_store, tmp_path, monkeypatch):
    import threading

    gate = threading.Event()
    original = Registry.load_all

    def slow(self):
        gate.wait(30)
        original(self)

    monkeypatch.setattr(Registry, "load_all", slow)
    with make_client(tiny_store, tmp_path, shared=False) as c:
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200
        r = c.post("/generate", params={"model": "gan_upsample"})
        assert r.status_code == 503 and "loading" in r.json()["detail"]
        gate.set()
        wait_ready(c)


SHIPPED = ROOT / "models_store"


@pytest.mark.skipif(not all((SHIPPED / n / "manifest.json").is_file() for n in ("gan_transpose", "gan_upsample", "vae_transpose", "vae_upsample")), reason="the shipped models are not in models_store/")
def test_shipped_models_load_and_generate(tmp_path):
    """Every model shipped in models_store/ serves; a variant of the table not trained yet says so, with the command."""
    with make_client(SHIPPED, tmp_path) as c:
        wait_ready(c, timeout=300)
        for name, m in c.get("/readyz").json()["models"].items():
            if not (SHIPPED / name).is_dir():
                assert m["status"] == "unavailable" and f"deconv-arena train --variant {name}" in m["reason"], (name, m)
                label = "GAN" if VARIANTS[name].family == "gan" else "VAE"
                assert f"{label} (" in c.get(f"/models/{name}").text, name  # the family comes from the table
                assert c.post("/generate", params={"model": name, "seed": 2023, "n": 4}).status_code == 503
                continue
            assert m["status"] == "ready", (name, m)
            r = c.post("/generate", params={"model": name, "seed": 2023, "n": 4})
            assert r.status_code == 200 and pixels(r.content).std() > 10


def test_repeated_image_urls_are_replayed_before_routing(client):
    url = "/models/vae_upsample/grid.png?seed=77&n=4&scale=2"
    first = client.get(url)
    hits = client.app.state.metrics.cache.labels("hit")._value.get()
    again = client.get(url)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["server-timing"] == 'cache;desc="hit"' and again.headers["x-content-type-options"] == "nosniff"
    assert {k: v for k, v in again.headers.items() if k != "server-timing"} == {k: v for k, v in first.headers.items() if k != "server-timing"}
    assert client.app.state.metrics.cache.labels("hit")._value.get() == hits  # the app's grid cache was never asked
    not_modified = client.get(url, headers={"if-none-match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["etag"] == first.headers["etag"]
    assert 'route="/models/{name}/grid.png"' in client.get("/metrics").text  # replays are counted under their route
    assert client.get("/models/vae_upsample/grid.png?seed=77&n=65").status_code == 422  # errors are never replayed


# --- POST /generate's query: one parser (GenerateQuery), its documented bounds -----------------------------------

@pytest.mark.parametrize(
    ("query", "status", "names"),
    [
        ("seed=4294967295&n=64&nrow=64&scale=8&padding=16", 200, None),
        ("seed=0&n=1&nrow=1&scale=1&padding=0&format=json", 200, None),
        ("seed=4294967296", 422, "seed=4294967296"),
        ("seed=-1", 422, "seed=-1"),
        ("seed=5.5", 422, "seed=5.5"),
        ("seed=1&n=65", 422, "n=65"),
        ("seed=1&n=0", 422, "n=0"),
        ("seed=1&nrow=65", 422, "nrow=65"),
        ("seed=1&scale=9", 422, "scale=9"),
        ("seed=1&padding=17", 422, "padding=17"),
        ("seed=1&mode=dream", 422, "mode=dream"),
        ("seed=1&format=gif", 422, "format=gif"),
        ("seed=3&seed=1&n=2", 200, None),  # a repeated key: the last value, as FastAPI takes it
        ("seed=1&n=2&extra=1", 200, None),  # an unknown key is ignored
    ],
)
def test_generate_query_bounds(client, query, status, names):
    r = client.post(f"/generate?model=gan_upsample&{query}")
    assert r.status_code == status, r.text
    if names:
        assert any(d["msg"].startswith(names) for d in r.json()["detail"]), r.json()


def test_repeated_key_takes_the_last_value_and_the_body_form_still_works(client):
    last = client.post("/generate?model=gan_upsample&seed=3&seed=1&n=2")
    assert last.content == client.post("/generate?model=gan_upsample&seed=1&n=2").content
    body = client.post("/generate?model=gan_upsample", json={"seeds": [1, 2]})
    assert body.status_code == 200 and body.headers["x-seed"] == "1,2"
    bad = client.post("/generate?model=gan_upsample", json={"seeds": [-1]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "seeds"], bad.json()
    both = client.post("/generate?model=gan_upsample&seed=1", json={"seeds": [1]})
    assert both.status_code == 400 and "not both" in both.json()["detail"]
    assert client.post("/generate?model=gan_upsample", content=b"{", headers={"content-type": "application/json"}).status_code == 422
    assert 'route="/generate"' in client.get("/metrics").text


def test_models_are_checked_on_their_own_thread_while_the_next_loads(tiny_store, monkeypatch):
    """Loading (tracing) and the exactness check overlap; a check that fails marks only its model unavailable, and
    every model's serving shapes are those check_shapes gives it."""
    import threading

    import app.registry as registry_module

    real, seen = registry_module.check_shapes, {}

    def recording(fns, latent_dim):
        name = threading.current_thread().name
        if latent_dim == 2 and "vae_bilinear" not in seen:  # the first VAE checked: its check fails
            seen["vae_bilinear"] = name
            raise registry_module.ModelUnavailable("no compiled batch shape gives exact rows on this CPU (simulated)")
        result = real(fns, latent_dim)
        seen.setdefault(name, []).append(result.serving)
        return result

    monkeypatch.setattr(registry_module, "check_shapes", recording)
    registry = Registry(tiny_store)
    registry.load_all()
    assert registry.loaded and all(t.startswith("shape-check") for t in seen if t != "vae_bilinear")
    assert seen["vae_bilinear"].startswith("shape-check")
    failed = [e for e in registry.entries.values() if e.status == "unavailable" and "simulated" in (e.reason or "")]
    assert len(failed) == 1 and failed[0].batcher is None and failed[0].load_seconds > 0
    ready = [e for e in registry.entries.values() if e.status == "ready"]
    assert len(ready) == len([e for e in registry.entries.values() if (tiny_store / e.name).is_dir()]) - 1
    assert all(e.batcher is not None and tuple(e._fns) == e.shape_check.serving for e in ready)
    registry.close()
