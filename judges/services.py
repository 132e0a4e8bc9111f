"""Judges in a study: their accounts, their verdicts read back from the votes and the judge runs' answers,
and the tables that measure each judge against the human majority on the same comparisons
(`judges.metrics`). Running a judge is judges.runs'."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models.functions import Length

from annotations.imports.write import JUDGE_USERNAME_PREFIX, get_or_create_judge_account
from annotations.models import Comparison, Study, Vote
from ranking.ratings import RatingError, compute_leaderboard

from .metrics import BOOTSTRAP_ROUNDS, JudgeAnswer, JudgedComparison, JudgeReport, judge_report, majority_label
from .models import Judge, JudgeVerdict
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


def _run_answers(study: Study) -> tuple[dict[int, dict[int, list[JudgeAnswer]]], dict[int, str]]:
    """account -> comparison -> the answers of judge runs (both orders, parsed or not), and the usernames."""
    asked: dict[int, dict[int, list[JudgeAnswer]]] = defaultdict(lambda: defaultdict(list))
    usernames: dict[int, str] = {}
    for account_id, username, comparison_id, first_is_a, verdict in (
            JudgeVerdict.objects.filter(comparison__study=study, comparison__is_gold=False)
            .values_list("judge__account_id", "judge__account__username", "comparison_id", "first_is_a", "verdict")
            .order_by("judge__account_id", "comparison_id", "-first_is_a")):
        asked[account_id][comparison_id].append(JudgeAnswer(first_is_a, Verdict(verdict) if verdict else None))
        usernames[account_id] = username
    return asked, usernames


def study_judge_tables(study: Study, rounds: int = BOOTSTRAP_ROUNDS) -> list[JudgeTable]:
    """One table per judge that voted or was asked in the study, by judge name.

    A comparison a judge run asked about is measured on its answers in both orders (judges.runs: the
    judge's vote is only their pair); one whose verdict was imported, on its vote in the order it saw."""
    judge_votes = (Vote.objects.filter(study=study, source=Vote.Source.JUDGE, excluded=False,
                                       comparison__is_gold=False)
                   .values_list("annotator_id", "annotator__username", "comparison_id", "choice",
                                "assignment__left_is_a", "winner", "comparison__system_a__name",
                                "comparison__system_b__name")
                   .order_by("annotator_id", "comparison_id"))
    by_account: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    asked, usernames = _run_answers(study)
    for row in judge_votes:
        by_account[row[0]].append(row)
        usernames[row[0]] = row[1]
    accounts = set(by_account) | set(asked)
    if not accounts:
        return []
    comparison_ids = {row[2] for rows in by_account.values() for row in rows} | {
        c for per in asked.values() for c in per}
    facts_of = {cid: (length_a, length_b, a_id, b_id) for cid, length_a, length_b, a_id, b_id in
                Comparison.objects.filter(pk__in=comparison_ids)
                .annotate(length_a=Length("generation_a__text"), length_b=Length("generation_b__text"))
                .values_list("id", "length_a", "length_b", "system_a_id", "system_b_id")}
    humans = human_labels(study)
    judges = {j.account_id: j for j in Judge.objects.filter(account_id__in=list(accounts)).select_related("endpoint")}
    study_system_ids = set(study.systems.values_list("id", flat=True))
    tables = []
    for account_id in accounts:
        rows = by_account.get(account_id, [])
        judge = judges.get(account_id)
        own = judge.own_system_id if judge is not None else None
        own_system = own if own in study_system_ids else None
        answers: dict[int, list[JudgeAnswer]] = defaultdict(list)
        for comparison_id, run_answers in asked.get(account_id, {}).items():
            answers[comparison_id].extend(run_answers)
        system_a, system_b, winners = [], [], []
        for _, _, comparison_id, choice, left_is_a, winner, a_name, b_name in rows:
            if comparison_id not in asked.get(account_id, {}):
                answers[comparison_id].append(JudgeAnswer(left_is_a, CHOICE_VERDICTS[choice]))
            system_a.append(a_name)
            system_b.append(b_name)
            winners.append(winner)
        items = []
        for cid in sorted(answers):
            length_a, length_b, a_id, b_id = facts_of[cid]
            side = "a" if own_system == a_id else "b" if own_system == b_id else None
            items.append(JudgedComparison(humans.get(cid), tuple(answers[cid]), length_a, length_b, side))
        report = judge_report(items, judge_model_in_study=own_system is not None, rounds=rounds)
        board, error = None, ""
        try:
            board = compute_leaderboard(system_a, system_b, winners, method="bt", rounds=JUDGE_BOARD_ROUNDS).to_dict()
        except RatingError as failure:
            error = str(failure)
        name = judge.name if judge is not None else usernames[account_id].removeprefix(JUDGE_USERNAME_PREFIX)
        tables.append(JudgeTable(name, judge, len(items), report, board, error))
    return sorted(tables, key=lambda table: table.name)
