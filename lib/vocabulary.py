"""The site's words for winners, rating methods and separability metrics, in one pure module.

Every parser, model choice list, serializer and presenter takes them from here, so a value can neither
be misspelt in one place nor added in one place only. StrEnum members are plain strings: they compare
equal to, hash like and serialise as their values ("a", "weighted_bt", ...). No Django here: the pure
cores (ranking.elo/bt/ratings, separability.engine) import it too.
"""
from __future__ import annotations

from enum import StrEnum


class Winner(StrEnum):
    """A vote's outcome in canonical order: `a` is the system with the lower id."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Choice(StrEnum):
    """What the annotator clicked, in display order (left is Response A on their screen)."""

    LEFT = "left"
    RIGHT = "right"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Method(StrEnum):
    ELO = "elo"
    WEIGHTED_ELO = "weighted_elo"
    BT = "bt"
    WEIGHTED_BT = "weighted_bt"

    # A property that shadows str.title() on purpose: templates and presenters read `method.title`.
    @property
    def title(self) -> str:  # type: ignore[override]
        return METHOD_TITLES[self]

    @property
    def weighted(self) -> bool:
        return self in (Method.WEIGHTED_ELO, Method.WEIGHTED_BT)


# Keyed by Method; a plain string finds its entry too (StrEnum members hash as their values).
METHOD_TITLES: dict[str, str] = {
    Method.ELO: "Elo",
    Method.WEIGHTED_ELO: "Separability-weighted Elo",
    Method.BT: "Bradley-Terry",
    Method.WEIGHTED_BT: "Separability-weighted Bradley-Terry",
}
WEIGHTED_OF = {Method.ELO: Method.WEIGHTED_ELO, Method.BT: Method.WEIGHTED_BT}


class Metric(StrEnum):
    """Separability metrics: the similarity of two generations (docs/design.md, separability)."""

    BERTSCORE = "bertscore"
    BERTSCORE_LENGTH = "bertscore_length"
    ROUGE1 = "rouge1"

    @property
    def needs_model(self) -> bool:
        return self in (Metric.BERTSCORE, Metric.BERTSCORE_LENGTH)


WINNERS = tuple(Winner)
CHOICES = tuple(Choice)
METHODS = tuple(Method)
METRICS = tuple(Metric)
