"""A quick look at one figure of bench/serve.py: 32 clients asking single images, deconv-arena vs the peers.

For iterating on the batcher; bench/serve.py is the full run whose figures the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from common import ROOT, free_port, python, start, stop
from serve import PEERS, ensure_wrk, single_image_rounds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--peers", default="litserve", help="comma-separated: " + ", ".join(PEERS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=8)
    args = p.parse_args()
    ensure_wrk()
    threads = {"TF_NUM_INTRAOP_THREADS": str(os.cpu_count()), "TF_NUM_INTEROP_THREADS": str(os.cpu_count())}
    store = str(ROOT / "models_store")
    port, procs = free_port(), []
    try:
        env = {
            **threads,
            "ARENA_MODELS_STORE": store,
            "ARENA_PORT": str(port),
            "ARENA_DATABASE_URL": f"sqlite:///{Path(tempfile.mkdtemp()) / 'q.db'}",
            "ARENA_LOG_LEVEL": "warning",
        }
        proc, ready = start([python(), "-m", "deconv_arena.cli", "serve"], port, env)
        procs.append(proc)
        bases, pids = {"deconv_arena": (f"http://127.0.0.1:{port}", "query")}, {"deconv_arena": proc.pid}
        print(json.dumps({"deconv_arena_seconds_to_readyz": round(ready, 2)}), flush=True)
        for name in args.peers.split(","):
            peer_port = free_port()
            peer, _ = start(
                [python(), *PEERS[name][0], str(peer_port)],
                peer_port,
                {**threads, "ARENA_MODELS_STORE": store, **PEERS[name][2]},
                ready_path="/generate",
                ready_json={"seed": 1, "n": 1},
                timeout=600,
            )
            procs.append(peer)
            bases[name] = (f"http://127.0.0.1:{peer_port}", PEERS[name][1])
            pids[name] = peer.pid
        print(json.dumps(single_image_rounds(bases, args.rounds, args.seconds, pids)))
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    main()
