"""What the leaderboard page, its JSON twin and the REST API show, built from stored snapshots.

Staff see the live numbers: `LeaderboardSnapshot` rows written by the recompute task (computed on the
spot when a method's snapshot does not exist yet). The public sees only `LeaderboardRelease` copies,
and an annotator never sees a board of an open study they may still vote in (blinding: see
`ranking.services` and docs/security.md). This module decides who sees what and reshapes the four
methods' payloads into one row per system for the page. A method that could not rank the votes keeps
its error message: nothing here ever fills in a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from django.utils.dateparse import parse_datetime

from annotations.auth import judges
from annotations.models import Comparison, Study
from lib.vocabulary import WEIGHTED_OF, Method

from .models import LeaderboardRelease, LeaderboardSnapshot
from .ratings import DEFAULT_INITIAL, METHOD_TITLES
from .services import SNAPSHOT_METHODS, counted_votes, latest_release, refresh_snapshots

PUBLIC_STATUSES = (Study.Status.OPEN, Study.Status.CLOSED)
# The method whose order and rank head the table; the next ones stand in when it has an error.
PRIMARY_ORDER = (Method.BT, Method.ELO, Method.WEIGHTED_BT, Method.WEIGHTED_ELO)


def is_public(study: Study) -> bool:
    """Published by staff and out of draft: its releases (never its live standings) are public."""
    return study.leaderboard_public and study.status in PUBLIC_STATUSES


def public_release(study: Study, user=None) -> LeaderboardRelease | None:
    """The release this visitor may see, or None: nothing before the first release, and nothing of an
    open study to an annotator who may still vote in it (blinding, docs/security.md)."""
    if not is_public(study):
        return None
    if user is not None and study.status == Study.Status.OPEN and judges(user, study):
        return None
    return latest_release(study)


def can_view(study: Study, user) -> bool:
    """Staff see every study's live standings; everybody else only a public study's latest release."""
    if getattr(user, "is_staff", False):
        return True
    return public_release(study, user) is not None


def public_studies(user=None):
    """Studies with a public release, except open ones the signed-in annotator judges."""
    studies = (Study.objects.filter(leaderboard_public=True, status__in=PUBLIC_STATUSES,
                                    leaderboard_releases__isnull=False).distinct().order_by("name", "slug"))
    if user is not None and getattr(user, "is_authenticated", False) and not user.is_staff:
        judged = [s.pk for s in studies if s.status == Study.Status.OPEN and judges(user, s)]
        studies = studies.exclude(pk__in=judged)
    return studies


def study_snapshots(study: Study) -> dict[str, LeaderboardSnapshot]:
    """Every method's stored snapshot; when one is missing (a study never recomputed), computed now in
    memory, not stored (a GET never writes; the next vote or import schedules the stored recompute)."""
    snapshots = {s.method: s for s in LeaderboardSnapshot.objects.filter(study=study)}
    if any(method not in snapshots for method in SNAPSHOT_METHODS):
        snapshots = refresh_snapshots(study, store=False)
    return snapshots


def method_payload(snapshot: LeaderboardSnapshot) -> dict:
    """A snapshot's payload (`Leaderboard.to_dict(matrices=True)` plus `computed_at`), or {"error": ...}."""
    if snapshot.error:
        return {"error": snapshot.error}
    if not snapshot.payload.get("ratings"):
        return {"error": "not computed yet"}
    return {**snapshot.payload, "computed_at": snapshot.computed_at.isoformat()}


def leaderboard_payload(study: Study, snapshots: dict[str, LeaderboardSnapshot] | None = None) -> dict:
    """The live standings, for staff (the JSON endpoint and the API):
    `{"study": slug, "methods": {method: payload or {"error": message}}}`."""
    snapshots = snapshots if snapshots is not None else study_snapshots(study)
    return {"study": study.slug,
            "methods": {method: method_payload(snapshots[method]) for method in SNAPSHOT_METHODS}}


def release_payload(release: LeaderboardRelease) -> dict:
    """What the public JSON shows: one release, frozen."""
    return {"study": release.study.slug, "released_at": release.released_at.isoformat(),
            "reason": release.reason, "votes_counted": release.votes_counted,
            "methods": {method: release.payload.get(method, {"error": "not computed yet"})
                        for method in SNAPSHOT_METHODS}}


@dataclass
class Board:
    """One method's numbers as the page shows them, from a live snapshot or from a release."""

    payload: dict
    votes_used: int
    computed_at: object


def live_boards(study: Study) -> dict[str, Board]:
    snapshots = study_snapshots(study)
    return {m: Board(method_payload(s), s.votes_used, s.computed_at) for m, s in snapshots.items()}


def released_boards(release: LeaderboardRelease) -> dict[str, Board]:
    boards: dict[str, Board] = {}
    for method in SNAPSHOT_METHODS:
        payload = release.payload.get(method, {"error": "not computed yet"})
        computed = parse_datetime(payload.get("computed_at", "")) or release.released_at
        boards[method] = Board(payload, payload.get("votes_used", 0), computed)
    return boards


# --- The page ------------------------------------------------------------------------------------

@dataclass
class RankShift:
    """Where a weighted method ranks a system compared with its plain counterpart."""

    plain_rank: int
    weighted_rank: int

    @property
    def change(self) -> int:
        """Places gained under weighting: positive = ranked higher when weighted, 0 = the same rank."""
        return self.plain_rank - self.weighted_rank

    @property
    def places(self) -> int:
        return abs(self.change)

    @property
    def direction(self) -> str:
        return "up" if self.weighted_rank < self.plain_rank else "down"

    @property
    def arrow(self) -> str:
        return "▲" if self.direction == "up" else "▼"

    @property
    def text(self) -> str:
        side = "higher" if self.direction == "up" else "lower"
        plural = "" if self.places == 1 else "s"
        return (f"ranked {self.places} place{plural} {side} when weighted "
                f"(rank {self.weighted_rank} instead of {self.plain_rank})")


@dataclass
class SystemRow:
    system: str
    rank: int | None = None
    ratings: dict[str, dict] = field(default_factory=dict)  # method -> the payload's row
    shifts: dict[str, RankShift] = field(default_factory=dict)  # weighted method -> shift
    votes: int | None = None
    win_rate: float | None = None

    @property
    def win_rate_percent(self) -> float | None:
        return None if self.win_rate is None else 100 * self.win_rate


@dataclass
class MethodInfo:
    method: str
    title: str
    error: str = ""
    votes_used: int = 0
    rounds: int = 0
    computed_at: object = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


def _cell_colours(rate: float) -> tuple[str, str]:
    """(background, text) for a win rate: orange below one half, purple above (colour-blind safe),
    white at one half; the text colour is whichever of black and white contrasts more. Computed once per
    thousandth of a rate (a 100-system table has 9,900 cells; the colour channels are whole numbers, so a
    thousandth changes none by more than one)."""
    return _colours_of(round(rate, 3))


@lru_cache(maxsize=1024)
def _colours_of(rate: float) -> tuple[str, str]:
    low, high = (179, 88, 6), (84, 39, 136)
    end, t = (low, (0.5 - rate) * 2) if rate < 0.5 else (high, (rate - 0.5) * 2)
    rgb = [round(255 + (c - 255) * t) for c in end]

    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#000" if luminance > 0.179 else "#fff")


def _heatmap(payload: dict, order: list[str]) -> dict | None:
    systems = payload.get("systems")
    if not systems or "win_rate" not in payload:
        return None
    position = {name: i for i, name in enumerate(systems)}
    names = [name for name in order if name in position]
    rows = []
    for row_name in names:
        cells = []
        for col_name in names:
            i, j = position[row_name], position[col_name]
            rate, count = payload["win_rate"][i][j], payload["counts"][i][j]
            if row_name == col_name:
                cells.append({"kind": "self"})
            elif rate is None:
                cells.append({"kind": "none", "opponent": col_name})
            else:
                background, colour = _cell_colours(rate)
                cells.append({"kind": "rate", "percent": round(100 * rate), "count": count, "opponent": col_name,
                              "style": f"background-color: {background}; color: {colour}"})
        rows.append({"system": row_name, "cells": cells})
    return {"systems": names, "rows": rows}


def _finite(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def page_context(study: Study, release: LeaderboardRelease | None = None) -> dict:
    """Everything the leaderboard template and its charts need: from `release` when the visitor is the
    public, from the live snapshots for staff (`release=None`)."""
    boards = released_boards(release) if release is not None else live_boards(study)
    payloads = {method: boards[method].payload for method in SNAPSHOT_METHODS}
    methods: dict[str, MethodInfo] = {}
    for method in SNAPSHOT_METHODS:
        board, payload = boards[method], payloads[method]
        methods[method] = MethodInfo(
            method=method, title=METHOD_TITLES[method], error=payload.get("error", ""),
            votes_used=board.votes_used, rounds=payload.get("rounds", 0), computed_at=board.computed_at,
            notes=payload.get("notes", []),
        )

    primary = next((m for m in PRIMARY_ORDER if methods[m].ok), None)
    order: list[str] = []
    for method in ([primary] if primary else []) + list(SNAPSHOT_METHODS):
        for row in payloads[method].get("ratings", []):
            if row["system"] not in order:
                order.append(row["system"])

    rows = {name: SystemRow(system=name) for name in order}
    for method in SNAPSHOT_METHODS:
        for row in payloads[method].get("ratings", []):
            target = rows[row["system"]]
            target.ratings[method] = row
            if method == primary:
                target.rank = row["rank"]
            if target.votes is None and not method.startswith("weighted"):
                target.votes, target.win_rate = row["votes"], _finite(row.get("win_rate"))
    for target in rows.values():
        if target.votes is None:  # only weighted methods ranked it; their counts are the same votes
            for row in target.ratings.values():
                target.votes, target.win_rate = row["votes"], _finite(row.get("win_rate"))
                break
        for plain, weighted in WEIGHTED_OF.items():
            if plain in target.ratings and weighted in target.ratings:
                shift = RankShift(target.ratings[plain]["rank"], target.ratings[weighted]["rank"])
                if shift.places:
                    target.shifts[weighted] = shift

    matrix_source = next((m for m in PRIMARY_ORDER if methods[m].ok), None)
    heatmap = _heatmap(payloads[matrix_source], order) if matrix_source else None

    def series(method, key="rating"):
        if not methods[method].ok:
            return None
        return [_finite(rows[name].ratings[method][key]) if method in rows[name].ratings else None for name in order]

    chart_data = {
        "systems": order,
        "initial": DEFAULT_INITIAL,
        "titles": {m: METHOD_TITLES[m] for m in SNAPSHOT_METHODS},
        "ratings": {m: series(m) for m in SNAPSHOT_METHODS},
        "ci_low": {m: series(m, "ci_low") for m in ("bt", "weighted_bt")},
        "ci_high": {m: series(m, "ci_high") for m in ("bt", "weighted_bt")},
    }
    no_separability = not Comparison.objects.filter(study=study, separability__isnull=False).exists()
    used = max((info.votes_used for info in methods.values() if info.ok), default=0)
    return {
        "study": study,
        "public": is_public(study),
        "release": release,
        "public_release": latest_release(study) if release is None else release,
        "methods": methods,
        "primary": methods[primary] if primary else None,
        "rows": [rows[name] for name in order],
        "heatmap": heatmap,
        "chart_data": chart_data,
        "show_elo_chart": methods["elo"].ok or methods["weighted_elo"].ok,
        "show_bt_chart": methods["bt"].ok or methods["weighted_bt"].ok,
        "no_separability": no_separability,
        "votes_counted_now": release.votes_counted if release is not None else counted_votes(study),
        "votes_used": used,
    }
