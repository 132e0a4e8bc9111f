"""The verdict parser on the answer shapes real judges give, and on answers it must not guess at."""
import pytest

from judges.verdicts import Verdict, parse_verdict

FIRST, SECOND, TIE, BOTH_BAD = Verdict.FIRST, Verdict.SECOND, Verdict.TIE, Verdict.BOTH_BAD

# (answer, verdict): shapes from MT-Bench (pairwise [[A]]/[[B]]/[[C]]), Arena-Hard ([[A>>B]] ...), AlpacaEval and
# LLMBar ("Output (a)"), PandaLM ("1" / "2" / "Tie" on the first line, then the reason), LLMFAO's GPT-4 prompt
# ("A", "B", "TIE"), JSON-mode chat models, and free sentences.
SHAPES = [
    ("Assistant A provides a more detailed explanation of the function, while B is terse.\n\n[[A]]", FIRST),
    ("Both answers are correct, but Assistant B's is clearer. Final verdict: [[B]]", SECOND),
    ("Both responses are equally helpful and accurate.\n\nMy final verdict is tie: [[C]]", TIE),
    ("My final verdict is: [[A>>B]]", FIRST),
    ("My final verdict is: [[A>B]]", FIRST),
    ("My final verdict is tie: [[A=B]]", TIE),
    ("My final verdict is: [[B>A]]", SECOND),
    ("[[B>>A]]", SECOND),
    ("Output (a)", FIRST),
    ("Output (b)", SECOND),
    ("1\n\n### Reason: Response 1 follows the instruction and gives the answer.", FIRST),
    ("2\n\n### Reason: Response 2 is correct.", SECOND),
    ("Tie\n\n### Reason: Both responses are correct.", TIE),
    ("A", FIRST),
    ("B", SECOND),
    ("TIE", TIE),
    ("**B**", SECOND),
    ('{"winner": "A", "reason": "more complete"}', FIRST),
    ('```json\n{"winner": "model_b"}\n```', SECOND),
    ('{"verdict": "tie"}', TIE),
    ('{"preferred": 2}', SECOND),
    ("Assistant A is better.", FIRST),
    ("Response B is clearly better than response A.", SECOND),
    ("I prefer Output (b) because it is concise.", SECOND),
    ("The better response is A.", FIRST),
    ("Winner: Model B", SECOND),
    ("Response A is worse: it ignores the question.", SECOND),
    ("Both responses are bad; neither answers the question.", BOTH_BAD),
    ("Both responses are equally good.", TIE),
]


@pytest.mark.parametrize(("answer", "verdict"), SHAPES)
def test_reads_the_verdict_of_each_usual_answer_shape(answer, verdict):
    result = parse_verdict(answer)
    assert result.verdict == verdict, result


# Answers that name no verdict or two: unparseable, with the reason, never a guess.
UNPARSEABLE = [
    ("", "empty answer"),
    ("   \n ", "empty answer"),
    ("ikk quantum beans the the the", "no verdict found"),
    ("a cat sat on a mat", "no verdict found"),  # lower-case "a" is an article, not a side
    ('Output "[[A]]" if assistant A is better, "[[B]]" if assistant B is better', "contradicting verdicts"),
    ("Assistant A is better at facts, but Assistant B is better at style.", "contradicting verdicts"),
    ('{"winner": "the blue one"}', "a JSON verdict that names no side"),
    ("Assistant A is not better than assistant B in any way I can tell", "no verdict found"),
]


@pytest.mark.parametrize(("answer", "reason"), UNPARSEABLE)
def test_an_answer_without_one_clear_verdict_is_unparseable(answer, reason):
    result = parse_verdict(answer)
    assert result.verdict is None
    assert not result.parsed
    assert result.shape.startswith(reason)


def test_the_requested_bracket_format_wins_over_a_sentence_before_it():
    """MT-Bench judges explain first and end with the bracket: the bracket is the verdict."""
    assert parse_verdict("At first Assistant A is better, yet on reflection... [[B]]").verdict == SECOND
