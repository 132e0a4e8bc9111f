"""Judges in a study: their accounts, their verdicts read back from the votes, and the tables that measure
each judge against the human majority on the same comparisons (`judges.metrics`)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models.functions import Length

from annotations.imports.write import JUDGE_USERNAME_PREFIX, get_or_create_judge_account
from annotations.models import Study, Vote
from ranking.ratings import RatingError, compute_leaderboard

from .metrics import BOOTSTRAP_ROUNDS, JudgeAnswer, JudgedComparison, JudgeReport, judge_report, majority_label
from .models import Judge
from .verdicts import Verdict

CHOICE_VERDICTS = {Vote.Choice.LEFT: Verdict.FIRST, Vote.Choice.RIGHT: Verdict.SECOND,
                   Vote.Choice.TIE: Verdict.TIE, Vote.Choice.BOTH_BAD: Verdict.BOTH_BAD}
JUDGE_BOARD_ROUNDS = 100


def get_or_create_judge(name: str, **fields: Any) -> Judge:
    """The judge of that name with its account; `fields` fill a new judge in (an existing one is kept)."""
    account = get_or_create_judge_account(name)
    judge, _ = Judge.objects.get_or_create(account=account, defaults={"name": name, **fields})
    return judge


def human_labels(study: Study) -> dict[int, str]:
    """comparison id -> the unique most frequent label of its human votes (not excluded, not gold)."""
    winners: dict[int, list[str]] = defaultdict(list)
    for comparison_id, winner in (Vote.objects.filter(study=study, excluded=False, comparison__is_gold=False)
                                  .exclude(source=Vote.Source.JUDGE).values_list("comparison_id", "winner")):
        winners[comparison_id].append("tie" if winner == Vote.Winner.BOTH_BAD else winner)
    labels = {key: majority_label(values) for key, values in winners.items()}
    return {key: label for key, label in labels.items() if label is not None}


@dataclass
class JudgeTable:
    name: str
    judge: Judge | None  # None: votes imported under a judge account without a Judge record
    comparisons: int
    report: JudgeReport
    board: dict[str, Any] | None  # the judge's own Bradley-Terry board (ranking.ratings payload)
    board_error: str


def study_judge_tables(study: Study, rounds: int = BOOTSTRAP_ROUNDS) -> list[JudgeTable]:
    """One table per judge that voted in the study, by judge name."""
    judge_votes = (Vote.objects.filter(study=study, source=Vote.Source.JUDGE, excluded=False,
                                       comparison__is_gold=False)
                   .annotate(length_a=Length("comparison__generation_a__text"),
                             length_b=Length("comparison__generation_b__text"))
                   .values_list("annotator_id", "annotator__username", "comparison_id", "choice",
                                "assignment__left_is_a", "winner", "length_a", "length_b",
                                "comparison__system_a_id", "comparison__system_b_id",
                                "comparison__system_a__name", "comparison__system_b__name")
                   .order_by("annotator_id", "comparison_id"))
    by_account: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    usernames: dict[int, str] = {}
    for row in judge_votes:
        by_account[row[0]].append(row)
        usernames[row[0]] = row[1]
    if not by_account:
        return []
    humans = human_labels(study)
    judges = {j.account_id: j for j in Judge.objects.filter(account_id__in=list(by_account))}
    study_system_ids = set(study.systems.values_list("id", flat=True))
    tables = []
    for account_id, rows in by_account.items():
        judge = judges.get(account_id)
        own_system = judge.system_id if judge is not None and judge.system_id in study_system_ids else None
        answers: dict[int, list[JudgeAnswer]] = defaultdict(list)
        facts: dict[int, tuple[int, int, str | None]] = {}
        system_a, system_b, winners = [], [], []
        for (_, _, comparison_id, choice, left_is_a, winner, length_a, length_b, a_id, b_id,
             a_name, b_name) in rows:
            answers[comparison_id].append(JudgeAnswer(left_is_a, CHOICE_VERDICTS[choice]))
            own = "a" if own_system == a_id else "b" if own_system == b_id else None
            facts[comparison_id] = (length_a, length_b, own)
            system_a.append(a_name)
            system_b.append(b_name)
            winners.append(winner)
        items = [JudgedComparison(humans.get(cid), tuple(answers[cid]), *facts[cid]) for cid in answers]
        report = judge_report(items, judge_model_in_study=own_system is not None, rounds=rounds)
        board, error = None, ""
        try:
            board = compute_leaderboard(system_a, system_b, winners, method="bt", rounds=JUDGE_BOARD_ROUNDS).to_dict()
        except RatingError as failure:
            error = str(failure)
        name = judge.name if judge is not None else usernames[account_id].removeprefix(JUDGE_USERNAME_PREFIX)
        tables.append(JudgeTable(name, judge, len(items), report, board, error))
    return sorted(tables, key=lambda table: table.name)
