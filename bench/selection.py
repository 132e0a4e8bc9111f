"""Benchmark: how many human votes each selection policy needs before the ranking is right, same runs.

Two simulations, every policy on the same seeds (the peer is uniform random selection; ratios are
policy / random, below 1 means fewer votes):

- replay: the LLMFAO crowd votes (demo/data/llmfao/, 8,931 votes on 2,139 (prompt, system pair) units
  of 59 systems; k = 1, so separability is undefined and only adaptive's uncertainty part acts). A policy
  picks a unit; one of that unit's real votes, not yet used, is revealed (units with no votes left drop
  out). Target: the BT ranking of the votes so far against the BT ranking of all votes.
- synthetic: 20 systems with true BT strengths evenly spread over 400 Elo points, every pair on 50
  instances whose separability is drawn from the separability paper's units (ROUGE-1, normalised), votes
  drawn from the vote model of ranking.simulate, fitted here on the paper's crowd batches (--fit).
  Target: the BT ranking against the true one.

Votes needed = the first checkpoint (every --step votes) at which Spearman >= 0.95 (Kendall >= 0.85 is
reported beside it); median and 95% percentile interval over --seeds seeds.

    .venv/bin/python bench/selection.py                # tables (about 10 minutes on one core)
    .venv/bin/python bench/selection.py --json         # {"replay": {POLICY: median}, "synthetic": {...}}
    .venv/bin/python bench/selection.py --plot docs/selection.svg
    .venv/bin/python bench/selection.py --fit          # the vote model's fit on the paper files only
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotations.imports.parse import parse_pairwise_csv  # noqa: E402 - after the path setup
from ranking.bt import bradley_terry_from_wins  # noqa: E402
from ranking.simulate import (  # noqa: E402
    Curve,
    ReplayPool,
    SyntheticPool,
    evenly_spread,
    percentile_interval,
    run_policy,
    votes_to_reach,
)
from separability.engine import InstanceSamples, compute_separability, normalise  # noqa: E402

LLMFAO = ROOT / "demo" / "data" / "llmfao" / "crowd-comparisons.csv"
PAPER = ROOT / "demo" / "data" / "separability-paper"
REPLAY_POLICIES = ("random", "random_vote", "adaptive")
SYNTHETIC_POLICIES = ("random", "top_fraction", "proportional", "adaptive")
SPEARMAN_TARGET, KENDALL_TARGET = 0.95, 0.85
LLMFAO_SCORE = {"left": 1.0, "right": 0.0, "tie": 0.5}  # `left` is model_x, the unit's system a


def load_llmfao(path: Path = LLMFAO) -> tuple[ReplayPool, list[str]]:
    """One unit per LLMFAO comparison id (a prompt and a system pair), its votes as model_x's scores."""
    units: dict[str, tuple[int, int, list[float]]] = {}
    index: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if row["winner"] not in LLMFAO_SCORE:
                raise ValueError(f"{path}, line {line}, field winner: {row['winner']!r} is not left/right/tie")
            a = index.setdefault(row["model_x"], len(index))
            b = index.setdefault(row["model_y"], len(index))
            units.setdefault(row["id"], (a, b, []))[2].append(LLMFAO_SCORE[row["winner"]])
    values = list(units.values())
    pool = ReplayPool(len(index), np.array([u[0] for u in values]), np.array([u[1] for u in values]),
                      [u[2] for u in values])
    return pool, list(index)


def replay_reference(pool: ReplayPool) -> np.ndarray:
    """The BT ratings of all the pool's votes."""
    wins = np.zeros((pool.n_systems, pool.n_systems))
    for a, b, scores in zip(pool.unit_a, pool.unit_b, pool.votes, strict=True):
        wins[a, b] += sum(scores)
        wins[b, a] += len(scores) - sum(scores)
    return bradley_terry_from_wins(wins)


def paper_units(paper_dir: Path = PAPER) -> list[tuple[int, float, list[bool], int]]:
    """Per paper file and instance: (file index, normalised ROUGE-1 separability, per decisive vote whether
    it chose the file's majority system, ties)."""
    out = []
    for file_index, path in enumerate(sorted(paper_dir.glob("*_pref_data.csv"))):
        parsed = parse_pairwise_csv(path, 10**6)
        instances = [InstanceSamples(key, {1: t1, 2: t2}) for key, (t1, t2) in parsed.instances.items()]
        results = [r for chunk in compute_separability(instances, None, metrics=("rouge1",)) for r in chunk]
        separability = {key[0]: value for key, value in normalise(results).items()}
        decisive = [j.winner_system for j in parsed.judgments if j.winner_system]
        majority = max((1, 2), key=decisive.count)
        for key in parsed.instances:
            judged = [j for j in parsed.judgments if j.instance_key == key]
            out.append((file_index, float(separability[key]),
                        [j.winner_system == majority for j in judged if j.winner_system],
                        sum(j.winner_system is None for j in judged)))
    return out


def fit_vote_model(units) -> dict:
    """Maximum likelihood of logit P(vote for the file's majority) = delta_file * exp(sharpness * (s - median)):
    one strength per file (the two pairs differ), one sharpness for how separability scales the signal."""
    s = np.array([u[1] for u in units for _ in u[2]])
    agree = np.array([x for u in units for x in u[2]], dtype=float)
    file_index = np.array([u[0] for u in units for _ in u[2]])
    median = float(np.median([u[1] for u in units]))

    def nll(w):
        z = w[file_index] * np.exp(w[-1] * (s - median))
        return -float(np.sum(agree * log_expit(z) + (1 - agree) * log_expit(-z)))

    files = int(file_index.max()) + 1
    full = minimize(nll, np.r_[np.ones(files), 0.0], method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6})
    flat = minimize(lambda w: nll(np.r_[w, 0.0]), np.ones(files), method="Nelder-Mead")
    ties = sum(u[3] for u in units)
    return {"sharpness": float(full.x[-1]), "file_strengths": [float(x) for x in full.x[:-1]],
            "median_separability": median, "tie_rate": ties / (ties + len(agree)),
            "likelihood_ratio": 2 * (flat.fun - full.fun), "decisive_votes": len(agree), "units": len(units)}


def run_all(pool, policies, seeds, budget, step, reference=None) -> dict[str, list[Curve]]:
    return {policy: [run_policy(pool, policy, seed=seed, budget=budget, step=step, reference=reference,
                                confidence=0.95) for seed in range(seeds)] for policy in policies}


def summarise(curves: dict[str, list[Curve]]) -> dict[str, dict]:
    rows = {}
    for policy, runs in curves.items():
        spearman = [votes_to_reach(c, SPEARMAN_TARGET) for c in runs]
        kendall = [votes_to_reach(c, KENDALL_TARGET, "kendall") for c in runs]
        reached = [v for v in spearman if v is not None]
        rows[policy] = {
            "median": float(np.median(reached)) if len(reached) * 2 > len(runs) else None,
            "interval": percentile_interval(reached) if reached else None,
            "reached": len(reached), "runs": len(runs),
            "kendall_median": (float(np.median([v for v in kendall if v is not None]))
                               if sum(v is not None for v in kendall) * 2 > len(runs) else None),
        }
    base = rows.get("random", {}).get("median")
    for row in rows.values():
        row["ratio"] = row["median"] / base if base and row["median"] else None
    return rows


def table(title: str, rows: dict[str, dict]) -> str:
    lines = [f"{title}", "| policy | votes to Spearman ≥ 0.95 (median) | 95% interval | reached | "
             "votes to Kendall ≥ 0.85 (median) | ratio to random |", "|---|---|---|---|---|---|"]
    for policy, r in rows.items():
        interval = f"{r['interval'][0]:.0f}–{r['interval'][1]:.0f}" if r["interval"] else "—"
        lines.append(f"| {policy} | {r['median'] if r['median'] is not None else 'not reached'} | {interval} | "
                     f"{r['reached']}/{r['runs']} | {r['kendall_median']} | "
                     f"{r['ratio']:.2f} |" if r["ratio"] else f"| {policy} | {r['median']} | {interval} | "
                     f"{r['reached']}/{r['runs']} | {r['kendall_median']} | — |")
    return "\n".join(lines)


def plot(path: Path, panels: dict[str, dict[str, list[Curve]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2))
    for axis, (title, curves) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        for policy, runs in curves.items():
            votes = runs[0].votes
            values = np.nanmedian(np.array([c.spearman for c in runs], dtype=float), axis=0)
            axis.plot(votes, values, label=policy)
        axis.axhline(SPEARMAN_TARGET, color="grey", linestyle=":", linewidth=1)
        axis.set_title(title)
        axis.set_xlabel("votes")
        axis.set_ylabel("Spearman with the reference ranking (median over seeds)")
        axis.set_ylim(0.5, 1.0)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--step", type=int, default=50, help="votes between two checkpoints")
    parser.add_argument("--synthetic-budget", type=int, default=6000)
    parser.add_argument("--json", action="store_true", help="print only the medians, as JSON")
    parser.add_argument("--plot", type=Path, help="write votes -> Spearman, one line per policy (SVG or PNG)")
    parser.add_argument("--fit", action="store_true", help="print the vote model's fit and stop")
    args = parser.parse_args()

    units = paper_units()
    fit = fit_vote_model(units)
    if args.fit:
        print(json.dumps(fit, indent=1))
        return
    pool, _ = load_llmfao()
    replay = run_all(pool, REPLAY_POLICIES, args.seeds, int(pool.slots().sum()), args.step,
                     reference=replay_reference(pool))
    synthetic_pool = SyntheticPool.build(evenly_spread(20), [u[1] for u in units], instances=50, seed=0)
    synthetic = run_all(synthetic_pool, SYNTHETIC_POLICIES, args.seeds, args.synthetic_budget, args.step)
    rows = {"replay": summarise(replay), "synthetic": summarise(synthetic)}
    if args.plot:
        plot(args.plot, {"replay: LLMFAO crowd votes": replay, "synthetic: 20 systems, paper separability": synthetic})
    if args.json:
        print(json.dumps({name: {p: r["median"] for p, r in part.items()} for name, part in rows.items()}))
        return
    print(f"vote model fit: {json.dumps(fit)}")
    print(table(f"replay (LLMFAO, {int(pool.slots().sum())} votes, {args.seeds} seeds)", rows["replay"]))
    print()
    print(table(f"synthetic (20 systems, budget {args.synthetic_budget}, {args.seeds} seeds)", rows["synthetic"]))


if __name__ == "__main__":
    main()
