"""The baseline bench/serve.py compares against: an `async def` endpoint calling `model.predict` per request."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from fastapi import FastAPI, Response
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import training.families.layers  # noqa: E402,F401  (the sub-pixel generators' layer)

STORE = Path(os.environ.get("ARENA_MODELS_STORE", "models_store"))
MODELS = {
    p.name: keras.saving.load_model(p / "generator.keras", compile=False)
    for p in STORE.iterdir()
    if (p / "generator.keras").is_file() and not p.name.startswith((".", "_"))
}
app = FastAPI()


@app.get("/readyz")
async def readyz() -> dict:
    return {"ready": True}


@app.post("/generate")
async def generate(model: str, seed: int, n: int = 16) -> Response:
    m = MODELS[model]
    z = np.random.default_rng(seed).standard_normal((n, m.input_shape[1]), dtype=np.float32)
    out = m.predict(z, verbose=0)  # on the event loop, per request: what the service must beat
    x = (np.clip((out + 1) / 2 if model.startswith("gan") else 1 / (1 + np.exp(-out)), 0, 1) * 255).astype(np.uint8)[
        ..., 0
    ]
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    canvas = np.zeros((rows * 28, cols * 28), np.uint8)
    for i in range(n):
        canvas[(i // cols) * 28 : (i // cols + 1) * 28, (i % cols) * 28 : (i % cols + 1) * 28] = x[i]
    buf = io.BytesIO()
    Image.fromarray(canvas).resize((cols * 112, rows * 112), Image.NEAREST).save(buf, "PNG")
    return Response(buf.getvalue(), media_type="image/png")


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
