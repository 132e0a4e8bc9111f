"""Reading an LLM judge's answer as a verdict on the two outputs it was shown, in the order it saw them.

Judges answer in many shapes: MT-Bench's pairwise prompt asks for "[[A]]", "[[B]]" or "[[C]]" (tie)
(Zheng et al. 2023), Arena-Hard's for "[[A>>B]]" ... "[[B>>A]]", AlpacaEval and LLMBar for "Output (a)",
PandaLM answers "1", "2" or "Tie" on its first line, LLMFAO's GPT-4 prompt "A", "B" or "TIE", and a chat
model asked for JSON writes {"winner": "A"} or a sentence ("Assistant B is better"). This module accepts
those shapes and nothing it would have to guess: when an answer names two different verdicts, or none,
it is unparseable (`Verdict` None with the reason), and the callers count it as such.

The verdict is positional (`first` = the output shown first, as "A", "Output (a)", "1"); turning it into
the canonical a/b of a comparison is the caller's job, which knows the order it showed. Pure Python, no
Django: the run task, the importers and the tests all call it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    FIRST = "first"
    SECOND = "second"
    TIE = "tie"
    BOTH_BAD = "both_bad"


@dataclass(frozen=True)
class ParsedVerdict:
    verdict: Verdict | None  # None: unparseable, never guessed
    shape: str  # which rule read it ("brackets", "json", "bare", "sentence"), or why nothing was read

    @property
    def parsed(self) -> bool:
        return self.verdict is not None


# ---------------------------------------------------------------------------------------------- the names of a side

# A side as judges name it: a letter or number, optionally after a noun ("Assistant A", "Output (b)",
# "Response 1"). Lower-case a/b only after a noun: a bare "a" is the article.
_NOUN = r"(?:assistant|response|output|answer|system|model|candidate|option|summary|completion)"
_SIDE_WITH_NOUN = rf"{_NOUN}\s*[\(\[]?\s*(?P<{{g}}>[ab12])\s*[\)\]]?"
_SIDE_BARE = r"[\(\[]?(?P<{g}>[AB])[\)\]]?"
_SIDES = {"a": Verdict.FIRST, "1": Verdict.FIRST, "b": Verdict.SECOND, "2": Verdict.SECOND}


def _side(group: str) -> str:
    """A regex naming one side, captured as `group` (with a noun, any case; bare, capital A or B only)."""
    return rf"(?:(?i:{_SIDE_WITH_NOUN.format(g=group + '_n')})|\b{_SIDE_BARE.format(g=group + '_b')}\b)"


def _side_of(match: re.Match[str], group: str) -> Verdict:
    letter = match.group(group + "_n") or match.group(group + "_b")
    return _SIDES[letter.lower()]


# ---------------------------------------------------------------------------------------------- rule 1: brackets

# MT-Bench [[A]] / [[B]] / [[C]] (C = tie); Arena-Hard [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]].
_BRACKETS = re.compile(r"\[\[\s*(A>>B|A>B|A=B|B=A|B>A|B>>A|A|B|C|tie)\s*\]\]", re.IGNORECASE)
_BRACKET_VERDICTS = {"a": Verdict.FIRST, "a>b": Verdict.FIRST, "a>>b": Verdict.FIRST,
                     "b": Verdict.SECOND, "b>a": Verdict.SECOND, "b>>a": Verdict.SECOND,
                     "c": Verdict.TIE, "tie": Verdict.TIE, "a=b": Verdict.TIE, "b=a": Verdict.TIE}

# ---------------------------------------------------------------------------------------------- rule 2: JSON

_JSON_KEYS = ("winner", "verdict", "preferred", "preference", "better", "choice", "answer", "result", "decision")
_FENCED_JSON = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL | re.IGNORECASE)
_INLINE_JSON = re.compile(r"\{[^{}]*\}", re.DOTALL)

# ---------------------------------------------------------------------------------------------- rule 3: a bare answer

_TIE_WORDS = re.compile(r"(?i)^(?:tie|a tie|it'?s a tie|draw|equal|equally good|same|no preference|c)$")
_BOTH_BAD_WORDS = re.compile(r"(?i)^(?:both bad|both are bad|both_bad|neither|none|neither is good)$")
_MODEL_WORDS = {"model_a": Verdict.FIRST, "model_b": Verdict.SECOND}
_BARE_SIDE = re.compile(rf"^(?:{_side('s')})$")
_DECORATION = " \t\r\n*_`'\".:!()[]"

# ---------------------------------------------------------------------------------------------- rule 4: sentences

_BETTER = r"(?:is|was|seems|appears)\s+(?:(?:clearly|slightly|much|significantly|overall)\s+)?" \
          r"(?:better|the better(?:\s+(?:one|response|answer|output))?|superior|preferable|preferred|the winner)"
_WORSE = r"(?:is|was)\s+(?:(?:clearly|slightly|much|significantly)\s+)?(?:worse|inferior|the worse)"
_SENTENCE_RULES: list[tuple[re.Pattern[str], bool]] = [  # (pattern, names the winner: False = the loser)
    (re.compile(rf"(?i:(?:final\s+)?(?:verdict|answer|winner|choice|decision|preference|judgement|judgment)"
                rf"\s*(?:is)?\s*[:=\-]?\s*){_side('s')}"), True),
    (re.compile(rf"{_side('s')}\s*(?i:{_BETTER})"), True),
    (re.compile(rf"(?i:\b(?:i\s+)?(?:prefer|choose|pick|select|favou?r)\s+){_side('s')}"), True),
    (re.compile(rf"(?i:\bbetter\s+(?:response|output|answer|one)\s+is\s+){_side('s')}"), True),
    (re.compile(rf"{_side('s')}\s*(?i:{_WORSE})"), False),
]
_TIE_SENTENCE = re.compile(r"(?i)\b(?:it'?s\s+a\s+tie|(?:verdict|answer|result)\s*[:=]?\s*tie\b|"
                           r"both\s+(?:responses|outputs|answers|assistants)?\s*(?:are|were)\s+equally\s+"
                           r"(?:good|helpful|strong|well)|equally\s+good)")
_BOTH_BAD_SENTENCE = re.compile(r"(?i)\b(?:both\s+(?:responses|outputs|answers|assistants)?\s*(?:are|were)\s+"
                                r"(?:bad|poor|wrong|incorrect|unhelpful|inadequate)|neither\s+(?:response|output|"
                                r"answer|assistant)?\s*(?:is|was)\s+(?:good|correct|helpful|acceptable))")


def parse_verdict(answer: str) -> ParsedVerdict:
    """The verdict an answer states, or an unparseable result saying why (never a guess)."""
    text = answer.strip()
    if not text:
        return ParsedVerdict(None, "empty answer")
    for rule in (_from_brackets, _from_json, _from_bare, _from_sentences):
        result = rule(text)
        if result is not None:
            return result
    return ParsedVerdict(None, "no verdict found")


def _one(found: set[Verdict], shape: str) -> ParsedVerdict:
    if len(found) == 1:
        return ParsedVerdict(next(iter(found)), shape)
    return ParsedVerdict(None, f"contradicting verdicts ({shape}: {', '.join(sorted(found))})")


def _from_brackets(text: str) -> ParsedVerdict | None:
    found = {_BRACKET_VERDICTS[m.group(1).lower()] for m in _BRACKETS.finditer(text)}
    return _one(found, "brackets") if found else None


def _json_value_verdict(value: object) -> Verdict | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return {1: Verdict.FIRST, 2: Verdict.SECOND, 0: Verdict.TIE}.get(value)
    if not isinstance(value, str):
        return None
    word = value.strip(_DECORATION)
    if word.lower() in _MODEL_WORDS:
        return _MODEL_WORDS[word.lower()]
    if _TIE_WORDS.match(word):
        return Verdict.TIE
    if _BOTH_BAD_WORDS.match(word):
        return Verdict.BOTH_BAD
    match = _BARE_SIDE.match(word) or _BARE_SIDE.match(word.upper() if len(word) == 1 else word)
    return _side_of(match, "s") if match else None


def _from_json(text: str) -> ParsedVerdict | None:
    candidates = [m.group(1) for m in _FENCED_JSON.finditer(text)] or [m.group(0) for m in _INLINE_JSON.finditer(text)]
    found: set[Verdict] = set()
    unreadable = False
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        keyed = {str(k).lower(): v for k, v in value.items()}
        key = next((k for k in _JSON_KEYS if k in keyed), None)
        if key is None:
            continue
        verdict = _json_value_verdict(keyed[key])
        if verdict is None:
            unreadable = True
        else:
            found.add(verdict)
    if found:
        return _one(found, "json")
    return ParsedVerdict(None, "a JSON verdict that names no side") if unreadable else None


def _from_bare(text: str) -> ParsedVerdict | None:
    """The whole answer, or its first line (PandaLM puts the reason below), is just a verdict."""
    for candidate in dict.fromkeys((text, text.splitlines()[0])):
        word = candidate.strip(_DECORATION)
        if candidate.strip() in ("1", "2", "1.", "2."):  # PandaLM's first line
            return ParsedVerdict(_SIDES[candidate.strip()[0]], "bare")
        if not word:
            continue
        if word.lower() in _MODEL_WORDS:
            return ParsedVerdict(_MODEL_WORDS[word.lower()], "bare")
        if _TIE_WORDS.match(word):
            return ParsedVerdict(Verdict.TIE, "bare")
        if _BOTH_BAD_WORDS.match(word):
            return ParsedVerdict(Verdict.BOTH_BAD, "bare")
        match = _BARE_SIDE.match(candidate.strip(" \t\r\n*_`'\".:!"))
        if match:
            return ParsedVerdict(_side_of(match, "s"), "bare")
    return None


def _from_sentences(text: str) -> ParsedVerdict | None:
    found: set[Verdict] = set()
    for pattern, names_winner in _SENTENCE_RULES:
        for match in pattern.finditer(text):
            side = _side_of(match, "s")
            if not names_winner:
                side = Verdict.SECOND if side == Verdict.FIRST else Verdict.FIRST
            found.add(side)
    if _TIE_SENTENCE.search(text):
        found.add(Verdict.TIE)
    if _BOTH_BAD_SENTENCE.search(text):
        found.add(Verdict.BOTH_BAD)
    return _one(found, "sentence") if found else None
