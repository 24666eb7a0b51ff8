"""Start-up of `deconv-arena serve` with every shipped model, several starts in one run: seconds to /readyz, seconds
until the batch shapes checked after ready are settled, and resident memory after that and one 16-grid.

    python bench/startup.py [--starts 3] [--store models_store]

Target (issue 28): ready ≤ 5 s and RSS ≤ 400 MiB; bench/serve.py measures the same beside the peers, once.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import httpx
import numpy as np
from common import ROOT, free_port, python, rss_mib, seconds_until_shapes_settled, start, stop


def one_start(store: Path, db: Path) -> dict[str, float]:
    port = free_port()
    env = {
        "ARENA_MODELS_STORE": str(store),
        "ARENA_PORT": str(port),
        "ARENA_DATABASE_URL": f"sqlite:///{db}",
        "ARENA_LOG_LEVEL": "warning",
    }
    proc, ready_s = start([python(), "-m", "deconv_arena.cli", "serve"], port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        settled_s = ready_s + seconds_until_shapes_settled(base)
        httpx.post(f"{base}/generate", params={"model": "gan_transpose", "seed": 1, "n": 16}).raise_for_status()
        return {
            "seconds_to_readyz": round(ready_s, 2),
            "seconds_to_every_batch_shape_checked": round(settled_s, 2),
            "rss_mib_after_settled_and_one_grid": round(rss_mib(proc.pid), 1),
        }
    finally:
        stop(proc)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", type=int, default=3)
    p.add_argument("--store", type=Path, default=ROOT / "models_store")
    args = p.parse_args()
    db = Path(tempfile.mkdtemp()) / "startup.db"
    runs = []
    for _ in range(args.starts):
        runs.append(one_start(args.store, db))
        print(json.dumps(runs[-1]), flush=True)
    median = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    print(json.dumps({"starts": len(runs), "median": median, "targets": {"seconds_to_readyz": 5, "rss_mib": 400}}))


if __name__ == "__main__":
    main()
