"""LitServe serving the service's generator: batches of up to 64 waiting up to 12 ms (the service's defaults).

By default one inference worker whose model calls use every core (LitServe's usual CPU setup); with
PEER_WORKERS=2 PEER_THREADS=1, two workers each making single-threaded calls, the arrangement the service's decode
threads use (bench/decode_threads.py: more rows a second on two cores), so the service is also measured against
LitServe given the same advantage.

POST /generate with {"seed": S, "n": N} → the PNG grid. Run: python bench/litserve_app.py PORT (bench extra).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import litserve as ls
from peer_model import BATCH_WAIT_S, MAX_BATCH, GridDecoder
from starlette.responses import Response

STORE = Path(os.environ.get("ARENA_MODELS_STORE", "models_store"))
WORKERS, THREADS = int(os.environ.get("PEER_WORKERS", "1")), int(os.environ.get("PEER_THREADS", "0"))


class GridAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.decoder = GridDecoder(STORE, threads=THREADS)

    def decode_request(self, request: dict) -> tuple[int, int]:
        return int(request["seed"]), int(request.get("n", 16))

    def batch(self, inputs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return inputs

    def predict(self, batch: list[tuple[int, int]]) -> list[bytes]:
        return self.decoder.pngs(batch)

    def unbatch(self, output: list[bytes]) -> list[bytes]:
        return output

    def encode_response(self, output: bytes) -> Response:
        return Response(output, media_type="image/png")


if __name__ == "__main__":
    api = GridAPI(max_batch_size=MAX_BATCH, batch_timeout=BATCH_WAIT_S, api_path="/generate")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=WORKERS, fast_queue=True, timeout=60)
    server.run(
        host="127.0.0.1", port=int(sys.argv[1]), num_api_servers=1, generate_client_file=False, log_level="warning"
    )
