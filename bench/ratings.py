"""Benchmark: our Elo, weighted Elo, Bradley-Terry and BT + bootstrap against evalica, same input, same run.

The input is what a leaderboard recompute sees: a million votes between 100 systems given by name
(Python lists of strings) plus one outcome per vote. Both sides' timings include turning names into
indices (evalica takes names too). Ratios are ours / evalica: below 1 means we are faster.

    .venv/bin/python bench/ratings.py                 # 1,000,000 votes, 100 systems, 100 rounds
    .venv/bin/python bench/ratings.py --votes 100000  # quicker

By default numba's on-disk cache is pointed at a fresh temporary folder, so the reported first call
is a real JIT compile; --warm-cache uses the normal cache next to the module instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs for the single fits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-cache", action="store_true", help="keep numba's normal on-disk cache")
    parser.add_argument("--skip-evalica-bootstrap", action="store_true", help="the slowest step of the run")
    return parser.parse_args()


def make_votes(votes: int, systems: int, seed: int):
    """Names, outcome labels and separability-like weights, drawn from a Bradley-Terry model with ties."""
    rng = np.random.default_rng(seed)
    names = [f"org-{i % 7}/model-{i:03d}-7b-chat" for i in range(systems)]
    strength = rng.normal(0.0, 1.0, systems)
    a = rng.integers(0, systems, votes)
    b = (a + rng.integers(1, systems, votes)) % systems
    p_a = 1.0 / (1.0 + np.exp(strength[b] - strength[a]))
    u = rng.random(votes)
    tie = u < 0.1
    a_wins = ~tie & (rng.random(votes) < p_a)
    outcome = np.where(tie, 0, np.where(a_wins, 1, 2))  # evalica's Winner codes: 0 draw, 1 x, 2 y
    system_a = [names[i] for i in a]
    system_b = [names[i] for i in b]
    labels = np.array(["tie", "a", "b"], dtype=object)[outcome].tolist()
    weights = rng.random(votes)
    return system_a, system_b, outcome, labels, weights


def best_time(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    args = parse_args()
    if not args.warm_cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cache-")

    import evalica
    import numba
    import pandas as pd
    import scipy

    from ranking import elo as elo_module
    from ranking.ratings import (
        bootstrap_bt,
        bradley_terry,
        compute_leaderboard,
        confidence_interval,
        elo,
        factorize_systems,
        scores_from_winners,
        weighted_elo,
    )

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}, "
          f"numba {numba.__version__}, evalica {evalica.__version__}")
    print(f"input: {args.votes:,} votes, {args.systems} systems, names as Python lists of str")
    system_a, system_b, outcome, labels, weights = make_votes(args.votes, args.systems, args.seed)
    winners = [evalica.Winner(int(o)) for o in outcome]

    # Each side gets names as lists of str and the outcomes in its own native form: evalica a list of
    # Winner, ours system a's score as a float array (mapping labels costs the same on both sides).
    score_native = np.array([0.5, 1.0, 0.0])[outcome]  # Winner codes: 0 draw, 1 x, 2 y

    def prepare():
        a, b, names = factorize_systems(system_a, system_b)
        return a, b, score_native, names

    def prepare_from_labels():
        a, b, names = factorize_systems(system_a, system_b)
        score, _ = scores_from_winners(labels)
        return a, b, score, names

    a, b, score, names = prepare()
    n = len(names)
    start = time.perf_counter()
    elo(a[:10], b[:10], score[:10], n)
    elo_compile_s = time.perf_counter() - start
    start = time.perf_counter()
    bradley_terry(a[:1000], b[:1000], score[:1000], n)
    bt_compile_s = time.perf_counter() - start
    cache = "normal on-disk cache" if args.warm_cache else "cold cache"
    print(f"numba first calls ({cache}; excluded from the timings below): Elo loop {elo_compile_s:.2f} s, "
          f"Bradley-Terry Newton solver {bt_compile_s:.2f} s")

    def ours_elo():
        a, b, score, names = prepare()
        return pd.Series(elo(a, b, score, len(names)), index=names)

    def ours_elo_from_labels():
        a, b, score, names = prepare_from_labels()
        return pd.Series(elo(a, b, score, len(names)), index=names)

    def ours_weighted_elo():
        a, b, score, names = prepare()
        return pd.Series(weighted_elo(a, b, score, weights, len(names)), index=names)

    def ours_bt():
        a, b, score, names = prepare()
        return pd.Series(bradley_terry(a, b, score, len(names)), index=names)

    def ours_bt_bootstrap():
        a, b, score, names = prepare()
        point = bradley_terry(a, b, score, len(names))
        samples = bootstrap_bt(a, b, score, len(names), rounds=args.rounds, seed=args.seed)
        return point, confidence_interval(samples, point)

    def evalica_elo():
        return evalica.elo(system_a, system_b, winners).scores

    def evalica_bt():
        return evalica.bradley_terry(system_a, system_b, winners).scores

    def evalica_bt_tight():
        return evalica.bradley_terry(system_a, system_b, winners, tolerance=1e-10, limit=100_000).scores

    def evalica_bt_bootstrap():
        return evalica.bootstrap(evalica.bradley_terry, system_a, system_b, winners, n_resamples=args.rounds,
                                 bootstrap_method="percentile", random_state=args.seed)

    rows = []

    def compare(label, ours_fn, theirs_fn, repeats):
        ours_s, ours = best_time(ours_fn, repeats)
        theirs_s, theirs = best_time(theirs_fn, repeats) if theirs_fn else (float("nan"), None)
        rows.append((label, ours_s, theirs_s))
        theirs_text = f"evalica {theirs_s:8.3f} s   ratio {ours_s / theirs_s:6.3f}" if theirs_fn else "(ours only)"
        print(f"{label:<46} ours {ours_s:8.3f} s   {theirs_text}", flush=True)
        return ours, theirs

    ours, theirs = compare("Elo (K=4)", ours_elo, evalica_elo, args.repeats)
    print(f"  max |ours - evalica| = {np.max(np.abs(ours - theirs.reindex(ours.index))):.2e} rating points")
    compare("weighted Elo (zero-sum)", ours_weighted_elo, None, args.repeats)
    compare("Elo, ours from 'a'/'b'/'tie' labels", ours_elo_from_labels, evalica_elo, args.repeats)
    ours, theirs = compare("Bradley-Terry (evalica defaults)", ours_bt, evalica_bt, args.repeats)
    theirs_elo = 1000 + 400 * np.log10(theirs.reindex(ours.index))
    print(f"  max |ours - evalica| = {np.max(np.abs(ours - (theirs_elo - theirs_elo.mean() + 1000))):.2e} "
          "Elo points (evalica stops at tolerance 1e-6 or 100 MM iterations)")
    ours, theirs = compare("Bradley-Terry (evalica tol 1e-10)", ours_bt, evalica_bt_tight, 1)
    theirs_elo = 1000 + 400 * np.log10(theirs.reindex(ours.index))
    print(f"  max |ours - evalica| = {np.max(np.abs(ours - (theirs_elo - theirs_elo.mean() + 1000))):.2e}")

    start = time.perf_counter()
    python_loop = np.full(n, 1000.0)
    elo_module._run_elo_loop_python(a, b, score, np.empty(0), python_loop,
                                    4.0, 400.0, np.log(10.0))
    print(f"{'(plain Python loop Elo, no numba)':<46} {time.perf_counter() - start:8.3f} s (kernel only)")

    if args.skip_evalica_bootstrap:
        compare(f"BT + bootstrap ({args.rounds} rounds)", ours_bt_bootstrap, None, 1)
    else:
        compare(f"BT + bootstrap ({args.rounds} rounds)", ours_bt_bootstrap, evalica_bt_bootstrap, 1)

    for method in ("bt", "elo"):
        # compare() calls the lambda before it returns, inside this iteration.
        compare(f"compute_leaderboard {method}, {args.rounds} rounds",
                lambda: compute_leaderboard(system_a, system_b, labels, method=method,  # noqa: B023 (called now)
                                            rounds=args.rounds, seed=args.seed), None, 1)

    print("\n| step | ours (s) | evalica (s) | ours / evalica |\n|---|---:|---:|---:|")
    for label, ours_s, theirs_s in rows:
        ratio = ours_s / theirs_s if theirs_s == theirs_s else float("nan")
        theirs_text, ratio_text = (f"{theirs_s:.3f}", f"{ratio:.3f}") if theirs_s == theirs_s else ("-", "-")
        print(f"| {label} | {ours_s:.3f} | {theirs_text} | {ratio_text} |")


if __name__ == "__main__":
    main()
