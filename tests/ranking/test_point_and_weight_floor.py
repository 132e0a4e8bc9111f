"""The leaderboard's point estimate is the centre of its own interval, and the weighted boards rank every
system the plain ones rank.

1. Every method reports as its rating the median of the bootstrap distribution its 95% percentile interval
   comes from, so ci_low <= rating <= ci_high always, without widening the interval. Checked against an
   independent bootstrap of Chatbot Arena's Elo loop, on random vote sets (Hypothesis, tiny and lopsided
   ones included) and on the real demo data (PandaLM labels, the separability paper's two crowd batches).
2. Separability weights have a floor, w = max(clip(separability, 0, 1), 0.05), so a pair whose units have
   no separability (k = 1) or separability <= 0 stays in the weighted comparison graph. Checked on the
   PandaLM demo with the demo's own pattern of defined separability (ROUGE-1 from this project's engine:
   pythia-6.9b's only defined units are negative, which disconnected it), on a constructed bridge edge of
   weight 0, against an independent scipy fit, and for data where no unit has separability at all.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ranking.ratings import (
    METHODS,
    WEIGHT_FLOOR,
    RatingError,
    apply_weight_floor,
    bootstrap_bt,
    bradley_terry,
    compute_leaderboard,
    elo,
    factorize_systems,
    scores_from_winners,
    separability_weight,
)

from .test_ratings import arena_compute_elo, negative_log_likelihood_fit, pandalm_votes

ROOT = Path(__file__).resolve().parents[2]
PANDALM_JSON = ROOT / "demo/data/pandalm/testset-v1.json"
PAPER_FILES = {
    "cnn-dm": (ROOT / "demo/data/separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv",
               ("flan-t5-xxl", "gpt-3.5-turbo-instruct")),
    "samsum": (ROOT / "demo/data/separability-paper/mistral-7b_vicuna-7b_samsum_pref_data.csv",
               ("mistral-7b", "vicuna-7b")),
}
PANDALM_SYSTEMS = {"llama-7b", "bloom-7b", "cerebras-gpt-6.7B", "opt-7b", "pythia-6.9b"}


# --- Independent references -----------------------------------------------------------------------

def reference_bootstrap_elo(system_a, system_b, score, weights, rounds, seed, k=4.0):
    """Chatbot Arena's Elo loop (plain Python, dicts) replayed on each bootstrap resample.

    The resamples are drawn as `ranking.elo.bootstrap_elo` draws them (numpy's default_rng(seed), one
    `integers(0, N, N, dtype=int32)` call per round), so the two must agree to rounding."""
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(list(system_a) + list(system_b)))
    label = {1.0: "model_a", 0.0: "model_b", 0.5: "tie"}
    out = np.empty((rounds, len(names)))
    for r in range(rounds):
        picks = rng.integers(0, len(score), size=len(score), dtype=np.int32)
        if weights is None:
            rating = arena_compute_elo([(system_a[i], system_b[i], label[score[i]]) for i in picks], K=k)
        else:  # K times the vote's weight, zero-sum
            rating = dict.fromkeys(names, 1000.0)
            for i in picks:
                x, y = system_a[i], system_b[i]
                expected = 1 / (1 + 10 ** ((rating[y] - rating[x]) / 400))
                delta = k * weights[i] * (score[i] - expected)
                rating[x] += delta
                rating[y] -= delta
        out[r] = [rating.get(name, 1000.0) for name in names]
    return names, out


def board_by_system(board):
    return {row.system: row for row in board.rows}


def bootstrap_samples(system_a, system_b, winner, method, weights, rounds, seed):
    """The bootstrap distribution compute_leaderboard should summarise, computed outside it."""
    score, keep = scores_from_winners(winner)
    assert keep.all()
    floored = apply_weight_floor(weights) if method.startswith("weighted") else None
    if floored is not None and np.all(np.asarray(weights) <= WEIGHT_FLOOR):
        floored = None  # no separability anywhere: the plain board
    if method in ("elo", "weighted_elo"):
        return reference_bootstrap_elo(list(system_a), list(system_b), list(score),
                                       None if floored is None else list(floored), rounds, seed)
    a, b, names = factorize_systems(system_a, system_b)
    return names, bootstrap_bt(a, b, score, len(names), weights=floored, rounds=rounds, seed=seed)


def assert_point_is_median_inside_percentile_interval(board, names, samples, tolerance=1e-6):
    low, median, high = np.percentile(samples, [2.5, 50, 97.5], axis=0)
    rows = board_by_system(board)
    assert set(rows) == set(names)
    for i, name in enumerate(names):
        row = rows[name]
        assert row.ci_low <= row.rating <= row.ci_high, (board.method, name, row)
        # The interval is the plain percentile interval (not widened) and the rating its median.
        assert row.ci_low == pytest.approx(low[i], abs=tolerance), (board.method, name)
        assert row.ci_high == pytest.approx(high[i], abs=tolerance), (board.method, name)
        assert row.rating == pytest.approx(median[i], abs=tolerance), (board.method, name)
    assert board.point == f"bootstrap median of {board.rounds} rounds"
    assert board.to_dict()["point"] == board.point


def check_every_method(system_a, system_b, winner, weights, rounds=100, seed=0):
    for method in METHODS:
        board = compute_leaderboard(system_a, system_b, winner, method=method,
                                    weights=weights if method.startswith("weighted") else None, rounds=rounds,
                                    seed=seed)
        names, samples = bootstrap_samples(system_a, system_b, winner, method, weights, rounds, seed)
        assert_point_is_median_inside_percentile_interval(board, names, samples)


# --- Real data: PandaLM and the separability paper's crowd batches ------------------------------------

def rouge_separability(instances: dict[str, dict[str, list[str]]]) -> dict[tuple[str, str, str], float | None]:
    """Normalised ROUGE-1 separability per (instance, system, system), from this project's engine (no model
    needed); None where a system has fewer than two distinct outputs, as in the demo."""
    from separability.engine import InstanceSamples, compute_separability, normalise

    samples_of = [InstanceSamples(key, samples) for key, samples in instances.items()]
    results = [r for chunk in compute_separability(samples_of, None, metrics=("rouge1",)) for r in chunk]
    return {(key, a, b): value for (key, a, b, _), value in normalise(results).items()}


def pandalm_votes_with_separability():
    """The PandaLM demo's 2,997 votes with each unit's separability (None for most: k = 1)."""
    items = json.loads(PANDALM_JSON.read_text(encoding="utf-8"))
    samples: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def prompt(item):  # as demo.sources.pandalm_prompt: an instance is one prompt
        instruction, extra = item["instruction"].strip(), (item.get("input") or "").strip()
        return f"{instruction}\n\n{extra}" if extra else instruction

    for item in items:
        model1, model2 = item["cmp_key"].split("_")
        for system, text in ((model1, item["response1"]), (model2, item["response2"])):
            text = str(text)  # a few responses are JSON booleans
            if text not in samples[prompt(item)][system]:
                samples[prompt(item)][system].append(text)
    separability = rouge_separability({key: dict(value) for key, value in samples.items()})
    system_a, system_b, winner, sep = [], [], [], []
    for item in items:
        model1, model2 = item["cmp_key"].split("_")
        unit = separability[(prompt(item), *sorted((model1, model2)))]
        for key in ("annotator1", "annotator2", "annotator3"):
            system_a.append(model1)
            system_b.append(model2)
            winner.append({0: "tie", 1: "a", 2: "b"}[item[key]])
            sep.append(unit)
    return system_a, system_b, winner, sep


def paper_votes_with_separability(study):
    from annotations.imports.parse import parse_pairwise_csv

    path, (first, second) = PAPER_FILES[study]
    parsed = parse_pairwise_csv(path, max_text_bytes=10**6)
    separability = rouge_separability({key: {first: texts1, second: texts2}
                                       for key, (texts1, texts2) in parsed.instances.items()})
    system_a, system_b, winner, sep = [], [], [], []
    for judgment in parsed.judgments:
        system_a.append(first)
        system_b.append(second)
        winner.append({1: "a", 2: "b", None: "tie"}[judgment.winner_system])
        sep.append(separability[(judgment.instance_key, *sorted((first, second)))])
    return system_a, system_b, winner, sep


def test_pandalm_every_rating_is_the_median_inside_its_interval():
    system_a, system_b, winner = pandalm_votes()
    assert (system_a, system_b, winner) == pandalm_votes_with_separability()[:3]  # the CSV is the demo's JSON
    sep = pandalm_votes_with_separability()[3]
    assert len(sep) == len(winner) == 2997
    check_every_method(system_a, system_b, winner, [separability_weight(s) for s in sep])


@pytest.mark.parametrize("study", sorted(PAPER_FILES))
def test_paper_batches_every_rating_is_the_median_inside_its_interval(study):
    system_a, system_b, winner, sep = paper_votes_with_separability(study)
    assert len(winner) == 750 and all(s is not None for s in sep)  # k = 5: separability everywhere
    check_every_method(system_a, system_b, winner, [separability_weight(s) for s in sep])


def test_vote_order_elo_can_lie_outside_the_bootstrap_interval_which_is_why_it_is_not_reported():
    """The bug seen on the page, "1181.8 (1182-1222)": the CNN/DailyMail batch's Elo in vote order lies
    outside the spread of Elo over resampled (hence reshuffled) orders; the board now reports the median."""
    system_a, system_b, winner, sep = paper_votes_with_separability("cnn-dm")
    score, _ = scores_from_winners(winner)
    a, b, names = factorize_systems(system_a, system_b)
    in_order = elo(a, b, score, len(names))
    _, samples = reference_bootstrap_elo(system_a, system_b, list(score), None, 100, 0)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    board = board_by_system(compute_leaderboard(system_a, system_b, winner, method="elo"))
    outside = [(name, in_order[i]) for i, name in enumerate(names) if not low[i] <= in_order[i] <= high[i]]
    assert outside, "expected vote-order Elo outside its bootstrap interval on this file"
    gpt = names.index("gpt-3.5-turbo-instruct")
    assert round(in_order[gpt], 1) == 1181.8 and round(low[gpt]) == 1185 and round(high[gpt]) == 1222
    for i, name in enumerate(names):
        assert board[name].ci_low == pytest.approx(low[i]) and board[name].ci_high == pytest.approx(high[i])
        assert low[i] <= board[name].rating <= high[i]


# --- Random vote sets, tiny and lopsided ones included ---------------------------------------------

@st.composite
def vote_sets(draw):
    """Connected vote sets of 2-6 systems: a chain through every system, then extra votes; winners may be
    all one way (lopsided); weights in [0, 1] with many exact zeros."""
    n = draw(st.integers(2, 6))
    names = [f"s{i}" for i in range(n)]
    order = draw(st.permutations(names))
    pairs = [(order[i], order[i + 1]) for i in range(n - 1)]
    extra = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)).filter(lambda p: p[0] != p[1]),
                          max_size=25))
    pairs += extra
    lopsided = draw(st.booleans())
    outcomes = st.sampled_from(["a"]) if lopsided else st.sampled_from(["a", "b", "tie", "both_bad"])
    winner = draw(st.lists(outcomes, min_size=len(pairs), max_size=len(pairs)))
    weights = draw(st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1.0)), min_size=len(pairs), max_size=len(pairs)))
    return [p[0] for p in pairs], [p[1] for p in pairs], winner, weights


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vote_sets(), st.integers(0, 3), st.sampled_from([20, 50]))
def test_random_votes_every_rating_is_the_median_inside_its_interval(votes, seed, rounds):
    system_a, system_b, winner, weights = votes
    check_every_method(system_a, system_b, winner, weights, rounds=rounds, seed=seed)


@pytest.mark.parametrize("seed", range(6))
def test_seeded_lopsided_and_tiny_sets(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    names = [f"m{i}" for i in range(n)]
    size = int(rng.integers(n - 1, 3 * n))
    system_a = [names[i] for i in range(n - 1)] + [names[int(rng.integers(0, n - 1))] for _ in range(size - n + 1)]
    system_b = [names[i + 1] for i in range(n - 1)] + [names[n - 1]] * (size - n + 1)
    winner = ["a"] * size if seed % 2 else list(rng.choice(["a", "b", "tie"], size))
    weights = list(rng.choice([0.0, 0.3, 1.0], size))
    check_every_method(system_a, system_b, winner, weights, rounds=40, seed=seed)


def test_without_bootstrap_the_rating_is_the_classic_estimate_and_says_so():
    system_a, system_b, winner = ["x", "y", "x", "z"], ["y", "z", "z", "y"], ["a", "b", "tie", "a"]
    board = compute_leaderboard(system_a, system_b, winner, method="elo", rounds=0)
    assert board.point == "Elo in vote order (no bootstrap)"
    expected = arena_compute_elo([("x", "y", "model_a"), ("y", "z", "model_b"), ("x", "z", "tie"),
                                  ("z", "y", "model_a")])
    assert board.ratings() == pytest.approx(expected, abs=1e-9)
    board = compute_leaderboard(system_a, system_b, winner, method="bt", rounds=0)
    assert board.point == "maximum-likelihood estimate (no bootstrap)"
    with pytest.raises(RatingError, match="permutations set the Elo rating only without bootstrap"):
        compute_leaderboard(system_a, system_b, winner, method="elo", rounds=10, permutations=5)


# --- The weight floor --------------------------------------------------------------------------------

def test_separability_weight_by_hand():
    assert WEIGHT_FLOOR == 0.05
    assert separability_weight(None) == 0.05  # undefined (k = 1) or not computed
    assert separability_weight(float("nan")) == 0.05
    assert separability_weight(-0.2) == 0.05
    assert separability_weight(0.0) == 0.05
    assert separability_weight(0.03) == 0.05
    assert separability_weight(0.35) == 0.35
    assert separability_weight(1.4) == 1.0
    np.testing.assert_array_equal(apply_weight_floor([0.0, 0.05, 0.5, 1.0]), [0.05, 0.05, 0.5, 1.0])


def test_pandalm_demo_weighted_boards_rank_all_five_systems():
    """As in the demo: separability is defined on a handful of units only, and pythia-6.9b's are all
    negative, so with weight 0 the weighted graph lost pythia-6.9b ('2 disconnected groups')."""
    system_a, system_b, winner, sep = pandalm_votes_with_separability()
    defined = [(a, b, s) for a, b, s in zip(system_a, system_b, sep, strict=True) if s is not None]
    assert 0 < len(defined) < 100  # k = 1 nearly everywhere
    pythia = [s for a, b, s in defined if "pythia-6.9b" in (a, b)]
    assert pythia and max(pythia) <= 0  # normalised <= 0: clipped weight 0 before the floor
    # What the site passes today: the clipped separability, 0 where it is undefined.
    clipped = [0.0 if s is None else min(max(s, 0.0), 1.0) for s in sep]
    plain = compute_leaderboard(system_a, system_b, winner, method="bt", rounds=20)
    assert set(plain.systems) == PANDALM_SYSTEMS
    for method in ("weighted_bt", "weighted_elo"):
        board = compute_leaderboard(system_a, system_b, winner, method=method, weights=clipped, rounds=20)
        assert set(board.systems) == PANDALM_SYSTEMS, method
        assert any("floor" in note for note in board.notes)
        for row in board.rows:
            assert row.ci_low <= row.rating <= row.ci_high
        # The same board from weights that already carry the floor (separability_weight): the core's
        # floor changes nothing on them.
        floored = [separability_weight(s) for s in sep]
        assert board.to_dict() == compute_leaderboard(system_a, system_b, winner, method=method, weights=floored,
                                                      rounds=20).to_dict()


BRIDGE = (
    # {a, b} and {c, d} are each well compared with separable votes; the only b-c votes have weight 0.
    [("a", "b", "a", 0.9)] * 6 + [("a", "b", "b", 0.8)] * 3 + [("c", "d", "a", 0.7)] * 5 + [("c", "d", "b", 0.9)] * 4
    + [("b", "c", "a", 0.0)] * 4 + [("b", "c", "b", 0.0)] * 1
)


def test_bridge_edge_of_weight_zero_keeps_every_system_ranked():
    system_a, system_b, winner, weights = map(list, zip(*BRIDGE, strict=True))
    plain = compute_leaderboard(system_a, system_b, winner, method="bt", rounds=30)
    assert set(plain.systems) == {"a", "b", "c", "d"}
    for method in ("weighted_bt", "weighted_elo"):
        board = compute_leaderboard(system_a, system_b, winner, method=method, weights=weights, rounds=30)
        assert set(board.systems) == {"a", "b", "c", "d"}
        for row in board.rows:
            assert row.ci_low <= row.rating <= row.ci_high
    # The weighted maximum-likelihood fit is the one with w = max(w, 0.05), by an independent scipy fit.
    score, _ = scores_from_winners(winner)
    a, b, names = factorize_systems(system_a, system_b)
    floored = np.maximum(weights, 0.05)
    reference = negative_log_likelihood_fit(a, b, score, len(names), floored)
    mle = compute_leaderboard(system_a, system_b, winner, method="weighted_bt", weights=weights, rounds=0)
    assert mle.point == "maximum-likelihood estimate (no bootstrap)"
    for i, name in enumerate(names):
        assert mle.row(name).rating == pytest.approx(reference[i], abs=1e-5)
    # By hand: the graph is a path a-b-c-d, so each edge's rating gap is fitted to that edge's votes alone,
    # 400 log10(weighted wins / weighted losses); the bridge's 4:1 record at weight 0.05 each is still 4:1.
    gap = lambda x, y: mle.row(x).rating - mle.row(y).rating  # noqa: E731
    assert gap("a", "b") == pytest.approx(400 * math.log10(6 * 0.9 / (3 * 0.8)), abs=1e-6)
    assert gap("b", "c") == pytest.approx(400 * math.log10(4), abs=1e-6)
    assert gap("c", "d") == pytest.approx(400 * math.log10(5 * 0.7 / (4 * 0.9)), abs=1e-6)


def test_weighted_elo_and_weighted_bt_form_the_weights_the_same_way():
    """Both weighted methods see w = max(clip(separability, 0, 1), 0.05): Elo moves by K * w (checked with
    a hand-written loop), Bradley-Terry counts each vote w times (checked with the scipy fit)."""
    rng = np.random.default_rng(21)
    names = ["p", "q", "r", "s"]
    system_a = [names[i] for i in rng.integers(0, 4, 120)]
    system_b = [names[(names.index(x) + int(rng.integers(1, 4))) % 4] for x in system_a]
    winner = list(rng.choice(["a", "b", "tie"], 120))
    sep = [None if u < 0.3 else float(v) for u, v in zip(rng.random(120), rng.normal(0.2, 0.4, 120), strict=True)]
    weights = [separability_weight(s) for s in sep]
    clipped = [0.0 if s is None else min(max(s, 0.0), 1.0) for s in sep]
    score, _ = scores_from_winners(winner)

    rating = dict.fromkeys(names, 1000.0)
    for x, y, s, w in zip(system_a, system_b, score, weights, strict=True):
        delta = 4 * w * (s - 1 / (1 + 10 ** ((rating[y] - rating[x]) / 400)))
        rating[x] += delta
        rating[y] -= delta
    for given_weights in (weights, clipped):
        board = compute_leaderboard(system_a, system_b, winner, method="weighted_elo", weights=given_weights,
                                    rounds=0)
        assert board.ratings() == pytest.approx(rating, abs=1e-9)

    a, b, order = factorize_systems(system_a, system_b)
    reference = negative_log_likelihood_fit(a, b, score, 4, np.array(weights))
    for given_weights in (weights, clipped):
        board = compute_leaderboard(system_a, system_b, winner, method="weighted_bt", weights=given_weights,
                                    rounds=0)
        for i, name in enumerate(order):
            assert board.row(name).rating == pytest.approx(reference[i], abs=1e-5)
    np.testing.assert_allclose(bradley_terry(a, b, score, 4, weights=np.array(weights)), reference, atol=1e-5)


@pytest.mark.parametrize("weight", [0.0, 0.05, 0.02])
def test_no_unit_with_separability_gives_the_plain_board_and_says_so(weight):
    system_a, system_b, winner = pandalm_votes()
    weights = [weight] * len(winner)
    for plain_method, weighted_method in (("elo", "weighted_elo"), ("bt", "weighted_bt")):
        plain = compute_leaderboard(system_a, system_b, winner, method=plain_method, rounds=30)
        weighted = compute_leaderboard(system_a, system_b, winner, method=weighted_method, weights=weights, rounds=30)
        assert [r.to_dict() for r in weighted.rows] == [r.to_dict() for r in plain.rows]
        assert weighted.point == plain.point
        assert any("no unit has separability above the floor" in note.lower()
                   and "the weighted board is the plain one" in note for note in weighted.notes)
        assert not any("weighted board" in note for note in plain.notes)


def test_vectorised_weights_are_the_scalar_weights():
    from ranking.common import separability_weight, separability_weights

    values = [None, float("nan"), -0.3, 0.0, 0.01, 0.05, 0.2, 0.999, 1.0, 1.7]
    expected = [separability_weight(v) for v in values]
    assert separability_weights([float("nan") if v is None else v for v in values]).tolist() == expected
