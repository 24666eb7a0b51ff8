"""Ray Serve serving the service's generator: one replica, `@serve.batch` of up to 64 waiting up to 2 ms.

POST /generate with {"seed": S, "n": N} → the PNG grid. Run: python bench/ray_app.py PORT (bench extra).
Usage stats and the dashboard are off; `max_ongoing_requests` is raised so that 32 clients can form batches.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
from peer_model import BATCH_WAIT_S, MAX_BATCH, GridDecoder
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

BENCH = Path(__file__).resolve().parent
STORE = Path(os.environ.get("ARENA_MODELS_STORE", "models_store")).resolve()


@serve.deployment(num_replicas=1, max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class Generator:
    def __init__(self, store: str):
        sys.path.insert(0, str(BENCH))
        self.decoder = GridDecoder(Path(store))

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def grids(self, requests: list[tuple[int, int]]) -> list[bytes]:
        return self.decoder.pngs(requests)

    async def __call__(self, request: Request) -> Response:
        body = await request.json()
        return Response(await self.grids((int(body["seed"]), int(body.get("n", 16)))), media_type="image/png")


def main(port: int) -> None:
    env = {
        k: os.environ[k]
        for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL")
        if k in os.environ
    }
    ray.init(
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {**env, "PYTHONPATH": f"{BENCH}:{BENCH.parent}"}},
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(Generator.bind(str(STORE)), route_prefix="/generate", name="generator")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:  # the bench terminates this process; Ray's own processes go with `ray.shutdown`
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]))
