"""The floor bench/serve.py measures the service against: the least an HTTP service can do per grid.

A raw ASGI app (no framework, no validation, logging, metrics or cache) that makes the latents, runs the same
compiled call for n latents (16 unless the query says) on the service's serving shapes on one worker thread, and
renders and encodes the PNG with the service's own functions. What the service spends above this is framework and
bookkeeping; what this spends above the bare call is HTTP, the thread hand-off and the PNG.
"""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from peer_model import GridDecoder

STORE = Path(os.environ.get("ARENA_MODELS_STORE", "models_store"))
DECODER = GridDecoder(STORE)  # the service's compiled shapes, exact-shape check and PNG writer
DECODER.pngs([(0, 16)])
WORKER = ThreadPoolExecutor(max_workers=1)


def grid(seed: int, n: int) -> bytes:
    return DECODER.pngs([(seed, n)])[0]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/readyz":
        body, kind = b"{}", b"application/json"
    else:
        query = parse_qs(scope["query_string"].decode())
        seed, n = int(query["seed"][0]), int(query.get("n", ["16"])[0])
        body, kind = await asyncio.get_running_loop().run_in_executor(WORKER, grid, seed, n), b"image/png"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
