"""The engine's CPU-side shortcuts give exactly what they replace (no Django).

The batch tokenisation must give bert-score's ``sent_encode`` ids, the memoised ROUGE-1 tokens
rouge-score's ``tokenize``, the sparse overlaps rouge-score's F values (``==``, not approximately), and
the prefetch thread the same results as computing inline, errors included.
"""
import csv
import os
import random
import string
from pathlib import Path

import numpy as np
import pytest

from separability.engine import InstanceSamples, SeparabilityScorer, alignment_from_matrix, compute_separability
from separability.rouge import RougeTable, clear_cache, rouge1_matrix, rouge_tokens

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "demo" / "data" / "separability-paper"


def paper_texts() -> list[str]:
    out: dict[str, None] = {}
    for path in sorted(DATA.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for i in range(1, 6):
                    for col in (f"Input.model1_summary{i}", f"Input.model2_summary{i}"):
                        out.setdefault(row[col], None)
    return list(out)


def odd_texts() -> list[str]:
    rng = random.Random(14)
    alphabet = string.printable + "\x00\x01\x0b\x0c\x1c\x1f\x7f"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300))) for _ in range(400)]
    texts += [" ".join(rng.choice(["a" * rng.randint(95, 105), "b", "c."]) for _ in range(6)) for _ in range(30)]
    texts += [
        "[MASK] hello [CLS] x [SEP] [PAD] [UNK]", "don't U.S.A. e-mail 3.14 $5 #tag @me", "\t\n x \r", "",
        "   ", " ".join(["word"] * 700), "Café naïve résumé – “quoted” 東京 😀", "ÀÉÎ õü ß", "\u00a0nbsp\u2003em",
    ]
    return texts


@pytest.fixture(scope="module")
def scorer():
    return SeparabilityScorer(num_layers=6, device="cpu", batch_size=8)


def test_paper_data_is_there():
    assert len(paper_texts()) == 858  # 455 CNN/DM + 403 SAMSum distinct texts


def test_tokenize_many_equals_sent_encode(scorer):
    from bert_score.utils import sent_encode

    texts = paper_texts() + odd_texts()
    many = scorer.tokenize_many(texts)
    assert scorer._batch_tokenizer is not None  # the fast path is the one under test
    for text, ids in zip(texts, many, strict=True):
        want = scorer._empty_ids if not text.strip() else tuple(sent_encode(scorer.tokenizer, text))
        assert ids == want, text
    assert [scorer.tokenize(t) for t in texts] == many


def test_rouge_tokens_equal_rouge_score_tokenize():
    from nltk.stem import porter
    from rouge_score import tokenize

    stemmer = porter.PorterStemmer()
    clear_cache()
    for text in paper_texts() + odd_texts():
        assert rouge_tokens(text) == tokenize.tokenize(text, stemmer), text


def test_rouge1_equals_rouge_score_exactly():
    from rouge_score import rouge_scorer

    rs = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    rng = random.Random(3)
    texts = rng.sample(paper_texts(), 40) + ["", "the the the cat", "The cat the", "!!!"]
    m = rouge1_matrix([rouge_tokens(t) for t in texts])
    for i, x in enumerate(texts):
        for j, y in enumerate(texts):
            assert m[i, j] == rs.score(x, y)["rouge1"].fmeasure, (x, y)  # the target is the row
    # any subset of a table, in any order, is the same as its own matrix
    table = RougeTable([rouge_tokens(t) for t in texts])
    rows = [5, 2, 43, 2, 0]
    assert np.array_equal(table.matrix(rows), m[np.ix_(rows, rows)])
    assert len(table) == len(texts) and RougeTable([]).matrix().shape == (0, 0)


def synthetic(n: int) -> list[InstanceSamples]:
    texts = paper_texts()
    rng = random.Random(7)
    out = []
    for i in range(n):
        topic = rng.sample(texts, 12)
        out.append(InstanceSamples(i, {s: [rng.choice(topic) for _ in range(1 + s % 3)] for s in range(5)}))
    out.append(InstanceSamples("empty", {1: ["", "  "], 2: ["x", ""], 3: ["one"]}))
    return out


def test_prefetch_gives_the_same_results_as_inline(scorer):
    insts = synthetic(12)
    a = [r for c in compute_separability(insts, scorer, max_texts_per_chunk=20, prefetch=True) for r in c]
    b = [r for c in compute_separability(insts, scorer, max_texts_per_chunk=20, prefetch=False) for r in c]
    assert a == b and len(a) == 12 * 10 * 3 + 3 * 3


def test_block_alignments_equal_the_per_pair_formula(scorer):
    insts = synthetic(6)
    res = [r for c in compute_separability(insts, scorer, metrics=("rouge1",)) for r in c]
    by = {(r.key, r.system_a, r.system_b): r for r in res}
    for inst in insts:
        systems = sorted(inst.samples)
        texts = [t for s in systems for t in inst.samples[s]]
        sim = rouge1_matrix([rouge_tokens(t) for t in texts])
        starts = np.cumsum([0] + [len(inst.samples[s]) for s in systems])
        for i, a in enumerate(systems):
            for j in range(i + 1, len(systems)):
                want = alignment_from_matrix(sim, range(starts[i], starts[i + 1]), range(starts[j], starts[j + 1]))
                r = by[(inst.key, a, systems[j])]
                got = (r.self_a, r.self_b, r.cross, r.separability)
                for u, v in zip(want, got, strict=True):
                    assert (u is None and v is None) or abs(u - v) <= 1e-12


def test_an_error_in_the_worker_reaches_the_consumer_and_closing_stops_it(scorer):
    insts = synthetic(4) + [InstanceSamples("bad", {1: "not a list", 2: ["x"]})]
    with pytest.raises(TypeError, match="list of str"):
        list(compute_separability(insts, scorer, max_texts_per_chunk=5))
    gen = compute_separability(synthetic(10), scorer, max_texts_per_chunk=5)
    first = next(gen)
    assert first
    gen.close()  # the worker pool is shut down; nothing is left running
