"""Rows a second through one served generator's onnxruntime session: one call at a time on all cores (the route before
decode threads) against single-threaded calls side by side, one per core (the route now), in the same run.

    python bench/decode_threads.py [--model gan_transpose] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()  # as app/shapes.py compile_shapes builds it
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rows_per_second(s, batch: int, seconds: float, callers: int) -> float:
    (given,) = s.get_inputs()
    z = np.random.default_rng(0).standard_normal((batch, given.shape[1])).astype(np.float32)
    s.run(None, {given.name: z})
    done, stop = [0] * callers, time.perf_counter() + seconds

    def call(i: int) -> None:
        while time.perf_counter() < stop:
            s.run(None, {given.name: z})
            done[i] += batch

    workers = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gan_transpose")
    p.add_argument("--seconds", type=float, default=1.5)
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    path = ROOT / "models_store" / args.model / "generator.onnx"
    together, apart = session(path, 0), session(path, 1)
    rows = []
    for batch in (1, 4, 12, 24, 48):
        one = rows_per_second(together, batch, args.seconds, 1)
        side = rows_per_second(apart, batch, args.seconds, cores)
        rows.append({"batch": batch, "one_call_all_cores": round(one), "side_by_side": round(side)})
        print(json.dumps({**rows[-1], "ratio": round(side / one, 2)}), flush=True)
    print(
        json.dumps(
            {
                "model": args.model,
                "cores": cores,
                "median_ratio": float(np.median([r["side_by_side"] / r["one_call_all_cores"] for r in rows])),
            }
        )
    )


if __name__ == "__main__":
    main()
