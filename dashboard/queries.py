"""What the dashboard shows, gathered from the database into plain dicts and lists.

The statistics themselves live in `dashboard.agreement` (no Django); this module only decides which
rows feed them (non-gold, non-excluded votes for agreement, live votes for left/right bias) and shapes
the results for the templates, the charts (JSON via `json_script`) and the REST API.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import connection
from django.db.models import BooleanField, Case, Count, F, FloatField, Max, Min, Q, Sum, Value, When
from django.db.models.functions import Floor, Least, TruncDay, TruncHour, TruncMinute, TruncWeek
from django.utils import timezone

from annotations.models import AnnotatorExclusion, Assignment, Comparison, Generation, ItemFlag, Study, Vote
from lib.vocabulary import WEIGHTED_OF
from ranking.presenters import RankShift

from . import agreement

if TYPE_CHECKING:
    from django.db.models.functions.datetime import TruncBase

ACTIVE_WINDOW = timedelta(hours=1)
LEADERBOARD_PAIRS = tuple(WEIGHTED_OF.items())  # (plain, weighted), lib.vocabulary
METHOD_NAMES = {"elo": "Elo", "weighted_elo": "Separability-weighted Elo", "bt": "Bradley-Terry",
                "weighted_bt": "Separability-weighted Bradley-Terry"}


# --------------------------------------------------------------------------------------------------
# progress


def study_progress(study: Study, now=None) -> dict:
    """Votes toward the target (selected non-gold comparisons x overlap, each comparison counted up to
    its overlap), annotators active in the last hour (voted, or hold a lease now), and leases out
    (served, not completed, not expired). `studies_progress` for several studies at once."""
    return studies_progress([study], now)[study.pk]


def studies_progress(studies, now=None) -> dict[int, dict]:
    """{study id: study_progress} for many studies in the same six statements as for one.

    No statement reads every vote: live votes are counted by `Comparison.votes_count` (one aggregate over
    the comparisons), the few others (imported, judges') and the excluded ones through partial indexes,
    open leases through theirs (at 1,000,000 votes the per-vote aggregate took 450 ms, bench/scale.py)."""
    now = now or timezone.now()
    studies = list(studies)
    ids = [study.pk for study in studies]
    overlap = {study.pk: study.votes_per_comparison for study in studies}
    served = Q(selected=True, is_gold=False)
    # Each comparison counts up to its study's overlap: one CASE over the studies (their overlaps differ).
    cap = Case(*[When(study_id=pk, then=Value(n)) for pk, n in overlap.items()], default=Value(0))
    counted = {row["study_id"]: row for row in Comparison.objects.filter(study_id__in=ids).order_by()
               .values("study_id").annotate(
                   comparisons=Count("id", filter=served),
                   covered=Sum(Least("votes_count", cap), filter=served),
                   live=Sum("votes_count"), live_gold=Sum("votes_count", filter=Q(is_gold=True)))}
    others = {row["study_id"]: row for row in Vote.objects.filter(study_id__in=ids).exclude(source=Vote.Source.LIVE)
              .order_by().values("study_id").annotate(
                  n=Count("id"), gold=Count("id", filter=Q(comparison__is_gold=True)),
                  imported=Count("id", filter=Q(source=Vote.Source.IMPORTED)))}
    excluded = dict(Vote.objects.filter(study_id__in=ids, excluded=True).order_by().values("study_id")
                    .annotate(n=Count("id")).values_list("study_id", "n"))
    active: defaultdict[int, set] = defaultdict(set)
    for study_id, annotator_id in (Vote.objects.filter(study_id__in=ids, source=Vote.Source.LIVE,
                                                       submitted_at__gte=now - ACTIVE_WINDOW)
                                   .order_by().values_list("study_id", "annotator_id").distinct()):
        active[study_id].add(annotator_id)
    leases: defaultdict[int, int] = defaultdict(int)
    for study_id, annotator_id in (Assignment.objects.filter(completed_at__isnull=True, expires_at__gt=now,
                                                             comparison__study_id__in=ids)
                                   .order_by().values_list("comparison__study_id", "annotator_id")):
        active[study_id].add(annotator_id)
        leases[study_id] += 1
    annotators = annotators_per_study(ids)
    progress = {}
    for study in studies:
        row = counted.get(study.pk, {})
        other = others.get(study.pk, {})
        target = (row.get("comparisons") or 0) * overlap[study.pk]
        covered = row.get("covered") or 0
        progress[study.pk] = {
            "votes": (row.get("live") or 0) + (other.get("n") or 0),
            "gold_votes": (row.get("live_gold") or 0) + (other.get("gold") or 0),
            "excluded_votes": excluded.get(study.pk, 0),
            "imported_votes": other.get("imported") or 0,
            "counted": covered,
            "target": target,
            "percent": round(100 * covered / target, 1) if target else 0.0,
            "comparisons": row.get("comparisons") or 0,
            "votes_per_comparison": overlap[study.pk],
            "active_annotators": len(active[study.pk]),
            "annotators": annotators.get(study.pk, 0),
            "leases_out": leases[study.pk],
        }
    return progress


# One statement for any number of studies. For each, a recursive walk of the `vote_study_annotator` index
# (study, annotator) from one annotator to the next (a "loose index scan", which PostgreSQL 15 and SQLite do
# not do by themselves): its cost grows with the study's annotators, not its votes. `COUNT(DISTINCT
# annotator_id)` read every vote: 80-130 ms of each dashboard index and API study request at 1,000,000 votes
# against 12-18 ms this way (psql on bench/scale.py's database). The first step is wrapped in a subquery
# because SQLite takes no ORDER BY / LIMIT in the first member of a compound select.
ANNOTATORS_PER_STUDY_SQL = """
SELECT s.id, (
    WITH RECURSIVE walk(annotator_id) AS (
        SELECT * FROM (SELECT v.annotator_id FROM {vote} v WHERE v.study_id = s.id
                       ORDER BY v.annotator_id LIMIT 1) AS first
        UNION ALL
        SELECT (SELECT v.annotator_id FROM {vote} v WHERE v.study_id = s.id
                AND v.annotator_id > walk.annotator_id ORDER BY v.annotator_id LIMIT 1)
        FROM walk WHERE walk.annotator_id IS NOT NULL
    )
    SELECT COUNT(annotator_id) FROM walk
) FROM {study} s WHERE s.id IN ({placeholders})
"""


def annotators_per_study_query(ids: list[int]) -> tuple[str, list[int]]:
    """(sql, params) of the count below for these (one or more) studies."""
    return ANNOTATORS_PER_STUDY_SQL.format(vote=Vote._meta.db_table, study=Study._meta.db_table,
                                          placeholders=", ".join(["%s"] * len(ids))), ids


def annotators_per_study(ids) -> dict[int, int]:
    """{study id: how many annotators have a vote in it, of any source}, for the given studies."""
    ids = list(ids)
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(*annotators_per_study_query(ids))
        return {study_id: n for study_id, n in cursor.fetchall()}


def studies_overview(now=None) -> list[dict]:
    studies = list(Study.objects.select_related("dataset").order_by("slug"))
    progress = studies_progress(studies, now)
    return [{"study": study, "progress": progress[study.pk]} for study in studies]


def votes_over_time(study: Study) -> dict:
    """Votes per time bucket and cumulative, with a bucket width that suits the study's span."""
    span = Vote.objects.filter(study=study).aggregate(first=Min("submitted_at"), last=Max("submitted_at"))
    if span["first"] is None:
        return {"labels": [], "counts": [], "cumulative": [], "bucket": None}
    length = span["last"] - span["first"]
    trunc: type[TruncBase]
    if length <= timedelta(hours=3):
        trunc, bucket, fmt, step = TruncMinute, "minute", "%Y-%m-%d %H:%M", timedelta(minutes=1)
    elif length <= timedelta(days=3):
        trunc, bucket, fmt, step = TruncHour, "hour", "%Y-%m-%d %H:00", timedelta(hours=1)
    elif length <= timedelta(days=120):
        trunc, bucket, fmt, step = TruncDay, "day", "%Y-%m-%d", timedelta(days=1)
    else:
        trunc, bucket, fmt, step = TruncWeek, "week", "%Y-%m-%d", timedelta(weeks=1)
    rows = list(Vote.objects.filter(study=study).annotate(t=trunc("submitted_at")).values("t")
                .annotate(n=Count("id")).order_by("t"))
    # Start the line at zero one bucket before the first votes, so a single burst still draws a rise.
    labels, counts, cumulative, running = [(rows[0]["t"] - step).strftime(fmt)], [0], [0], 0
    for row in rows:
        running += row["n"]
        labels.append(row["t"].strftime(fmt))
        counts.append(row["n"])
        cumulative.append(running)
    return {"labels": labels, "counts": counts, "cumulative": cumulative, "bucket": bucket}


# --------------------------------------------------------------------------------------------------
# annotators and agreement


def _pseudonyms(user_ids) -> dict[Hashable, str]:
    from annotations.models import AnnotatorProfile

    from .exports import pseudonym_of

    known = dict(AnnotatorProfile.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "pseudonym"))
    return {uid: pseudonym_of(uid, known.get(uid)) for uid in user_ids}


VoteRows = list[Mapping[str, Any]]  # vote_rows(): one values() row per vote


def vote_rows(study: Study) -> VoteRows:
    """The human votes (an LLM judge's are measured on its own page, judges.views)."""
    return list(Vote.objects.filter(study=study).exclude(source=Vote.Source.JUDGE).order_by("id").values(
        "annotator_id", "comparison_id", "winner", "choice", "duration_seconds", "gold_passed", "too_fast",
        "excluded", "source", "comparison__is_gold"))


def agreement_triples(rows: VoteRows) -> list[tuple]:
    """Ratings that agreement is computed on: non-gold, not excluded."""
    return [(r["annotator_id"], r["comparison_id"], r["winner"]) for r in rows
            if not r["comparison__is_gold"] and not r["excluded"]]


def study_agreement(study: Study, rows: VoteRows | None = None) -> dict:
    rows = vote_rows(study) if rows is None else rows
    triples = agreement_triples(rows)
    alpha = agreement.krippendorff_alpha_of(triples)
    kappa = agreement.fleiss_kappa(triples)
    return {"krippendorff_alpha": alpha.as_dict(), "fleiss_kappa": kappa.as_dict(),
            "labels": list(agreement.LABELS)}


def annotator_table(study: Study, rows: VoteRows | None = None) -> list[dict]:
    rows = vote_rows(study) if rows is None else rows
    stats = agreement.annotator_stats(
        [agreement.VoteRow(annotator=r["annotator_id"], item=r["comparison_id"], winner=r["winner"],
                           choice=r["choice"], duration=r["duration_seconds"], gold_passed=r["gold_passed"],
                           too_fast=r["too_fast"], live=r["source"] == Vote.Source.LIVE) for r in rows],
        agreement_triples(rows))
    names = _pseudonyms({s.annotator for s in stats})
    exclusions: dict[Hashable, AnnotatorExclusion] = {
        x.annotator_id: x for x in AnnotatorExclusion.objects.filter(study=study)}
    return [{"pseudonym": names[s.annotator], "annotator_id": s.annotator, "exclusion": exclusions.get(s.annotator),
             **{k: v for k, v in vars(s).items() if k != "annotator"}}
            for s in stats]


def disagreed_items(study: Study, rows: VoteRows | None = None, limit: int = 10) -> list[dict]:
    rows = vote_rows(study) if rows is None else rows
    ranked = agreement.most_disagreed(agreement_triples(rows), limit=limit)
    comparisons = Comparison.objects.select_related("instance", "system_a", "system_b", "generation_a",
                                                    "generation_b").in_bulk([d.item for d in ranked])
    items = []
    for d in ranked:
        c = comparisons[d.item]
        items.append({
            "comparison_id": c.pk, "instance_id": c.instance.external_id, "input": c.instance.input,
            "system_a": c.system_a.name, "system_b": c.system_b.name,
            "text_a": c.generation_a.text, "text_b": c.generation_b.text,
            "sample_a": c.generation_a.sample_index, "sample_b": c.generation_b.sample_index,
            "disagreement": d.disagreement, "ratings": d.ratings,
            "counts": [(label, d.counts.get(label, 0)) for label in agreement.LABELS if d.counts.get(label)],
            "separability": c.separability,
        })
    return items


# --------------------------------------------------------------------------------------------------
# consistency against separability, leaderboards


def consistency_scatter(study: Study) -> dict:
    """Per system pair: the units' (normalised separability, consistency) points and Spearman rho, p, n
    (from `separability.study_consistency`)."""
    from separability.study_consistency import study_consistency

    data = study_consistency(study)
    points = defaultdict(list)
    for unit in data["units"]:
        x = unit["normalised"] if unit["normalised"] is not None else unit["separability"]
        if x is None:
            continue
        points[(unit["system_a"], unit["system_b"])].append(
            {"x": x, "y": unit["consistency"], "id": unit["instance_id"]})
    undefined: defaultdict[tuple[str, str], int] = defaultdict(int)
    for unit in data["units"]:
        if unit["separability"] is None:
            undefined[(unit["system_a"], unit["system_b"])] += 1
    pairs = []
    for pair in data["pairs"]:
        key = (pair["system_a"], pair["system_b"])
        pairs.append({**pair, "points": points.get(key, []), "without_separability": undefined.get(key, 0)})
    return {"metric": data["metric"], "pairs": pairs, "overall": data["overall"], "note": data["note"],
            "units": len(data["units"])}


def leaderboards(study: Study) -> dict:
    """Snapshots by method, and plain vs separability-weighted side by side with rank changes."""
    from ranking.models import LeaderboardSnapshot

    snapshots = {s.method: s for s in LeaderboardSnapshot.objects.filter(study=study)}
    boards = {}
    for method, snapshot in snapshots.items():
        boards[method] = {
            "method": method, "name": METHOD_NAMES.get(method, method),
            "ratings": (snapshot.payload or {}).get("ratings", []) if not snapshot.error else [],
            "error": snapshot.error, "votes_used": snapshot.votes_used,
            "computed_at": snapshot.computed_at.isoformat() if snapshot.computed_at else None,
            "notes": (snapshot.payload or {}).get("notes", []),
        }
    comparisons = []
    for plain, weighted in LEADERBOARD_PAIRS:
        p, w = boards.get(plain), boards.get(weighted)
        if p is None and w is None:
            continue
        comparisons.append(compare_boards(p, w))
    return {"boards": boards, "comparisons": comparisons}


def compare_boards(plain: dict | None, weighted: dict | None) -> dict:
    """Rows in the plain board's order: each system's plain and weighted rating, rank and position, and
    the change (positive = moved up under weighting)."""
    plain_rows = {r["system"]: (i + 1, r) for i, r in enumerate((plain or {}).get("ratings", []))}
    weighted_rows = {r["system"]: (i + 1, r) for i, r in enumerate((weighted or {}).get("ratings", []))}
    systems = list(plain_rows) + [s for s in weighted_rows if s not in plain_rows]
    rows = []
    for system in systems:
        p_pos, p = plain_rows.get(system, (None, None))
        w_pos, w = weighted_rows.get(system, (None, None))
        rows.append({
            "system": system, "plain": p, "weighted": w, "plain_position": p_pos, "weighted_position": w_pos,
            # the leaderboard page's RankShift, so both pages say the same of the same boards
            "rank_change": RankShift(p["rank"], w["rank"]).change if p and w else None,
            "position_change": (p_pos - w_pos) if p_pos and w_pos else None,
        })
    return {"plain": plain, "weighted": weighted, "rows": rows,
            "title": f"{(plain or {}).get('name', '?')} vs {(weighted or {}).get('name', '?')}"}


# --------------------------------------------------------------------------------------------------
# separability of a dataset


def separability_pair_counts(dataset) -> list[dict]:
    """Units and defined units per (metric, system pair) of a dataset: one aggregate over its alignments,
    from which the page's metric list, its pair list and the dataset summary are all read (each was a
    scan of its own over 200,000 units, 60-100 ms apiece: bench/scale.py)."""
    from separability.models import Alignment

    return list(Alignment.objects.filter(instance__dataset=dataset).order_by()
                .values("metric", "system_a_id", "system_b_id")
                .annotate(units=Count("id"), defined=Count("id", filter=Q(separability__isnull=False))))


def separability_metrics(dataset, counts: list[dict] | None = None) -> list[str]:
    counts = separability_pair_counts(dataset) if counts is None else counts
    return sorted({r["metric"] for r in counts})


def separability_pairs(dataset, metric: str, counts: list[dict] | None = None) -> list[dict]:
    from annotations.models import System

    # Grouped by the systems' ids, their names looked up once: joining the names into the GROUP BY over
    # every unit cost 0.6 s at 200,000 units (bench/scale.py).
    counts = separability_pair_counts(dataset) if counts is None else counts
    rows = [r for r in counts if r["metric"] == metric]
    names = dict(System.objects.filter(id__in={r["system_a_id"] for r in rows} | {r["system_b_id"] for r in rows})
                 .values_list("id", "name"))
    rows.sort(key=lambda r: (names[r["system_a_id"]], names[r["system_b_id"]]))
    return [{"key": f"{r['system_a_id']}-{r['system_b_id']}", "system_a": names[r["system_a_id"]],
             "system_b": names[r["system_b_id"]], "system_a_id": r["system_a_id"], "system_b_id": r["system_b_id"],
             "units": r["units"], "defined": r["defined"]} for r in rows]


def policy_thresholds(dataset, metric: str) -> list[dict]:
    return [{"study": s.slug, "threshold": s.threshold, "metric": s.policy_metric,
             "applies": s.policy_metric == metric}
            for s in Study.objects.filter(dataset=dataset, policy=Study.Policy.THRESHOLD, threshold__isnull=False)
            .order_by("slug")]


HISTOGRAM_BINS = 20


def separability_overview(dataset, metric: str, pair: dict | None, extremes: int = 3) -> dict:
    """Histogram of normalised separability (marked with the threshold of any threshold-policy study on
    this metric), the lowest and highest units with all their samples, and why undefined units are.

    Counted in the database in one grouped aggregate (bin, undefined reason, single-sample flag), with the
    histogram's range from the lowest and highest units, which the (metric, normalised) indexes give at
    once: reading every unit's value into Python for numpy's histogram took 0.2-0.3 s at 200,000 units
    (bench/scale.py). The bins are numpy's (`dashboard.agreement.histogram`): equal width over the values
    and the marks, the top edge in the last bin."""
    from separability.models import Alignment

    rows = Alignment.objects.filter(instance__dataset=dataset, metric=metric)
    if pair:
        rows = rows.filter(system_a_id=pair["system_a_id"], system_b_id=pair["system_b_id"])
    thresholds = policy_thresholds(dataset, metric)
    marks = [t["threshold"] for t in thresholds if t["applies"]]
    defined = rows.filter(separability__isnull=False, normalised__isnull=False).select_related(
        "instance", "system_a", "system_b")
    lowest = list(defined.order_by("normalised", "id")[:extremes])
    highest = list(defined.order_by("-normalised", "-id")[:extremes])
    low = min([lowest[0].normalised] + list(marks)) if lowest else 0.0
    high = max([highest[0].normalised] + list(marks)) if highest else 1.0
    if high == low:
        low, high = low - 0.5, high + 0.5
    norm = HISTOGRAM_BINS / (high - low)
    groups = (rows.order_by()
              .annotate(bin=Case(When(normalised__isnull=True, then=Value(None)),
                                 default=Least(Floor((F("normalised") - Value(low)) * Value(norm)),
                                               Value(HISTOGRAM_BINS - 1)), output_field=FloatField()),
                        sep_undefined=Case(When(separability__isnull=True, then=Value(True)), default=Value(False),
                                           output_field=BooleanField()),
                        single=Case(When(Q(k_a__lt=2) | Q(k_b__lt=2), then=Value(True)), default=Value(False),
                                    output_field=BooleanField()))
              .values("bin", "sep_undefined", "undefined_reason", "single").annotate(n=Count("id")))
    counts = [0] * HISTOGRAM_BINS
    reasons: dict[str, int] = defaultdict(int)
    units = defined_units = single_sample = 0
    for g in groups:
        units += g["n"]
        if g["bin"] is not None:
            counts[max(0, min(HISTOGRAM_BINS - 1, int(g["bin"])))] += g["n"]
            defined_units += g["n"]
        if g["sep_undefined"]:
            reasons[g["undefined_reason"]] += g["n"]
            single_sample += g["n"] if g["single"] else 0
    hist = ({"edges": [float(e) for e in np.linspace(low, high, HISTOGRAM_BINS + 1)], "counts": counts,
             "n": defined_units} if defined_units else {"edges": [], "counts": [], "n": 0})
    undefined = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    highest = [a for a in highest if a.pk not in {x.pk for x in lowest}]
    return {
        "metric": metric,
        "histogram": hist,
        "thresholds": thresholds,
        "marks": marks,
        "units": units,
        "defined": defined_units,
        "undefined": [{"reason": _name_systems(reason) or "no reason recorded", "n": n} for reason, n in undefined],
        "undefined_total": sum(n for _, n in undefined),
        "undefined_single_sample": single_sample,
        "lowest": [unit_with_samples(a) for a in lowest],
        "highest": [unit_with_samples(a) for a in highest],
    }


def _name_systems(reason: str) -> str:
    """Undefined reasons name systems by id ("system 6 has 1 sample"); show their names."""
    import re

    from annotations.models import System

    ids = {int(i) for i in re.findall(r"system (\d+)", reason or "")}
    if not ids:
        return reason
    names = dict(System.objects.filter(id__in=ids).values_list("id", "name"))
    return re.sub(r"system (\d+)", lambda m: f"system {names.get(int(m.group(1)), m.group(1))}", reason)


def unit_with_samples(alignment) -> dict:
    """One unit as the paper shows it: every sample of each system, in two columns."""
    texts = defaultdict(list)
    for system_id, text in (Generation.objects.filter(
            instance_id=alignment.instance_id, system_id__in=(alignment.system_a_id, alignment.system_b_id))
            .order_by("sample_index").values_list("system_id", "text")):
        texts[system_id].append(text)
    a, b = texts[alignment.system_a_id], texts[alignment.system_b_id]
    return {
        "instance_id": alignment.instance.external_id, "input": alignment.instance.input,
        "system_a": alignment.system_a.name, "system_b": alignment.system_b.name,
        "separability": alignment.separability, "normalised": alignment.normalised,
        "self_a": alignment.self_a, "self_b": alignment.self_b, "cross": alignment.cross,
        "rows": [(a[i] if i < len(a) else "", b[i] if i < len(b) else "") for i in range(max(len(a), len(b)))],
    }


def run_progress(run, now=None) -> dict:
    """done / total, errors and the time left at the rate so far."""
    now = now or timezone.now()
    started = run.started_at or run.created_at
    end = run.finished_at or now
    elapsed = max(0.0, (end - started).total_seconds()) if started else 0.0
    active = run.status in ("queued", "running")
    left = agreement.seconds_left(run.done, run.total, elapsed) if active else None
    return {
        "id": run.pk, "status": run.status, "status_display": run.get_status_display(), "done": run.done,
        "total": run.total, "percent": int(100 * run.done / run.total) if run.total else 0,
        "chunks_done": len(run.chunks_done or []), "chunks_total": run.chunks_total,
        "errors": run.errors or [], "elapsed_seconds": elapsed, "seconds_left": left, "active": active,
        "metrics": run.metrics, "device": run.device, "model_name": run.model_name,
        "created_at": run.created_at, "finished_at": run.finished_at,
    }


def dataset_summary(dataset, counts: list[dict] | None = None) -> dict:
    """Counts for the dataset list and the API. `counts`: `separability_pair_counts(dataset)` when the
    caller has it. The generations are counted per system in one aggregate (the count and the distinct
    names were two scans over every generation)."""
    from annotations.models import System

    by_metric: dict[str, dict[str, int]] = {}
    for r in separability_pair_counts(dataset) if counts is None else counts:
        entry = by_metric.setdefault(r["metric"], {"units": 0, "defined": 0})
        entry["units"] += r["units"]
        entry["defined"] += r["defined"]
    per_system = dict(Generation.objects.filter(instance__dataset=dataset).order_by().values_list("system_id")
                      .annotate(n=Count("id")))
    return {
        "instances": dataset.instances.count(),
        "generations": sum(per_system.values()),
        "systems": sorted(System.objects.filter(id__in=per_system).values_list("name", flat=True)),
        "studies": list(dataset.studies.order_by("slug").values_list("slug", flat=True)),
        "separability": by_metric,
    }


def item_flags(study: Study, limit: int = 50) -> list[dict]:
    """Items annotators reported as impossible to judge, newest first, with how often each was reported."""
    counts = dict(ItemFlag.objects.filter(study=study).values_list("comparison").annotate(n=Count("id")))
    flags = (ItemFlag.objects.filter(study=study).select_related("comparison__instance", "comparison__system_a",
                                                                  "comparison__system_b")[:limit])
    names = _pseudonyms({f.annotator_id for f in flags})
    return [{"comparison_id": f.comparison_id, "instance_id": f.comparison.instance.external_id,
             "systems": f"{f.comparison.system_a.name} vs {f.comparison.system_b.name}",
             "annotator": names.get(f.annotator_id, "?"), "reason": f.reason, "created_at": f.created_at,
             "times": counts.get(f.comparison_id, 1)} for f in flags]
