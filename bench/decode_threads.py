"""Rows a second through one served generator's onnxruntime session, three ways in the same run: one call at a time
on all cores (the route before decode threads), single-threaded calls side by side, one per core (the route of
6dac422), and calls on all cores side by side, one caller per core (the route now); and a lone call's milliseconds
with a single-threaded session against one on all cores, and a lone 16-row batch cut into one piece per core,
decoded side by side, as the service does when every decode thread is idle (what one user browsing alone waits for).

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

    options = onnxruntime.SessionOptions()  # as app/serving/shapes.py compile_shapes builds it
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


def lone_call_ms(s, batch: int, calls: int = 20) -> float:
    (given,) = s.get_inputs()
    z = np.random.default_rng(1).standard_normal((batch, given.shape[1])).astype(np.float32)
    s.run(None, {given.name: z})
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        s.run(None, {given.name: z})
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def lone_cut_ms(s, batch: int, ways: int, calls: int = 20) -> float:
    """A lone batch as the service decodes it when every decode thread is idle (app/serving/shapes.py split_rows): cut
    into `ways` even pieces, one single-threaded call each, side by side; milliseconds until the last piece is done."""
    (given,) = s.get_inputs()
    z = np.random.default_rng(1).standard_normal((batch, given.shape[1])).astype(np.float32)
    pieces = np.array_split(z, ways)
    go, done = threading.Barrier(ways + 1), threading.Barrier(ways + 1)

    def piece(part: np.ndarray) -> None:
        for _ in range(calls + 1):
            go.wait()
            s.run(None, {given.name: part})
            done.wait()

    workers = [threading.Thread(target=piece, args=(part,)) for part in pieces]
    for w in workers:
        w.start()
    times = []
    for _ in range(calls + 1):  # the first round warms the pieces' shapes up
        t0 = time.perf_counter()
        go.wait()
        done.wait()
        times.append(time.perf_counter() - t0)
    for w in workers:
        w.join()
    return float(np.median(times[1:])) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gan_transpose")
    p.add_argument("--seconds", type=float, default=1.5)
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    path = ROOT / "models_store" / args.model / "generator.onnx"
    together, apart = session(path, 0), session(path, 1)
    rows = []
    for batch in (1, 4, 12, 16, 24, 48):
        one = rows_per_second(together, batch, args.seconds, 1)
        single = rows_per_second(apart, batch, args.seconds, cores)
        wide = rows_per_second(together, batch, args.seconds, cores)
        rows.append(
            {
                "batch": batch,
                "rows_s_one_call_all_cores": round(one),
                "rows_s_single_threaded_side_by_side": round(single),
                "rows_s_all_cores_side_by_side": round(wide),
                "lone_call_ms_single_threaded": round(lone_call_ms(apart, batch), 2),
                "lone_call_ms_all_cores": round(lone_call_ms(together, batch), 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    cut = {
        "batch": 16,
        "lone_call_ms_all_cores": round(lone_call_ms(together, 16), 2),
        "lone_call_ms_single_threaded": round(lone_call_ms(apart, 16), 2),
        f"lone_cut_ms_{cores}_single_threaded_pieces_side_by_side": round(lone_cut_ms(apart, 16, cores), 2),
    }
    print(json.dumps(cut), flush=True)
    ratio = lambda key, base: float(np.median([r[key] / r[base] for r in rows]))
    print(
        json.dumps(
            {
                "model": args.model,
                "cores": cores,
                "median_rows_s_all_cores_side_by_side_over_single_threaded_side_by_side": round(
                    ratio("rows_s_all_cores_side_by_side", "rows_s_single_threaded_side_by_side"), 2
                ),
                "median_rows_s_all_cores_side_by_side_over_one_call": round(
                    ratio("rows_s_all_cores_side_by_side", "rows_s_one_call_all_cores"), 2
                ),
                "median_lone_call_single_threaded_over_all_cores": round(
                    ratio("lone_call_ms_single_threaded", "lone_call_ms_all_cores"), 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
