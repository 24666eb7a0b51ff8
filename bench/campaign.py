"""Votes to settle the shipped campaign plan, uniform vs adaptive scheduler, over simulated campaigns from one run.

Each campaign draws its true model strengths (base-10 Bradley–Terry, uniform in ±--spread) and its raters from one
seed, then runs twice on that seed, once per scheduler, through the service's own task rule, gold screening and
verdicts (tests/simraters.py). "Votes to settle" counts every task answered (gold, best-of-four and repeats
included) until no question of the plan is open. Both schedulers see the same truths and the same raters, so the
ratio is paired by campaign.

    python bench/campaign.py --campaigns 20
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.ratings.campaign import load_campaign  # noqa: E402
from arena.variants import VARIANTS  # noqa: E402
from tests.simraters import Population, run_campaign, sim_settings  # noqa: E402

SCHEDULERS = ("uniform", "adaptive")


def quartiles(x: list[float]) -> tuple[float, float, float]:
    q = np.percentile(x, [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--campaigns", type=int, default=20, help="simulated campaigns per scheduler (default 20)")
    p.add_argument("--raters", type=int, default=60, help="raters per campaign (default 60)")
    p.add_argument("--careless", type=float, default=0.15, help="share of careless clickers (default 0.15)")
    p.add_argument("--bias", type=float, default=0.2, help="position bias toward the left grid, logits (default 0.2)")
    p.add_argument("--ties", type=float, default=0.3, help="tie band of a careful rater, logits (default 0.3)")
    p.add_argument("--spread", type=float, default=0.3, help="true strengths uniform in ±spread (default 0.3)")
    p.add_argument("--max-votes", type=int, default=20_000, help="a campaign gives up after this many (default 20000)")
    args = p.parse_args(argv)
    plan = load_campaign()
    print(
        f"plan {plan.name}: {len(plan.pairs)} questions × {plan.votes_per_question} votes, looks at "
        f"{plan.look_sizes()}; {args.campaigns} campaigns, {args.raters} raters, careless {args.careless:.0%}, "
        f"position bias {args.bias}, tie band {args.ties}, strengths ±{args.spread}"
    )
    needed: dict[str, list[int | None]] = {s: [] for s in SCHEDULERS}
    wrong: dict[str, int] = {s: 0 for s in SCHEDULERS}
    seconds: dict[str, float] = {s: 0.0 for s in SCHEDULERS}
    for k in range(args.campaigns):
        rng = random.Random(10_000 + k)
        pop = Population(
            {m: rng.uniform(-args.spread, args.spread) for m in VARIANTS},
            careless_share=args.careless,
            position_bias=args.bias,
            tie_band=args.ties,
        )
        for scheduler in SCHEDULERS:
            t0 = time.perf_counter()
            out = run_campaign(plan, pop, sim_settings(scheduler=scheduler), k, raters=args.raters,
                               max_votes=args.max_votes)  # fmt: skip
            seconds[scheduler] += time.perf_counter() - t0
            needed[scheduler].append(out.votes_to_settle)
            for q in out.campaign["questions"]:
                truth = pop.true_share(q["a"], q["b"])
                if q["kind"] == "difference" and q["winner"] != (q["a"] if truth > 0.5 else q["b"]):
                    wrong[scheduler] += 1
    for s in SCHEDULERS:
        done = [n for n in needed[s] if n is not None]
        q1, med, q3 = quartiles(done) if done else (float("nan"),) * 3
        print(
            f"{s:>8}: votes to settle median {med:,.0f} (IQR {q1:,.0f}–{q3:,.0f}, range {min(done):,}–{max(done):,}) "
            f"over {len(done)}/{args.campaigns} campaigns settled within {args.max_votes:,}; wrong-direction "
            f"differences {wrong[s]}; {seconds[s] / args.campaigns:.1f} s per campaign"
        )
    paired = [u / a for u, a in zip(needed["uniform"], needed["adaptive"]) if u and a]
    boot = np.random.default_rng(0)
    ratios = np.array(paired)
    medians = [float(np.median(boot.choice(ratios, len(ratios)))) for _ in range(2000)]
    low, high = np.percentile(medians, [2.5, 97.5])
    fewer = sum(r > 1 for r in paired)
    print(
        f"uniform / adaptive, paired by campaign: median {statistics.median(paired):.2f}× "
        f"[{low:.2f}, {high:.2f}] (bootstrap over {len(paired)} campaigns); adaptive needed fewer votes in "
        f"{fewer} of {len(paired)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
