"""Scale benchmark: a study of realistic size in PostgreSQL, every staff and public page timed on it.

A real study is far larger than the demo: this fills a database through `COPY` with a synthetic but
well-formed one (default 100 systems, 20,000 instances with 5 systems x k = 2 samples each,
200,000 comparisons, 1,000,000 votes from 5,000 annotators with their assignments, a separability row
for every unit), then, with a warmed gunicorn (the deployed configuration), times every page a
researcher, an annotator or the public opens, the REST API lists, the start of an export, and in
process the full leaderboard rebuild, the dashboard analysis and the export stream (first byte, memory).

    .venv/bin/python bench/scale.py                       # fill (about 4 minutes) and time
    .venv/bin/python bench/scale.py --keep-db             # leave the database for the next run
    .venv/bin/python bench/scale.py --reuse               # time again on the database kept before
    .venv/bin/python bench/scale.py --votes 100000 --instances 2000 --annotators 500   # smaller

Goals (issue 14, on a 2-core machine): every page p95 <= 300 ms, an export's first byte <= 300 ms with
memory flat in the number of votes, a full leaderboard rebuild <= 10 s. The table it prints goes in
docs/benchmarks.md. Nothing here asserts: it measures and prints.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.web_load import (  # noqa: E402 - the load benchmark's process helpers, shared
    create_database,
    drop_database,
    free_port,
    machine,
    percentile,
    stop_process,
    wait_for,
)

STUDY_SLUG = "scale"
DATASET_SLUG = "scale-texts"
STAFF = ("scale-staff", "scale-staff-password-1")
WORDS = ("model", "answer", "the", "river", "paper", "vote", "human", "quickly", "summary", "a", "of", "and",
         "evaluation", "pairwise", "output", "reads", "clearly", "because", "it", "news")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--instances", type=int, default=20_000)
    parser.add_argument("--per-instance", type=int, default=5, help="systems per instance (C(5,2) = 10 pairs)")
    parser.add_argument("--k", type=int, default=2, help="samples per system per instance")
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=5_000)
    parser.add_argument("--overlap", type=int, default=6, 
                        help="votes per comparison (room left for the annotator page)")
    parser.add_argument("--requests", type=int, default=15, help="timed requests per page (after 2 warm-ups)")
    parser.add_argument("--pg-url", default=os.environ.get("LOAD_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="sepeval_scale")
    parser.add_argument("--redis-url", default=os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379"),
                        help="Redis server; databases 10 (broker, no worker: tasks stay queued) and 11 (cache)")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="time the database a --keep-db run left")
    parser.add_argument("--skip-rebuild", action="store_true", help="do not time the leaderboard rebuild")
    parser.add_argument("--skip-in-process", action="store_true",
                        help="time the pages only (not the rebuild, the analysis and the export stream)")
    parser.add_argument("--only", default="", help="comma-separated page names to time (default all)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------------------------
# filling the database


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _copy(cursor, model, columns: list[str], rows) -> int:
    """COPY rows (tuples in `columns` order) into the model's table; returns the row count."""
    table = model._meta.db_table
    count = 0
    with cursor.copy(f'COPY "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _reset_sequences(cursor, models) -> None:
    for model in models:
        table = model._meta.db_table
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                       f"COALESCE((SELECT MAX(id) FROM \"{table}\"), 1))")


def fill(args) -> dict:
    """The synthetic study, through COPY; returns what was written (counts and the study's slug)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotations.models import (
        AnnotatorProfile,
        Assignment,
        Comparison,
        Dataset,
        Generation,
        Instance,
        InviteLink,
        Study,
        System,
        Vote,
    )
    from separability.models import Alignment

    User = get_user_model()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    began = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> None:
        timings[name] = time.perf_counter() - start
        print(f"  {name}: {timings[name]:.1f} s", flush=True)

    staff = User.objects.create_superuser(STAFF[0], "staff@example.org", STAFF[1])
    dataset = Dataset.objects.create(slug=DATASET_SLUG, name="Scale benchmark texts",
                                     source="Synthetic (bench/scale.py).")
    systems = System.objects.bulk_create([System(name=f"model-{i:03d}") for i in range(args.systems)])
    system_ids = [s.pk for s in systems]
    study = Study.objects.create(
        slug=STUDY_SLUG, name="Scale benchmark", dataset=dataset, policy=Study.Policy.ALL,
        votes_per_comparison=args.overlap, quota=0, status=Study.Status.OPEN, opened_at=now - timedelta(days=60),
        created_by=staff, selection_summary="Synthetic study of bench/scale.py.")
    study.systems.set(systems)
    invite = InviteLink.objects.create(max_uses=1_000_000, note="scale benchmark", created_by=staff)
    invite.studies.add(study)

    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg cursor underneath, for COPY
        start = time.perf_counter()
        base_user = User.objects.order_by("-id").values_list("id", flat=True).first() or 0
        user_ids = list(range(base_user + 1, base_user + 1 + args.annotators))
        _copy(cursor, User, ["id", "password", "is_superuser", "username", "first_name", "last_name", "email",
                             "is_staff", "is_active", "date_joined"],
              ((uid, "!", False, f"scale{uid:07d}", "", "", "", False, True, now) for uid in user_ids))
        _copy(cursor, AnnotatorProfile, ["user_id", "pseudonym", "external_id", "reentry_key_hash", "created_at"],
              ((uid, f"scale{uid:07d}", "", "", now) for uid in user_ids))
        lap("annotators", start)

        start = time.perf_counter()
        _copy(cursor, Instance, ["id", "dataset_id", "external_id", "input", "reference", "metadata"],
              ((i + 1, dataset.pk, f"doc-{i:06d}", _text(rng, 40), "", "{}") for i in range(args.instances)))
        lineup = [sorted(rng.sample(system_ids, args.per_instance)) for _ in range(args.instances)]
        generation_id: dict[tuple[int, int], int] = {}  # (instance, system) -> id of sample 0

        def generations():
            gid = 0
            for i, chosen in enumerate(lineup):
                for system_id in chosen:
                    for sample in range(args.k):
                        gid += 1
                        if sample == 0:
                            generation_id[(i + 1, system_id)] = gid
                        yield gid, i + 1, system_id, sample, _text(rng, 30)

        n_generations = _copy(cursor, Generation, ["id", "instance_id", "system_id", "sample_index", "text"],
                              generations())
        lap("instances and generations", start)

        start = time.perf_counter()
        units = [(i + 1, a, b) for i, chosen in enumerate(lineup)
                 for x, a in enumerate(chosen) for b in chosen[x + 1:]]
        separability = [rng.betavariate(2, 3) for _ in units]
        n_comparisons = len(units)
        votes_per = [args.votes // n_comparisons + (1 if c < args.votes % n_comparisons else 0)
                     for c in range(n_comparisons)]
        if max(votes_per) > min(args.overlap, args.annotators):
            raise SystemExit(f"{args.votes} votes over {n_comparisons} comparisons exceed the overlap {args.overlap}")
        _copy(cursor, Alignment, ["instance_id", "system_a_id", "system_b_id", "metric", "self_a", "self_b",
                                  "cross", "separability", "normalised", "k_a", "k_b", "undefined_reason",
                                  "updated_at"],
              ((i, a, b, "bertscore", 0.9, 0.88, 0.9 - s * 0.2, s * 0.2, s, args.k, args.k, "", now)
               for (i, a, b), s in zip(units, separability, strict=True)))
        _copy(cursor, Comparison, ["id", "study_id", "instance_id", "generation_a_id", "generation_b_id",
                                   "system_a_id", "system_b_id", "unit_key", "is_gold", "gold_answer",
                                   "separability", "priority", "votes_count", "selected", "created_at"],
              ((c + 1, study.pk, i, generation_id[(i, a)], generation_id[(i, b)], a, b, f"{i}:{a}:{b}", False, "",
                s, s, votes_per[c], True, now)
               for c, ((i, a, b), s) in enumerate(zip(units, separability, strict=True))))
        lap("comparisons and separability", start)

        start = time.perf_counter()
        span = 60 * 24 * 3600
        vote_start = now - timedelta(days=60)
        choices = ("left", "right", "tie", "both_bad")
        weights = (0.4, 0.4, 0.15, 0.05)
        plan = []  # (assignment id, comparison id, annotator id, left_is_a, seconds after the start)
        aid = 0
        for c, n in enumerate(votes_per):
            for annotator in rng.sample(user_ids, n):
                aid += 1
                plan.append((aid, c + 1, annotator, rng.random() < 0.5, rng.random() * span))
        _copy(cursor, Assignment, ["id", "comparison_id", "annotator_id", "token", "left_is_a", "issued_at",
                                   "expires_at", "served_at", "completed_at"],
              ((a, c, u, f"{a:032x}", left, vote_start + timedelta(seconds=t - 20),
                vote_start + timedelta(seconds=t + 580), vote_start + timedelta(seconds=t - 20),
                vote_start + timedelta(seconds=t))
               for a, c, u, left, t in plan))
        lap("assignments", start)

        start = time.perf_counter()

        def votes():
            for a, c, u, left, t in plan:
                choice = rng.choices(choices, weights)[0]
                winner = choice if choice in ("tie", "both_bad") else ("a" if (choice == "left") == left else "b")
                submitted = vote_start + timedelta(seconds=t)
                yield (a, study.pk, c, u, choice, winner, "", submitted - timedelta(seconds=20), submitted,
                       20.0, None, False, False, "", False, "live")

        n_votes = _copy(cursor, Vote, ["assignment_id", "study_id", "comparison_id", "annotator_id", "choice",
                                       "winner", "rationale", "served_at", "submitted_at", "duration_seconds",
                                       "gold_passed", "too_fast", "excluded", "exclusion_reason",
                                       "excluded_with_annotator", "source"], votes())
        lap("votes", start)
        _reset_sequences(cursor, [User, Instance, Generation, Comparison, Assignment])
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    lap("vacuum analyze", start)
    timings["total"] = time.perf_counter() - began
    return {"study": study.slug, "systems": args.systems, "instances": args.instances,
            "generations": n_generations, "comparisons": n_comparisons, "votes": n_votes,
            "annotators": args.annotators, "timings": timings}


def counts() -> dict:
    from annotations.models import Comparison, Generation, Instance, Study, Vote

    study = Study.objects.get(slug=STUDY_SLUG)
    return {"study": study.slug, "systems": study.systems.count(), "instances": Instance.objects.count(),
            "generations": Generation.objects.count(), "comparisons": Comparison.objects.filter(study=study).count(),
            "votes": Vote.objects.filter(study=study).count(),
            "annotators": Vote.objects.filter(study=study).values("annotator_id").distinct().count()}


# --------------------------------------------------------------------------------------------------
# timing


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_in_process(args) -> dict:
    """The rebuild, the dashboard analysis and the export stream, in this process (no HTTP)."""
    from annotations.models import Study
    from dashboard import exports, queries
    from ranking.services import rebuild_study_ratings, release_leaderboard

    study = Study.objects.get(slug=STUDY_SLUG)
    out: dict = {}
    if not args.skip_rebuild:
        start = time.perf_counter()
        rebuild_study_ratings(study)
        out["leaderboard_rebuild_s"] = time.perf_counter() - start
        release_leaderboard(study, "staff")  # the public page shows a release
        print(f"  leaderboard rebuild (Elo states + 4 boards, 100 bootstrap rounds): "
              f"{out['leaderboard_rebuild_s']:.1f} s", flush=True)
    start = time.perf_counter()
    try:
        from dashboard import analysis
    except ImportError:  # before the stored analysis existed
        queries.study_agreement(study)
        out["agreement_s"] = time.perf_counter() - start
        print(f"  agreement (Krippendorff alpha + Fleiss kappa): {out['agreement_s']:.1f} s", flush=True)
    else:
        analysis.refresh(study)
        out["analysis_refresh_s"] = time.perf_counter() - start
        print(f"  dashboard analysis refresh (agreement, annotators, disagreed, consistency, timeline): "
              f"{out['analysis_refresh_s']:.1f} s", flush=True)
    # The export stream: time to the first chunk, and Python memory after 10% and after all of it.
    tracemalloc.start()
    start = time.perf_counter()
    chunks = exports.iter_export_text(study, "csv")
    first = next(chunks)
    out["export_first_chunk_ms"] = 1000 * (time.perf_counter() - start)
    size, rows, marks = len(first), first.count("\n"), {}
    tenth = max(1, args.votes // 10)
    for chunk in chunks:
        size += len(chunk)
        rows += chunk.count("\n")
        if "tenth" not in marks and rows >= tenth:
            marks["tenth"] = tracemalloc.get_traced_memory()[1] / 2**20
    out["export_s"] = time.perf_counter() - start
    out["export_rows"] = rows
    out["export_peak_mb_at_10pct"] = marks.get("tenth", float("nan"))
    out["export_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"  CSV export stream: first chunk {out['export_first_chunk_ms']:.0f} ms, {rows} lines in "
          f"{out['export_s']:.1f} s, Python peak {out['export_peak_mb_at_10pct']:.1f} MiB at 10% -> "
          f"{out['export_peak_mb']:.1f} MiB at 100%", flush=True)
    return out


def _staff_session(base: str):
    import requests

    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=60).raise_for_status()
    answer = session.post(f"{base}/accounts/login/", timeout=60, allow_redirects=False,
                          data={"username": STAFF[0], "password": STAFF[1],
                                "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                          headers={"Referer": f"{base}/accounts/login/"})
    if answer.status_code != 302:
        raise RuntimeError(f"staff login failed: {answer.status_code}")
    return session


def _annotator_session(base: str, invite_token: str):
    import requests

    session = requests.Session()
    url = f"{base}/invite/{invite_token}/"
    session.get(url, timeout=60).raise_for_status()
    session.post(url, data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=60).raise_for_status()
    return session


def pages(study_slug: str, dataset_slug: str) -> list[tuple[str, str, str]]:
    """(name, who, path) of every page timed: `staff`, `annotator` or `public`."""
    s, d = study_slug, dataset_slug
    return [
        ("studies list", "staff", "/studies/"),
        ("study page", "staff", f"/studies/{s}/"),
        ("study form (edit)", "staff", f"/studies/{s}/edit/"),
        ("dashboard index", "staff", "/dashboard/"),
        ("dashboard study", "staff", f"/dashboard/studies/{s}/"),
        ("separability page", "staff", f"/dashboard/datasets/{d}/separability/"),
        ("export start (csv)", "staff", f"/dashboard/studies/{s}/export/csv/"),
        ("leaderboard index", "public", "/leaderboard/"),
        ("leaderboard page", "public", f"/leaderboard/{s}/"),
        ("leaderboard .json", "public", f"/leaderboard/{s}.json"),
        ("annotator page", "annotator", f"/s/{s}/"),
        ("API studies", "staff", "/api/v1/studies/"),
        ("API study", "staff", f"/api/v1/studies/{s}/"),
        ("API comparisons", "staff", f"/api/v1/studies/{s}/comparisons/"),
        ("API votes", "staff", f"/api/v1/studies/{s}/votes/"),
        ("API leaderboards", "staff", f"/api/v1/studies/{s}/leaderboards/"),
        ("API datasets", "staff", "/api/v1/datasets/"),
        ("API dataset separability", "staff", f"/api/v1/datasets/{d}/separability/"),
    ]


def time_pages(base: str, invite_token: str, n: int, only: set[str]) -> list[dict]:
    import requests

    sessions = {"staff": _staff_session(base), "annotator": _annotator_session(base, invite_token),
                "public": requests.Session()}
    results = []
    for name, who, path in pages(STUDY_SLUG, DATASET_SLUG):
        if only and name not in only:
            continue
        session = sessions[who]
        latencies, statuses, first_byte = [], set(), []
        slow = False
        for i in range(n + 2):
            start = time.perf_counter()
            with session.get(base + path, timeout=600, stream=True) as response:
                chunks = response.iter_content(chunk_size=None)
                size = len(next(chunks, b""))
                first_byte.append(time.perf_counter() - start)
                size += sum(len(c) for c in chunks)
            elapsed = time.perf_counter() - start
            statuses.add(response.status_code)
            if i >= 2:
                latencies.append(elapsed)
            if elapsed > 5 and i >= 2 and len(latencies) >= 3:
                slow = True  # a page this slow is measured on 3 requests, not n
                break
        row = {"page": name, "path": path, "who": who, "n": len(latencies),
               "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * percentile(latencies, 95),
               "first_byte_p50_ms": 1000 * statistics.median(first_byte[2:]), "bytes": size,
               "statuses": sorted(statuses), "cut_short": slow}
        results.append(row)
        print(f"  {name:28s} p50 {row['p50_ms']:8.0f} ms  p95 {row['p95_ms']:8.0f} ms  "
              f"{size / 1024:8.0f} KiB  {row['statuses']}", flush=True)
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    database_url = f"{args.pg_url.rstrip('/')}/{args.database}"
    redis = args.redis_url.rstrip("/")
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "evalsite.settings", "DATABASE_URL": database_url, "REDIS_URL": f"{redis}/11",
        "CELERY_BROKER_URL": f"{redis}/10", "STATIC_MANIFEST": "0", "CONN_MAX_AGE": "60", "DEBUG": "false",
        "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
    })
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    gunicorn = None
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        if not args.reuse:
            create_database(args.pg_url.rstrip("/"), args.database)
        import django

        django.setup()
        from django.core.management import call_command

        if not args.reuse:
            call_command("migrate", verbosity=0, interactive=False)
            print(f"filling {args.database} through COPY:", flush=True)
            written = fill(args)
        else:
            call_command("migrate", verbosity=0, interactive=False)
            written = counts()
        print(f"study: {written['systems']} systems, {written['instances']} instances, {written['generations']} "
              f"generations, {written['comparisons']} comparisons, {written['votes']} votes, "
              f"{written['annotators']} annotators", flush=True)
        from annotations.models import InviteLink

        invite_token = InviteLink.objects.filter(note="scale benchmark").values_list("token", flat=True).get()
        print("in process:", flush=True)
        in_process = {} if args.skip_in_process else time_in_process(args)
        from django.db import connections

        connections.close_all()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = work / "gunicorn.log"
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "evalsite.wsgi"], cwd=ROOT, env=dict(os.environ), stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        import requests

        wait_for(lambda: requests.get(f"{base}/healthz", timeout=5).status_code == 200, 120, "gunicorn", gunicorn, log)
        print(f"pages ({args.requests} timed requests each after 2 warm-ups, one client, gunicorn as deployed):",
              flush=True)
        only = {p.strip() for p in args.only.split(",") if p.strip()}
        timed = time_pages(base, invite_token, args.requests, only)
        over = [r["page"] for r in timed if r["p95_ms"] > 300]
        print()
        print(f"| page ({written['votes']:,} votes, {written['comparisons']:,} comparisons) | p50 ms | p95 ms |")
        print("|---|---:|---:|")
        for r in timed:
            print(f"| {r['page']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
        print()
        for key, value in in_process.items():
            print(f"{key}: {value:.1f}")
        print(f"pages over 300 ms at p95: {', '.join(over) if over else 'none'}")
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args), "written": written,
                                                   "in_process": in_process, "pages": timed}, indent=2, default=str))
        return 0
    finally:
        stop_process(gunicorn)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        if not args.keep_db and not args.reuse:
            try:
                drop_database(args.pg_url.rstrip("/"), args.database)
            except Exception as exc:  # noqa: BLE001
                print(f"could not drop {args.database}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
