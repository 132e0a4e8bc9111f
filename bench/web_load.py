"""Load benchmark of the annotator site: N concurrent annotators voting through gunicorn on PostgreSQL
and Redis, against a bare Django view on the same server as the floor, then an audit of every vote.

Run from the repository root (needs PostgreSQL; Redis is started here unless --redis-url is given):

    .venv/bin/python bench/web_load.py                        # 50 annotators for 60 s
    .venv/bin/python bench/web_load.py --annotators 20 --seconds 15 --floor-seconds 5   # quicker
    .venv/bin/python bench/web_load.py --profile /tmp/load.txt  # py-spy on the gunicorn workers too
    .venv/bin/python bench/web_load.py --open-loop 60 --seconds 60  # open loop: 60 votes/s, Poisson

What it does, all on loopback, bounded in count and time:

1. Creates its own database (`--database`, default `sepeval_load`; dropped first if it exists) on the
   PostgreSQL server of `--pg-url`, migrates it, and starts its own `redis-server` on a free port
   (cache, rate limits and Celery broker, as in docker-compose).
2. Builds a study from the real demo texts: both crowd batches of the separability paper, with each
   sampled generation treated as its own system (10 per instance), so the 100 instances give
   100 x C(10, 2) = 4500 comparisons; overlap `--overlap` (3). That pool is far larger than a minute
   of voting uses, so no annotator runs out of items mid-run (which would flatter the numbers).
3. Starts `gunicorn -c gunicorn.conf.py` (2 gthread workers, the deployed configuration) with
   DJANGO_SETTINGS_MODULE=bench.load_settings (the site plus `/bench/bare/`), and a Celery worker on
   the `default` queue so the debounced leaderboard recomputes run as they would in production.
4. Floor: `--annotators` client threads GET `/bench/bare/` (no database, no cache) for
   `--floor-seconds`, before and again after the annotators' phase (the machine may be shared; the
   two are averaged).
5. Annotators: each client thread signs in through one multi-use invite link (its own cookies and
   CSRF token), then runs the annotator cycle for `--seconds`: POST the vote with the CSRF token as
   htmx does (`HX-Request: true`, `X-CSRFToken`), whose response is the next item (its token is read
   from it). That is one cycle, exactly what a browser does per judgement. `--mode page` adds a full
   GET of `/s/<slug>/` before every vote (a reload per item: two requests per cycle).
6. Prints cycles/s, p50/p99 cycle latency, the floor's requests/s and latency, and the ratio
   cycles/s / bare requests/s, plus the server's CPU time per cycle and per bare request.
7. Audits the database: acknowledged votes (2xx answers to vote POSTs) = stored votes, token for
   token; no (comparison, annotator) twice; no comparison over its overlap and `votes_count` equal
   to the stored votes; every completed assignment has its vote and every vote its completed
   assignment; the incremental Elo state counts every vote (2 rating updates each). Exits 1 if any
   check fails.

Open loop (`--open-loop RATE`): the latency at a realistic load rather than at saturation. Instead of
the floor and the closed loop, votes arrive at RATE per second for `--seconds`, at the times of a
seeded Poisson process (exponential gaps), dealt round-robin to the client processes; each is sent at
its time by whichever of the `--annotators` signed-in sessions (the pool) is idle, with the same cycle
as above. When no session is idle at a vote's time it is sent as soon as one is (a late start) and its
latency still runs from the scheduled time, so queueing in the client is not hidden (no coordinated
omission). Prints offered and achieved rates, p50/p95/p99 latency from the scheduled time, service time
(from the send) p50/p99, late starts, failures, and the same audit.

The vote rate limit is raised to 1,000,000/m for the run (the limiter is still hit on every vote:
the cost is measured, the refusals are not wanted). Static files are served with the plain storage
(STATIC_MANIFEST=0), so no collectstatic is needed. Everything else comes from the environment, as
deployed; `--conn-max-age` sets CONN_MAX_AGE (default 60, persistent connections, as docker-compose
deploys the site; 0, a new database connection per request, is the embedded default of `make run`).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = re.compile(r'name="token" value="([^"]+)"')
STUDY_SLUG = "web-load"
DATASET_SLUG = "web-load-texts"
PAPER_FILES = (
    ("demo/data/separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv",
     ("flan-t5-xxl", "gpt-3.5-turbo-instruct")),
    ("demo/data/separability-paper/mistral-7b_vicuna-7b_samsum_pref_data.csv", ("mistral-7b", "vicuna-7b")),
)
CHOICES = ("left", "right", "tie", "both_bad")
OPEN_LOOP_P99_GOAL_MS = 200.0  # issue 14: p99 of the cycle at 60 votes/s


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=50,
                        help="concurrent annotators (default 50); with --open-loop, the pool of signed-in sessions")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the annotators' phase (60)")
    parser.add_argument("--floor-seconds", type=float, default=15.0,
                        help="length of each of the two floor phases, before and after (15)")
    parser.add_argument("--overlap", type=int, default=3, help="votes per comparison (3)")
    parser.add_argument("--mode", choices=("htmx", "page"), default="htmx",
                        help="htmx: the vote's response is the next item (default); page: also GET the page")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="client processes the annotator threads are spread over (default 2)")
    parser.add_argument("--pg-url", default=os.environ.get("LOAD_PG_URL", "postgres://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server, without database name")
    parser.add_argument("--database", default="sepeval_load", help="database created (and dropped) here")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for inspection")
    parser.add_argument("--redis-url", default="",
                        help="use this Redis (base URL, DBs 0 and 1 are used) instead of starting one")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4")))
    parser.add_argument("--conn-max-age", type=int, default=int(os.environ.get("CONN_MAX_AGE", "60")))
    parser.add_argument("--no-worker", action="store_true", help="no Celery worker (recomputes stay queued)")
    parser.add_argument("--profile", default="",
                        help="record the gunicorn workers with py-spy during the annotators' phase into this "
                             "file (collapsed stacks) and print where the time goes")
    parser.add_argument("--profile-cpu", action="store_true",
                        help="with --profile: sample only threads holding the GIL (Python CPU time, not waiting)")
    parser.add_argument("--open-loop", type=float, default=0.0, metavar="RATE",
                        help="open loop instead: votes arrive at RATE per second (Poisson, seeded) for --seconds, "
                             "each sent by whichever session of the pool is idle; latency counted from the "
                             "scheduled time (no floor phases)")
    parser.add_argument("--warmup-seconds", type=float, default=5.0,
                        help="with --open-loop: votes at the same rate for this long before the timed window, "
                             "audited but not timed (every server thread has run a vote; default 5)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.open_loop < 0 or not math.isfinite(args.open_loop):
        parser.error(f"--open-loop: a rate in votes per second above 0 (got {args.open_loop})")
    if args.open_loop and not args.seconds > 0:
        parser.error(f"--open-loop needs --seconds above 0 (got {args.seconds})")
    return args


# --------------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"{what} exited early (code {process.returncode}):\n{tail}")
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s")


def stop_process(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def server_cpu(master: int) -> float:
    return sum(cpu_seconds(pid) for pid in [master, *children_of(master)])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


# --------------------------------------------------------------------------------------------------
# the study


def create_database(pg_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(pg_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_study(overlap: int, invite_uses: int):
    """The demo texts as a dataset of 100 instances x 10 single-sample "systems", a study over all
    45 pairs of each instance, opened, and a multi-use invite. Returns (study, invite, comparisons)."""
    from django.db import transaction

    from annotations.imports.parse import ParsedGeneration, ParsedGenerations, ParsedInstance, parse_pairwise_csv
    from annotations.imports.write import write_generations
    from annotations.models import Comparison, InviteLink, Study, System
    from annotations.selection import open_study
    from annotations.services import get_or_create_dataset

    parsed = ParsedGenerations("demo crowd batches")
    for path, systems in PAPER_FILES:
        batch = parse_pairwise_csv(ROOT / path, 100_000)
        for key, texts_by_system in batch.instances.items():
            line = batch.instance_lines[key]
            parsed.instances[key] = ParsedInstance(key, line, None, None, {"source": path})
            for system, texts in zip(systems, texts_by_system, strict=True):
                for index, text in enumerate(texts):
                    parsed.generations.append(ParsedGeneration(key, f"{system}/s{index + 1}", 0, text, line,
                                                               "summary"))
    with transaction.atomic():
        dataset = get_or_create_dataset(DATASET_SLUG, "Web load benchmark (separability-paper texts)")
        write_generations(dataset, parsed)
        study = Study.objects.create(slug=STUDY_SLUG, name="Web load", dataset=dataset, votes_per_comparison=overlap,
                                     quota=0, lease_seconds=600, instructions="Pick the better summary.")
        study.systems.set(System.objects.filter(name__in=parsed.systems))
    open_study(study)
    study.refresh_from_db()
    invite = InviteLink.objects.create(max_uses=invite_uses, note="bench/web_load.py")
    invite.studies.add(study)
    return study, invite, Comparison.objects.filter(study=study).count()


# --------------------------------------------------------------------------------------------------
# the clients (spawned processes, each running a share of the annotators as threads)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values (bench/peers and bench/scale use it too)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def _sign_in(session, invite_url: str, study_url: str) -> str:
    """Open the invite, accept it (POST with the CSRF token; it lands on the tasks page), open the study's
    first item; returns its token."""
    session.get(invite_url, timeout=60).raise_for_status()
    session.post(invite_url, data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
                 timeout=60).raise_for_status()
    page = session.get(study_url, timeout=60)
    page.raise_for_status()
    match = TOKEN.search(page.text)
    if match is None:
        raise RuntimeError(f"no item after signing in ({page.status_code} {page.url})")
    return match.group(1)


@dataclass
class VoteOutcome:
    """What one annotator cycle gave: the vote POST's status (None when it got no answer, or the page
    before it failed), when that answer arrived, the next item's token, whether the site had nothing
    more for this annotator (HX-Redirect), and the errors to report."""

    status: int | None
    finished: float
    voted_token: str = ""  # the token the vote was cast on (mode page: the one the page gave)
    next_token: str | None = None
    ran_out: bool = False
    errors: list[str] = field(default_factory=list)


def _cast_vote(session, mode, page_url, vote_url, token, choice) -> VoteOutcome:
    """One annotator cycle as a browser runs it: (mode page: GET the page and take its token, then) POST
    the vote with the CSRF token as htmx does; its answer is the next item, whose token is read from it."""
    try:
        if mode == "page":
            page = session.get(page_url, timeout=60)
            match = TOKEN.search(page.text) if page.status_code == 200 else None
            if match is None:
                return VoteOutcome(None, time.time(), errors=[f"page {page.status_code} {page.url}"])
            token = match.group(1)
        response = session.post(vote_url, timeout=60,
                                headers={"HX-Request": "true", "HX-Current-URL": page_url, "HX-Target": "item",
                                         "X-CSRFToken": session.cookies["csrftoken"]},
                                data={"token": token, "choice": choice})
    except Exception as exc:  # noqa: BLE001 - a transport error is reported (and fails the audit)
        return VoteOutcome(None, time.time(), errors=[f"vote transport: {exc!r} (token {token})"])
    outcome = VoteOutcome(response.status_code, time.time(), voted_token=token)
    if not 200 <= response.status_code < 300:
        outcome.errors.append(f"vote {response.status_code}: {response.text[:160]!r}")
    if response.headers.get("HX-Redirect"):
        outcome.ran_out = True
        return outcome
    match = TOKEN.search(response.text)
    outcome.next_token = match.group(1) if match else None
    if outcome.next_token is None and mode == "htmx":
        outcome.errors.append(f"no next item in a {response.status_code} answer")
    return outcome


def _annotator(base, slug, invite_url, mode, seed, ready, start_box, out):
    import requests

    rng = random.Random(seed)
    session = requests.Session()
    records, acknowledged, errors = [], [], []
    ran_out = False
    try:
        token = _sign_in(session, invite_url, f"{base}/s/{slug}/")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"sign-in: {exc!r}")
        ready.wait()
        out.append((records, acknowledged, errors, ran_out))
        return
    ready.wait()  # every thread of this process signed in
    start_box["event"].wait()
    start, end = start_box["start"], start_box["end"]
    while time.time() < start:
        time.sleep(0.001)
    vote_url = f"{base}/s/{slug}/vote/"
    page_url = f"{base}/s/{slug}/"
    while time.time() < end and token is not None:
        began = time.time()
        outcome = _cast_vote(session, mode, page_url, vote_url, token, rng.choice(CHOICES))
        errors.extend(outcome.errors)
        if outcome.status is None:
            break
        records.append((outcome.finished, outcome.finished - began, outcome.status))
        if 200 <= outcome.status < 300:
            acknowledged.append(outcome.voted_token)
        if outcome.ran_out:
            ran_out = True
            break
        token = outcome.next_token
    session.close()
    out.append((records, acknowledged, errors, ran_out))


def _bare_client(base, ready, start_box, out):
    import requests

    session = requests.Session()
    records, errors = [], []
    url = f"{base}/bench/bare/"
    try:
        session.get(url, timeout=60).raise_for_status()  # open the keep-alive connection
    except Exception as exc:  # noqa: BLE001
        errors.append(repr(exc))
    ready.wait()
    start_box["event"].wait()
    start, end = start_box["start"], start_box["end"]
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < end:
        began = time.time()
        try:
            response = session.get(url, timeout=60)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
            break
        finished = time.time()
        records.append((finished, finished - began, response.status_code))
        if response.status_code != 200:
            errors.append(f"bare {response.status_code}")
    session.close()
    out.append((records, [], errors, False))


def client_process(kind, base, slug, invite_url, mode, seeds, to_parent, from_parent, offsets=()):
    """One client process: len(seeds) threads of `kind` ("annotator", "bare", or "open": sessions sending
    the votes scheduled at `offsets` seconds after the start); reports through queues."""
    ready = threading.Barrier(len(seeds) + 1)
    start_box = {"event": threading.Event()}
    out: list = []
    threads = []
    arrivals: queue.SimpleQueue = queue.SimpleQueue()
    for offset in offsets:
        arrivals.put(offset)
    for seed in seeds:
        if kind == "annotator":
            target, args = _annotator, (base, slug, invite_url, mode, seed, ready, start_box, out)
        elif kind == "open":
            target, args = _open_loop_session, (base, slug, invite_url, mode, seed, arrivals, ready, start_box, out)
        else:
            target, args = _bare_client, (base, ready, start_box, out)
        threads.append(threading.Thread(target=target, args=args, daemon=True))
    for thread in threads:
        thread.start()
    ready.wait()
    to_parent.put("ready")
    start_box["start"], start_box["end"] = from_parent.get()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    start_box["event"].set()
    for thread in threads:
        thread.join()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    to_parent.put({"threads": out, "cpu": cpu})


def _start_profiler(master_pid: int, seconds: float, path: str, gil_only: bool) -> subprocess.Popen:
    """py-spy over the gunicorn master and its workers for `seconds`, collapsed stacks into `path`."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(master_pid), "--subprocesses",
         "--rate", "100", "--format", "raw", "--duration", str(int(seconds)), "--output", path,
         "--nonblocking", *(["--gil"] if gil_only else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_profiler(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()


def run_phase(kind, args, base, slug, invite_url, seconds, master_pid, seed_base, profile_path="",
              profile_cpu=False):
    """Run one timed phase over --client-procs processes; returns a summary dict."""
    ctx = mp.get_context("spawn")
    procs = max(1, min(args.client_procs, args.annotators))
    shares = [list(range(seed_base + i, seed_base + args.annotators, procs)) for i in range(procs)]
    channels = []
    for share in shares:
        to_parent, from_parent = ctx.Queue(), ctx.Queue()
        process = ctx.Process(target=client_process, daemon=True,
                              args=(kind, base, slug, invite_url, args.mode, share, to_parent, from_parent))
        process.start()
        channels.append((process, to_parent, from_parent))
    for _, to_parent, _ in channels:
        if to_parent.get(timeout=300) != "ready":
            raise RuntimeError("client process failed to start")
    start = time.time() + 0.5
    end = start + seconds
    profiler = _start_profiler(master_pid, seconds, profile_path, profile_cpu) if profile_path else None
    cpu_before = server_cpu(master_pid)
    for _, _, from_parent in channels:
        from_parent.put((start, end))
    results = [to_parent.get(timeout=seconds + 300) for _, to_parent, _ in channels]
    cpu_server = server_cpu(master_pid) - cpu_before
    for process, _, _ in channels:
        process.join(30)
    _wait_for_profiler(profiler)
    records, acknowledged, errors, ran_out = [], [], [], 0
    for result in results:
        for thread_records, thread_ack, thread_errors, thread_ran_out in result["threads"]:
            records.extend(thread_records)
            acknowledged.extend(thread_ack)
            errors.extend(thread_errors)
            ran_out += thread_ran_out
    in_window = [r for r in records if start <= r[0] < end and 200 <= r[2] < 300]
    latencies = [r[1] for r in in_window]
    return {
        "kind": kind, "seconds": seconds, "count": len(in_window), "per_second": len(in_window) / seconds,
        "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "requests_total": len(records), "statuses": dict(Counter(r[2] for r in records)),
        "acknowledged": acknowledged, "errors": errors, "ran_out": ran_out,
        "server_cpu_s": cpu_server, "client_cpu_s": sum(r["cpu"] for r in results),
        "threads_reported": sum(len(r["threads"]) for r in results),
    }


# --------------------------------------------------------------------------------------------------
# open loop: votes arrive at a fixed rate, whether or not the site keeps up


class OpenLoopRecord(NamedTuple):
    """One scheduled vote: when it was due, when a session took it (after `scheduled`: no session was
    idle then, a late start), when it was sent and answered (epoch seconds), and the vote POST's status
    (None when it got no answer)."""

    scheduled: float
    picked: float
    sent: float
    finished: float
    status: int | None


def poisson_schedule(rate: float, seconds: float, seed: int) -> list[float]:
    """Arrival times (seconds after the start) of a Poisson process of `rate` per second over
    [0, seconds): independent exponential gaps from a seeded generator, so a run can be repeated
    arrival for arrival."""
    if not (rate > 0 and seconds > 0 and math.isfinite(rate) and math.isfinite(seconds)):
        raise ValueError(f"--open-loop needs a positive rate and --seconds (got rate {rate}, seconds {seconds})")
    rng = random.Random(seed)
    arrivals = []
    at = rng.expovariate(rate)
    while at < seconds:
        arrivals.append(at)
        at += rng.expovariate(rate)
    return arrivals


def summarise_open_loop(records: list[OpenLoopRecord], start: float, seconds: float, planned: int) -> dict:
    """The open loop's figures. Latency runs from the *scheduled* time to the answer, so a vote that
    waited for a free session counts its wait (no coordinated omission); service time runs from the
    send. Votes scheduled before `start` are the warm-up: left out. Only answered 2xx votes are timed;
    the rest are counted as failed, and arrivals no session sent (every session gone) as not sent. The
    achieved rate divides the answered votes by the window, or by the time to the last answer when the
    site fell behind and answered after the window."""
    if not seconds > 0:
        raise ValueError(f"an open-loop window needs a positive length (got {seconds} s)")
    records = [r for r in records if r.scheduled >= start]
    answered = [r for r in records if r.status is not None and 200 <= r.status < 300]
    latencies = [r.finished - r.scheduled for r in answered]
    service = [r.finished - r.sent for r in answered]
    delays = [r.sent - r.scheduled for r in records]
    last = max((r.finished for r in answered), default=start)
    return {
        "planned": planned, "offered_per_second": planned / seconds, "count": len(answered),
        "achieved_per_second": len(answered) / max(seconds, last - start),
        "p50_ms": 1000 * percentile(latencies, 50), "p95_ms": 1000 * percentile(latencies, 95),
        "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies, default=float("nan")),
        "service_p50_ms": 1000 * percentile(service, 50), "service_p99_ms": 1000 * percentile(service, 99),
        "start_delay_p99_ms": 1000 * percentile(delays, 99),
        "late_starts": sum(r.picked > r.scheduled for r in records),
        "failed": len(records) - len(answered), "not_sent": planned - len(records),
        "answered_after_window_s": max(0.0, last - start - seconds),
    }


def _open_loop_session(base, slug, invite_url, mode, seed, arrivals, ready, start_box, out):
    """One signed-in annotator session of the pool: while scheduled votes remain, take the earliest not
    yet taken, wait for its time (or send it at once if it is already due: a late start), vote."""
    import requests

    rng = random.Random(seed)
    session = requests.Session()
    records: list[OpenLoopRecord] = []
    acknowledged, errors = [], []
    ran_out = False
    try:
        token = _sign_in(session, invite_url, f"{base}/s/{slug}/")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"sign-in: {exc!r}")
        ready.wait()
        out.append((records, acknowledged, errors, ran_out))
        return
    ready.wait()
    start_box["event"].wait()
    start = start_box["start"]
    vote_url, page_url = f"{base}/s/{slug}/vote/", f"{base}/s/{slug}/"
    while token is not None:
        try:
            scheduled = start + arrivals.get_nowait()
        except queue.Empty:
            break
        picked = time.time()
        if picked < scheduled:
            time.sleep(scheduled - picked)
        sent = time.time()
        outcome = _cast_vote(session, mode, page_url, vote_url, token, rng.choice(CHOICES))
        records.append(OpenLoopRecord(scheduled, picked, sent, outcome.finished, outcome.status))
        errors.extend(outcome.errors)
        if outcome.status is None:
            break  # this session's state is unknown; the others take the remaining arrivals
        if 200 <= outcome.status < 300:
            acknowledged.append(outcome.voted_token)
        if outcome.ran_out:
            ran_out = True
            break
        token = outcome.next_token
    session.close()
    out.append((records, acknowledged, errors, ran_out))


def run_open_loop_phase(args, base, slug, invite_url, master_pid):
    """The seeded Poisson schedule over --warmup-seconds + --seconds dealt round-robin to --client-procs
    processes (their union is the schedule), each holding its share of the --annotators sessions; returns
    summarise_open_loop's dict over the timed window plus the acknowledged tokens (warm-up included, for
    the audit), errors, CPU times and every timed vote's (scheduled, latency, service) in seconds."""
    warmup = max(0.0, args.warmup_seconds)
    schedule = poisson_schedule(args.open_loop, warmup + args.seconds, args.seed)
    ctx = mp.get_context("spawn")
    procs = max(1, min(args.client_procs, args.annotators))
    channels = []
    for i in range(procs):
        to_parent, from_parent = ctx.Queue(), ctx.Queue()
        sessions = list(range(args.seed + i, args.seed + args.annotators, procs))
        process = ctx.Process(target=client_process, daemon=True,
                              args=("open", base, slug, invite_url, args.mode, sessions, to_parent, from_parent,
                                    schedule[i::procs]))
        process.start()
        channels.append((process, to_parent, from_parent))
    for _, to_parent, _ in channels:
        if to_parent.get(timeout=300) != "ready":
            raise RuntimeError("client process failed to start")
    clock = time.time() + 0.5  # the schedule's zero; the timed window starts after the warm-up
    for _, _, from_parent in channels:
        from_parent.put((clock, clock + warmup + args.seconds))
    start = clock + warmup
    time.sleep(max(0.0, start - time.time()))
    profiler = _start_profiler(master_pid, args.seconds, args.profile, args.profile_cpu) if args.profile else None
    cpu_before = server_cpu(master_pid)
    results = [to_parent.get(timeout=warmup + args.seconds + 300) for _, to_parent, _ in channels]
    cpu_server = server_cpu(master_pid) - cpu_before
    for process, _, _ in channels:
        process.join(30)
    _wait_for_profiler(profiler)
    records: list[OpenLoopRecord] = []
    acknowledged, errors, ran_out = [], [], 0
    for result in results:
        for thread_records, thread_ack, thread_errors, thread_ran_out in result["threads"]:
            records.extend(OpenLoopRecord(*r) for r in thread_records)
            acknowledged.extend(thread_ack)
            errors.extend(thread_errors)
            ran_out += thread_ran_out
    timed = [r for r in records if r.scheduled >= start]
    summary = summarise_open_loop(records, start, args.seconds, sum(at >= warmup for at in schedule))
    summary.update({
        "warmup_seconds": warmup, "warmup_votes": len(records) - len(timed),
        "votes": [(r.scheduled - start, r.finished - r.scheduled, r.finished - r.sent, r.status)
                  for r in sorted(timed)],
        "seconds": args.seconds, "rate": args.open_loop, "sessions": args.annotators,
        "statuses": dict(Counter(str(r.status) for r in timed)), "acknowledged": acknowledged, "errors": errors,
        "ran_out": ran_out, "server_cpu_s": cpu_server, "client_cpu_s": sum(r["cpu"] for r in results),
        "threads_reported": sum(len(r["threads"]) for r in results),
    })
    return summary


def report_open_loop(args, study, base, slug, invite_url, master_pid) -> int:
    """Run the open loop, print its table and the audit, write --json; 0 when the audit passed."""
    print(f"open loop: {args.open_loop:g} votes/s (Poisson, seed {args.seed}) for {args.seconds:.0f} s after "
          f"{args.warmup_seconds:g} s of warm-up at the same rate, over a pool "
          f"of {args.annotators} sessions in {args.client_procs} processes; mode {args.mode}; gunicorn "
          f"{args.workers} x {args.threads} (gthread), CONN_MAX_AGE={args.conn_max_age}; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    result = run_open_loop_phase(args, base, slug, invite_url, master_pid)
    checks = audit(study, result["acknowledged"])
    errors = result["errors"]
    passed = (all(ok for _, ok, _ in checks) and not errors and result["not_sent"] == 0
              and result["threads_reported"] == args.annotators)
    stored = study.votes.filter(source="live").count()
    print()
    print(f"| measure (open loop, {args.open_loop:g} votes/s offered, {args.seconds:.0f} s) | value |")
    print("|---|---:|")
    print(f"| votes scheduled / offered rate (per s) | {result['planned']} / {result['offered_per_second']:.1f} |")
    print(f"| votes answered 2xx / achieved rate (per s) | {result['count']} / {result['achieved_per_second']:.1f} |")
    print(f"| latency from scheduled time p50 / p95 / p99 / max (ms) | {result['p50_ms']:.0f} / "
          f"{result['p95_ms']:.0f} / {result['p99_ms']:.0f} / {result['max_ms']:.0f} |")
    print(f"| service time (from send) p50 / p99 (ms) | {result['service_p50_ms']:.0f} / "
          f"{result['service_p99_ms']:.0f} |")
    print(f"| late starts (no idle session at the scheduled time) | {result['late_starts']} |")
    print(f"| start delay p99 (ms) | {result['start_delay_p99_ms']:.1f} |")
    print(f"| answered after the window closed (s) | {result['answered_after_window_s']:.2f} |")
    print(f"| gunicorn CPU per vote (ms) | {1000 * result['server_cpu_s'] / max(1, result['count']):.1f} |")
    print(f"| client CPU, warm-up included (s) | {result['client_cpu_s']:.1f} |")
    print(f"| failed / not sent | {result['failed']} / {result['not_sent']} |")
    print(f"| votes acknowledged / stored (warm-up's {result['warmup_votes']} included) | "
          f"{len(result['acknowledged'])} / {stored} |")
    print(f"| vote POST statuses (timed window) | {result['statuses']} |")
    print(f"| sessions that ran out of items | {result['ran_out']} |")
    goal = result["p99_ms"] <= OPEN_LOOP_P99_GOAL_MS
    print(f"\np99 goal (<= {OPEN_LOOP_P99_GOAL_MS:.0f} ms at 60 votes/s): {'met' if goal else 'NOT met'} at "
          f"{args.open_loop:g} votes/s")
    print("\naudit:")
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    if errors:
        print(f"  [FAIL] {len(errors)} client errors, e.g. {errors[:5]}")
    if result["not_sent"]:
        print(f"  [FAIL] {result['not_sent']} scheduled votes never sent (every session stopped)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print_profile(args, "the gunicorn workers during the open loop")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine(), "args": vars(args), "open_loop": {k: v for k, v in result.items()
                                                                   if k != "acknowledged"},
            "stored": stored, "p99_goal_met": goal, "audit": checks, "passed": passed,
        }, indent=2, default=str))
    print("\nAUDIT PASSED" if passed else "\nAUDIT FAILED")
    return 0 if passed else 1


# --------------------------------------------------------------------------------------------------
# audit


def audit(study, acknowledged: list[str]) -> list[tuple[str, bool, str]]:
    from django.db.models import Count, F, Q

    from annotations.models import Assignment, Comparison, Vote
    from ranking.models import RatingState

    checks = []
    votes = Vote.objects.filter(study=study, source=Vote.Source.LIVE)
    stored = list(votes.values_list("assignment__token", flat=True))
    ack = set(acknowledged)
    checks.append(("every acknowledged vote is stored, once", len(ack) == len(acknowledged) and ack <= set(stored),
                   f"{len(acknowledged)} acknowledged, {len(ack)} distinct, {len(ack - set(stored))} missing"))
    checks.append(("every stored vote was acknowledged", set(stored) == ack,
                   f"{len(stored)} stored, {len(set(stored) - ack)} never acknowledged"))
    duplicates = (votes.values("comparison", "annotator").annotate(n=Count("id")).filter(n__gt=1).count())
    checks.append(("no (comparison, annotator) voted twice", duplicates == 0, f"{duplicates} duplicated pairs"))
    comparisons = Comparison.objects.filter(study=study).annotate(stored=Count("votes"))
    over = comparisons.filter(stored__gt=study.votes_per_comparison).count()
    checks.append(("no comparison over its overlap", over == 0,
                   f"{over} comparisons with more than {study.votes_per_comparison} votes"))
    live = Comparison.objects.filter(study=study).annotate(live=Count("votes", filter=Q(votes__source="live")))
    drift = live.exclude(votes_count=F("live")).count()
    checks.append(("votes_count equals the stored live votes", drift == 0, f"{drift} comparisons differ"))
    orphans = Assignment.objects.filter(comparison__study=study, completed_at__isnull=False, vote__isnull=True).count()
    unfinished = votes.filter(assignment__completed_at__isnull=True).count()
    checks.append(("completed assignments and votes match", orphans == 0 and unfinished == 0,
                   f"{orphans} completed without a vote, {unfinished} votes on an open assignment"))
    counted = votes.filter(excluded=False, comparison__is_gold=False).count()
    rated = sum(RatingState.objects.filter(study=study, method=RatingState.Method.ELO)
                .values_list("votes", flat=True))
    checks.append(("every vote moved the Elo state", rated == 2 * counted,
                   f"{rated} rating updates for {counted} votes (2 per vote expected)"))
    live = Assignment.objects.filter(comparison__study=study, completed_at__isnull=True).filter(
        ~Q(served_at=None)).count()
    checks.append(("open leases (informational)", True, f"{live} items on screen at the end"))
    return checks


# --------------------------------------------------------------------------------------------------
# profile summary


CONNECTING = re.compile(r"get_new_connection \(django|init_connection_state \(django")
PROFILE_CATEGORIES = (  # (label, pattern of a frame's file); a sample goes to the first match from its leaf up
    ("psycopg: sending queries, reading rows", r"\(psycopg/"),
    ("Django ORM: building and compiling SQL, making objects", r"\(django/db/"),
    ("templates", r"\(django/template/"),
    ("Redis / Celery clients (rate limit, recompute)", r"\((redis|kombu|celery)/"),
    ("sessions, auth, middleware, request/response", r"\(django/(contrib|middleware|http|core|utils)/|\(whitenoise/"),
    ("gunicorn", r"\(gunicorn/"),
)


def print_profile(args, phase: str) -> None:
    """The py-spy summary of `--profile`, if one was asked for (every benchmark prints it the same way)."""
    if not args.profile:
        return
    what = "Python CPU (GIL holders)" if args.profile_cpu else "wall-clock samples"
    print(f"\nprofile of {phase}, {what} ({args.profile}):")
    try:
        for line in summarise_profile(args.profile):
            print("  " + line)
    except OSError as exc:
        print(f"  no profile: {exc}")


def summarise_profile(path: str, top: int = 20) -> list[str]:
    """Where the request threads' time goes, from py-spy's collapsed stacks: the share waiting on
    PostgreSQL (wall-clock profiles), a breakdown by layer (the leaf-most frame that matches one),
    and the inclusive share of each function of this project."""
    project = re.compile(r"\((annotations|ranking|evalsite|dashboard|api|separability)/")
    categories = [(label, re.compile(pattern)) for label, pattern in PROFILE_CATEGORIES]
    inclusive: Counter = Counter()
    layers: Counter = Counter()
    total = waiting = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "WSGIHandler.__call__" not in stack:
            continue  # idle threads (accept loop, keep-alive poller) are not request time
        n = int(count)
        total += n
        frames = stack.split(";")
        if "Connection.wait (psycopg" in stack:
            waiting += n
        for frame in reversed(frames):
            if CONNECTING.search(stack):
                layers["opening database connections"] += n
                break
            label = next((label for label, pattern in categories if pattern.search(frame)), None)
            if label is None and project.search(frame):
                label = "this project's own code"
            if label is not None:
                layers[label] += n
                break
        else:
            layers["other"] += n
        for frame in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            if project.search(frame):
                inclusive[frame] += n
    if not total:
        return ["no request samples"]
    lines = [f"{total} samples inside requests; {100 * waiting / total:.0f}% of them waiting on PostgreSQL "
             f"(queries and row locks); by layer:"]
    for label, n in layers.most_common():
        lines.append(f"{100 * n / total:5.1f}%  {label}")
    lines.append("inclusive share per function of this project:")
    for frame, n in inclusive.most_common(top):
        lines.append(f"{100 * n / total:5.1f}%  {frame}")
    return lines


# --------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="web-load-"))
    redis_process = gunicorn = worker = None
    database_url = f"{args.pg_url.rstrip('/')}/{args.database}"
    exit_code = 1
    try:
        print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
        create_database(args.pg_url.rstrip("/"), args.database)
        if args.redis_url:
            redis_base = args.redis_url.rstrip("/")
        else:
            redis_port = free_port()
            redis_log = work / "redis.log"
            redis_process = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(work)],
                stdout=redis_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
            redis_base = f"redis://127.0.0.1:{redis_port}"
        env_extra = {
            "DJANGO_SETTINGS_MODULE": "bench.load_settings", "DATABASE_URL": database_url,
            "REDIS_URL": f"{redis_base}/1", "CELERY_BROKER_URL": f"{redis_base}/0", "STATIC_MANIFEST": "0",
            "VOTE_RATE_LIMIT": "1000000/m", "CONN_MAX_AGE": str(args.conn_max_age), "DEBUG": "false",
            "GUNICORN_WORKERS": str(args.workers), "GUNICORN_THREADS": str(args.threads), "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
        }
        os.environ.update(env_extra)
        import django

        django.setup()
        from django.core.management import call_command

        if redis_process is not None:
            import redis

            wait_for(lambda: redis.Redis.from_url(redis_base).ping(), 30, "redis-server", redis_process,
                     work / "redis.log")
        call_command("migrate", verbosity=0, interactive=False)
        study, invite, comparisons = build_study(args.overlap, invite_uses=args.annotators + 10)
        print(f"study {study.slug}: {comparisons} comparisons x overlap {study.votes_per_comparison} = "
              f"{comparisons * study.votes_per_comparison} vote slots", flush=True)
        from django.db import connections

        connections.close_all()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn_log = work / "gunicorn.log"
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "evalsite.wsgi"], cwd=ROOT, env=dict(os.environ), stdout=gunicorn_log.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        import requests

        wait_for(lambda: requests.get(f"{base}/healthz", timeout=5).status_code == 200, 120, "gunicorn", gunicorn,
                 gunicorn_log)
        if not args.no_worker:
            worker_log = work / "worker.log"
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", "default", "--pool", "solo",
                 "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
                 "--hostname", f"web-load-{os.getpid()}@%h"],
                cwd=ROOT, env=dict(os.environ), stdout=worker_log.open("wb"), stderr=subprocess.STDOUT,
                start_new_session=True)
            wait_for(lambda: b"ready." in worker_log.read_bytes(), 120, "celery worker", worker, worker_log)
        # Warm up: every worker process imports its views and templates before anything is timed.
        for _ in range(4 * args.workers):
            requests.get(f"{base}/bench/bare/", timeout=30)
            requests.get(f"{base}/invite/{invite.token}/", timeout=30)

        slug, invite_url = study.slug, f"{base}/invite/{invite.token}/"
        if args.open_loop:
            exit_code = report_open_loop(args, study, base, slug, invite_url, gunicorn.pid)
            return exit_code
        print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread), CONN_MAX_AGE="
              f"{args.conn_max_age}; {args.annotators} clients over {args.client_procs} processes; mode {args.mode}",
              flush=True)
        floor_before = run_phase("bare", args, base, slug, invite_url, args.floor_seconds, gunicorn.pid, 0)
        print(f"floor (before): {floor_before['per_second']:.1f} req/s", flush=True)
        cycles = run_phase("annotator", args, base, slug, invite_url, args.seconds, gunicorn.pid, args.seed,
                           profile_path=args.profile, profile_cpu=args.profile_cpu)
        print(f"annotators: {cycles['per_second']:.1f} cycles/s", flush=True)
        floor_after = run_phase("bare", args, base, slug, invite_url, args.floor_seconds, gunicorn.pid, 0)
        print(f"floor (after): {floor_after['per_second']:.1f} req/s", flush=True)

        floor_rps = (floor_before["count"] + floor_after["count"]) / (2 * args.floor_seconds)
        floor_cpu = (floor_before["server_cpu_s"] + floor_after["server_cpu_s"]) / max(
            1, floor_before["count"] + floor_after["count"])
        cycle_cpu = cycles["server_cpu_s"] / max(1, cycles["count"])
        ratio = cycles["per_second"] / floor_rps if floor_rps else float("nan")
        checks = audit(study, cycles["acknowledged"])
        errors = cycles["errors"] + floor_before["errors"] + floor_after["errors"]
        passed = all(ok for _, ok, _ in checks) and not errors and cycles["threads_reported"] == args.annotators

        print()
        print(f"| measure ({args.annotators} concurrent clients) | value |")
        print("|---|---:|")
        print(f"| annotator cycles/s ({args.seconds:.0f} s, mode {args.mode}) | {cycles['per_second']:.1f} |")
        print(f"| cycle latency p50 / p99 (ms) | {cycles['p50_ms']:.0f} / {cycles['p99_ms']:.0f} |")
        print(f"| bare view requests/s (floor, 2 x {args.floor_seconds:.0f} s) | {floor_rps:.1f} "
              f"({floor_before['per_second']:.1f} before, {floor_after['per_second']:.1f} after) |")
        print(f"| bare view latency p50 / p99 (ms), before | {floor_before['p50_ms']:.0f} / "
              f"{floor_before['p99_ms']:.0f} |")
        print(f"| **ratio: cycles/s / bare requests/s** | **{ratio:.3f}** |")
        print(f"| gunicorn CPU per cycle / per bare request (ms) | {1000 * cycle_cpu:.1f} / {1000 * floor_cpu:.2f} |")
        print(f"| client CPU, annotators' phase (s) | {cycles['client_cpu_s']:.1f} |")
        print(f"| votes acknowledged / stored | {len(cycles['acknowledged'])} / "
              f"{study.votes.filter(source='live').count()} |")
        print(f"| vote POST statuses | {cycles['statuses']} |")
        print(f"| annotators who ran out of items | {cycles['ran_out']} |")
        print()
        print("audit:")
        for name, ok, detail in checks:
            print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
        if errors:
            print(f"  [FAIL] {len(errors)} client errors, e.g. {errors[:5]}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print_profile(args, "the gunicorn workers during the annotators' phase")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": machine(), "args": vars(args), "cycles": {k: v for k, v in cycles.items()
                                                                     if k != "acknowledged"},
                "floor_before": {k: v for k, v in floor_before.items() if k != "acknowledged"},
                "floor_after": {k: v for k, v in floor_after.items() if k != "acknowledged"},
                "floor_rps": floor_rps, "ratio": ratio, "audit": checks, "passed": passed,
            }, indent=2, default=str))
        print("\nAUDIT PASSED" if passed else "\nAUDIT FAILED")
        exit_code = 0 if passed else 1
    finally:
        stop_process(worker)
        stop_process(gunicorn)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        stop_process(redis_process)
        if not args.keep_db:
            try:
                drop_database(args.pg_url.rstrip("/"), args.database)
            except Exception as exc:  # noqa: BLE001
                print(f"could not drop {args.database}: {exc}", file=sys.stderr)
        if exit_code == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
