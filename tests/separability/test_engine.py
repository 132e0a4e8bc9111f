"""Tests of the pure separability engine (no Django): bert-score parity, formulas, chunking."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from separability.engine import (
    METRICS,
    InstanceSamples,
    PairResult,
    SeparabilityScorer,
    alignment_from_matrix,
    compute_separability,
    default_model_path,
    length_factor_matrix,
    normalise,
    resolve_device,
)
from separability.rouge import rouge1_matrix, rouge_tokens

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]

# Real generations from the human study released with Ghosh, Srinivasan & Swayamdipta,
# "Compare without Despair" (EMNLP Findings 2024): GitHub dill-lab/separability, commit
# 933ec51e72b6a115400f2f35d64343edcdc43e5e, data/preference_data/ (MIT licence). Row 4 of
# mistral-7b_vicuna-7b_samsum_pref_data.csv (1 = mistral-7b, 2 = vicuna-7b) and row 4 of
# flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv (1 = flan-t5-xxl, 2 = gpt-3.5-turbo-instruct),
# first three sample pairs of each.
PAPER = {
    "samsum-4": {
        1: [
            "Milena asked about the presentation's attendance and reception, with Regina confirming it was "
            "well-received by the small audience of three people. Milena expressed that a passionate, engaged "
            "audience of few is more valuable than a large, disinterested one. Kate agreed.",
            "Milena asked about the presentation's attendance and feedback, with Regina confirming it was "
            "well-received by the small audience of three people. Milena expressed her belief that a focused, "
            "interested audience is more valuable than a large, bored one, which was agreed upon by Kate.",
            "Milena asked about the presentation's attendance and reception, with Regina confirming a positive "
            "response from the small audience of three people. Milena expressed that a focused, interested "
            "audience can be more valuable than a large, unengaged one.",
        ],
        2: [
            "The presentation was well-received with positive feedback from the audience. There were only 3 "
            "people present, but they were interested and engaged in the topic.",
            "The presentation was well-received with positive feedback. There were only 3 people in attendance, "
            "but they were interested and engaged.",
            "The presentation was well-received with positive feedback from the audience. There were only three "
            "people present, but they were interested and engaged.",
        ],
    },
    "cnndm-4": {
        1: [
            "The Supreme Court's ruling on marriage equality is a political decision, and it's a political court.",
            "The Supreme Court has evolved in the past, but it still has a long way to go.",
            "The best part of the Supreme Court oral arguments about marriage equality was when Justice Ruth Bader "
            "Ginsburg alluded to S&M. OK, she didn't actually mention S&M, but Ginsburg talked about how the "
            'institution of marriage has already changed from long ago, when it was "a dominant and a subordinate '
            'relationship."',
        ],
        2: [
            "The Supreme Court oral arguments about marriage equality highlighted the changing definition of "
            "marriage and the role of politics in the court's decision-making. Justice Ruth Bader Ginsburg alluded "
            "to the historical subordination of women in marriage, while Justice Clarence Thomas, a black man "
            "married to a white woman, remained silent. The court's decision is expected to be divided along "
            "ideological lines, reflecting the increasing partisanship of the court.",
            "The author discusses the recent Supreme Court oral arguments about marriage equality and how the "
            "definition of marriage has evolved over time. They also mention the role of politics in the court's "
            "decision-making process and the possibility of a divided ruling. The article ultimately argues that "
            "the court should rule in favor of marriage equality.",
            "The article discusses the recent Supreme Court oral arguments on marriage equality and how the "
            "definition of marriage has changed over time. It also highlights the role of politics in the court's "
            "decision-making process and the potential impact of the ruling on both same-sex and opposite-sex "
            "couples. The author argues that the court has become increasingly partisan and divorced from reason, "
            "and the ultimate decision may depend on which side of the court holds more influence.",
        ],
    },
}
PAPER_TEXTS = [t for inst in PAPER.values() for s in (1, 2) for t in inst[s]]


def paper_instances():
    return [InstanceSamples(key, {s: list(v) for s, v in samples.items()}) for key, samples in PAPER.items()]


@pytest.fixture(scope="module")
def scorer():
    return SeparabilityScorer(num_layers=6, device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def bert_scorer():
    from bert_score import BERTScorer

    return BERTScorer(model_type=default_model_path(), num_layers=6, idf=False, device="cpu")


def flatten(chunks):
    return [r for chunk in chunks for r in chunk]


# ----------------------------------------------------------------------------- bert-score parity
def test_f1_matrix_equals_bertscorer_score(scorer, bert_scorer):
    """Reference: one ``BERTScorer.score([x], [y])`` call per pair, as the authors' code calls it.

    (A single batched call over many pairs is not a stable reference: bert-score zero-pads the
    similarity rows of the shorter texts of a batch, so a token whose best cosine is negative gets 0
    instead, depending on which other pairs share the batch; with MiniLM this moves F1 by up to ~1e-3
    on dissimilar texts.)
    """
    texts = [PAPER_TEXTS[i] for i in (0, 3, 4, 6, 7, 11)]  # both data sets, both systems, 16 to 76 words
    n = len(texts)
    ours = scorer.f1_matrix(texts)
    assert ours.shape == (n, n)
    assert np.array_equal(ours, ours.T)  # BERTScore F1 is symmetric
    worst = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            _, _, f = bert_scorer.score([texts[i]], [texts[j]])
            worst = max(worst, abs(ours[i, j] - f.item()))
    assert worst <= 1e-5


def test_one_pair_calls_and_empty_text(scorer, bert_scorer):
    texts = [PAPER_TEXTS[0], PAPER_TEXTS[4], "", "   "]
    ours = scorer.f1_matrix(texts)
    for i, j in [(0, 1), (1, 0), (0, 0), (0, 2), (2, 3)]:
        _, _, f = bert_scorer.score([texts[i]], [texts[j]])
        assert abs(ours[i, j] - f.item()) <= 1e-5
    # bert-score's rule: an empty candidate or reference scores 0 (itself included)
    assert ours[2, :].tolist() == [0.0] * 4 and ours[:, 3].tolist() == [0.0] * 4


def test_long_text_truncated_like_bertscore(scorer, bert_scorer):
    long = " ".join(PAPER_TEXTS) * 3  # far beyond 512 word pieces
    assert len(scorer.tokenize(long)) == scorer.tokenizer.model_max_length
    ours = scorer.f1_matrix([long, PAPER_TEXTS[1]])
    _, _, f = bert_scorer.score([long], [PAPER_TEXTS[1]])
    assert abs(ours[0, 1] - f.item()) <= 1e-5


def test_duplicates_encoded_once_and_matrix_right(scorer):
    a, b = PAPER_TEXTS[3], PAPER_TEXTS[4]
    before = scorer.texts_encoded
    dup = scorer.f1_matrix([a, b, a, a, b])
    assert scorer.texts_encoded - before == 2
    base = scorer.f1_matrix([a, b])
    idx = [0, 1, 0, 0, 1]
    assert np.array_equal(dup, base[np.ix_(idx, idx)])

    # across the instances of a chunk too
    insts = [
        InstanceSamples("x", {1: [a, a, b], 2: [b, b]}),
        InstanceSamples("y", {1: [b, a], 2: [a, a]}),
    ]
    before = scorer.texts_encoded
    res = flatten(compute_separability(insts, scorer, metrics=("bertscore",)))
    assert scorer.texts_encoded - before == 2
    f_ab = base[0, 1]
    x = res[0]
    assert x.key == "x" and (x.k_a, x.k_b) == (3, 2)
    assert x.self_a == pytest.approx((2 * base[0, 0] + 4 * f_ab) / 6, abs=1e-12)
    assert x.self_b == pytest.approx(base[1, 1], abs=1e-12)
    assert x.cross == pytest.approx((4 * f_ab + 2 * base[1, 1]) / 6, abs=1e-12)


def test_engine_matches_per_pair_formula_on_paper_data(scorer):
    res = flatten(compute_separability(paper_instances(), scorer))
    assert [(r.key, r.metric) for r in res] == [(k, m) for k in PAPER for m in METRICS]
    for r in res:
        texts = PAPER[r.key][1] + PAPER[r.key][2]
        F = scorer.f1_matrix(texts)
        if r.metric == "bertscore":
            sim = F
        elif r.metric == "bertscore_length":
            sim = F * length_factor_matrix([len(t.split()) for t in texts])
        else:
            sim = rouge1_matrix([rouge_tokens(t) for t in texts])
        want = alignment_from_matrix(sim, [0, 1, 2], [3, 4, 5])
        got = (r.self_a, r.self_b, r.cross, r.separability)
        assert got == pytest.approx(want, abs=1e-6)
        assert r.undefined_reason == "" and r.separability is not None


# ----------------------------------------------------------------------------- formulas
def test_alignment_hand_matrix():
    sim = np.array(
        [
            [9.0, 0.8, 0.6, 0.2, 0.4],
            [0.8, 9.0, 0.4, 0.3, 0.1],
            [0.6, 0.4, 9.0, 0.5, 0.5],
            [0.2, 0.3, 0.5, 9.0, 0.7],
            [0.4, 0.1, 0.5, 0.7, 9.0],
        ]
    )  # the diagonal (9.0) must never be used
    self_a, self_b, cross, sep = alignment_from_matrix(sim, [0, 1, 2], [3, 4])
    assert self_a == pytest.approx((0.8 + 0.6 + 0.4) / 3)  # i != j only
    assert self_b == pytest.approx(0.7)
    assert cross == pytest.approx((0.2 + 0.4 + 0.3 + 0.1 + 0.5 + 0.5) / 6)  # all ka * kb pairs
    assert sep == pytest.approx(max(self_a, self_b) - cross)  # max, not mean
    assert sep == pytest.approx(0.7 - 2.0 / 6)


def test_negative_separability_possible():
    sim = np.array([[1, 0.1, 0.9, 0.9], [0.1, 1, 0.9, 0.9], [0.9, 0.9, 1, 0.2], [0.9, 0.9, 0.2, 1]])
    self_a, self_b, cross, sep = alignment_from_matrix(sim, [0, 1], [2, 3])
    assert (self_a, self_b, cross) == pytest.approx((0.1, 0.2, 0.9))
    assert sep == pytest.approx(-0.7)


def test_k1_gives_undefined_with_reason():
    assert alignment_from_matrix(np.eye(3), [0], [1, 2])[0] is None
    insts = [InstanceSamples("i", {"x": ["only one sample"], "y": ["a b", "a c"]})]
    (r,) = flatten(compute_separability(insts, None, metrics=("rouge1",)))
    assert r.separability is None and r.self_a is None
    assert r.self_b == pytest.approx(0.5) and r.cross == pytest.approx(0.0)
    assert "'x' has 1 sample" in r.undefined_reason and "k >= 2" in r.undefined_reason
    assert (r.k_a, r.k_b) == (1, 2)
    assert normalise([r]) == {("i", "x", "y", "rouge1"): None}


def test_three_systems_give_three_pairs_in_sorted_order():
    insts = [InstanceSamples(7, {3: ["c d", "c e"], 1: ["a b", "a b"], 2: ["b c", "b d", "b e"]})]
    res = flatten(compute_separability(insts, None, metrics=("rouge1",)))
    assert [(r.system_a, r.system_b) for r in res] == [(1, 2), (1, 3), (2, 3)]
    r12 = res[0]
    assert (r12.k_a, r12.k_b) == (2, 3)  # different k per system
    assert r12.self_a == pytest.approx(1.0)
    assert r12.self_b == pytest.approx(0.5)
    assert r12.cross == pytest.approx(0.5)  # every (a_i, b_j) shares one of two words
    assert r12.separability == pytest.approx(0.5)


def test_length_adjusted_hand_case(scorer):
    a, b = "the court ruled on marriage today", "the court ruled"  # 6 and 3 words
    insts = [InstanceSamples("L", {1: [a, a], 2: [b, b]})]
    res = {r.metric: r for r in flatten(compute_separability(insts, scorer, metrics=("bertscore", "bertscore_length")))}
    f_ab = scorer.f1_matrix([a, b])[0, 1]
    assert res["bertscore_length"].cross == pytest.approx(f_ab * math.exp(1 - 6 / 3), abs=1e-9)
    assert res["bertscore_length"].self_a == pytest.approx(res["bertscore"].self_a, abs=1e-12)
    fac = length_factor_matrix([4, 2, 0, 0])
    assert fac[0, 1] == pytest.approx(math.exp(-1)) and fac[1, 0] == fac[0, 1]
    assert fac[0, 2] == 0.0 and fac[2, 3] == 1.0 and fac[0, 0] == 1.0


def test_rouge1_hand_case_and_rouge_score_parity():
    m = rouge1_matrix([rouge_tokens(t) for t in ["The cat sat.", "the cat ran", "Running cats!", "run cat", ""]])
    assert m[0, 1] == pytest.approx(2 / 3)  # overlap 2 of 3 words each
    assert m[2, 3] == pytest.approx(1.0)  # Porter stemming: running -> run, cats -> cat
    assert m[4, 4] == 0.0 and m[0, 4] == 0.0
    from rouge_score import rouge_scorer

    rs = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    m = rouge1_matrix([rouge_tokens(t) for t in PAPER_TEXTS])
    for i in range(len(PAPER_TEXTS)):
        for j in range(len(PAPER_TEXTS)):
            assert m[i, j] == pytest.approx(rs.score(PAPER_TEXTS[i], PAPER_TEXTS[j])["rouge1"].fmeasure, abs=1e-12)


def test_normalise_hand_case():
    rs = [
        PairResult("i1", 1, 2, "bertscore", 0.9, 0.5, 0.4, 0.5, 5, 5),
        PairResult("i2", 1, 2, "bertscore", 0.6, 0.7, 0.8, -0.1, 5, 5),
        PairResult("i1", 1, 2, "rouge1", 0.3, 0.3, 0.3, 0.0, 5, 5),  # zero range for this metric
        PairResult("i3", 1, 2, "bertscore", None, 0.95, 0.2, None, 1, 5, "k"),  # counts towards range
    ]
    out = normalise(rs)
    span = 0.95 - 0.2
    assert out[("i1", 1, 2, "bertscore")] == pytest.approx(0.5 / span)
    assert out[("i2", 1, 2, "bertscore")] == pytest.approx(-0.1 / span)
    assert out[("i1", 1, 2, "rouge1")] == 0.0
    assert out[("i3", 1, 2, "bertscore")] is None
    # equals the authors' way: min-max scale self and cross, then max(self) - cross
    lo, hi = 0.2, 0.95
    mm = lambda x: (x - lo) / (hi - lo)  # noqa: E731
    assert out[("i1", 1, 2, "bertscore")] == pytest.approx(max(mm(0.9), mm(0.5)) - mm(0.4))


# ----------------------------------------------------------------------------- chunking and API
def test_chunking_does_not_change_results(scorer):
    insts = paper_instances() + [
        InstanceSamples("mix", {1: PAPER["samsum-4"][1][:2], 2: PAPER["cnndm-4"][2][:2], 3: ["x y z"]})
    ]
    calls = []
    small = list(compute_separability(insts, scorer, max_texts_per_chunk=1, progress=lambda d, t: calls.append((d, t))))
    large = list(compute_separability(insts, scorer, max_texts_per_chunk=10_000))
    assert len(small) == 3 and len(large) == 1
    assert calls == [(1, None), (2, None), (3, None)]
    a, b = flatten(small), flatten(large)
    assert [(r.key, r.system_a, r.system_b, r.metric, r.undefined_reason) for r in a] == [
        (r.key, r.system_a, r.system_b, r.metric, r.undefined_reason) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        for f in ("self_a", "self_b", "cross", "separability"):
            u, v = getattr(x, f), getattr(y, f)
            assert (u is None and v is None) or abs(u - v) <= 1e-6


def test_chunks_respect_the_text_budget():
    insts = [InstanceSamples(i, {1: [f"a{i} b", f"a{i} c"], 2: [f"d{i}", f"e{i}"]}) for i in range(10)]
    chunks = list(compute_separability(insts, None, metrics=("rouge1",), max_texts_per_chunk=9))
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 2]  # 4 distinct texts per instance, at most 9 per chunk


def test_bad_input():
    with pytest.raises(ValueError, match="unknown metric"):
        list(compute_separability([], None, metrics=("bleu",)))
    with pytest.raises(ValueError, match="SeparabilityScorer"):
        list(compute_separability([], None))
    with pytest.raises(TypeError, match="list of str"):
        list(compute_separability([InstanceSamples(1, {1: "abc", 2: ["x", "y"]})], None, metrics=("rouge1",)))


def test_device_and_model_path():
    assert resolve_device("cpu") == "cpu"
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (Path(default_model_path()) / "config.json").is_file()


def test_engine_import_is_light():
    code = (
        "import sys, separability, separability.engine; "
        "heavy = [m for m in ('torch', 'django', 'transformers', 'bert_score') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
