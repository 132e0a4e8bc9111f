"""The three systems of the peers benchmark, each prepared, served, driven and audited the same way:
prepare its data (the same pairs of texts for all three), start its server, run the shared closed loop
(bench/peers/loop.py) with its client (bench/peers/drivers.py), stop it, then reconcile what it
acknowledged with what it stored (bench/peers/summary.py).

- This site: as bench/web_load.py runs it (its own database, gunicorn with gunicorn.conf.py, a Celery
  worker on the `default` queue, the study of the separability paper's texts: 4,500 comparisons,
  overlap 3), stored = its live votes' assignment tokens; web_load's full audit is reported too.
- Label Studio 1.23.2 in its own virtualenv, on the same PostgreSQL, under gunicorn with the site's
  2 workers x 4 threads; a project whose tasks are the study's comparisons (two <Text> and one
  <Choices>, maximum_annotations = overlap), created and imported through its API; stored = the
  annotation rows of the project in its database.
- Potato 2.12.1 in its own virtualenv, under gunicorn with 1 worker (its state lives in one process)
  x 8 threads; items are the same comparisons, `assignment_strategy: random` with
  `num_annotators_per_item` = overlap; stored = the answers in each user's `user_state.json`, read after
  the server has stopped.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.peers.loop import PhaseResult, run_closed_loop
from bench.peers.summary import Reconciliation, SystemResult, reconcile, summarise_cycles
from bench.web_load import ROOT, build_study, create_database, drop_database, server_cpu, stop_process, wait_for

PEERS = Path(__file__).resolve().parent
LS_CONFIG = """<View>
  <Text name="a" value="$a"/>
  <Text name="b" value="$b"/>
  <Choices name="choice" toName="a" choice="single" showInLine="true">
    <Choice value="A"/>
    <Choice value="B"/>
    <Choice value="Tie"/>
  </Choices>
</View>"""
# Label Studio's settings, unchanged but for its RQ queues: they point at a closed port, so it finds no
# Redis and runs its jobs in the request (as `label-studio start` does without Redis) instead of
# queueing them on someone else's Redis db 0 with no worker to run them. The base settings are
# imported first because its settings module reads django.conf.settings while it is being imported.
LS_SETTINGS = """from label_studio.core.settings.base import *  # noqa
from label_studio.core.settings.label_studio import *  # noqa

for _queue in RQ_QUEUES.values():
    _queue["PORT"] = {closed_port}
"""


@dataclass
class Options:
    clients: int
    seconds: float
    overlap: int
    pg_url: str
    redis_url: str  # base URL; db numbers given below
    broker_db: int
    cache_db: int
    ports: dict
    work: Path
    ls_venv: Path
    potato_venv: Path
    client_procs: int = 2
    seed: int = 0
    keep_db: bool = False
    profile: str = ""  # py-spy output file for this site's gunicorn workers (empty: no profile)
    profile_cpu: bool = False  # only threads holding the GIL
    site_settings: str = "evalsite.settings"  # DJANGO_SETTINGS_MODULE of this site (to try a settings change)
    warmup_cycles: int = 3  # per client, before each system's timed phase (stored and audited, not timed)


@dataclass
class Run:
    result: SystemResult
    server_cpu_ms_per_cycle: float
    client_cpu_ms_per_cycle: float
    errors: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # (name, ok, detail) beyond acknowledged = stored
    clients_reported: int = 0
    ran_out: int = 0


def _start(command: list[str], env: dict, log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _http_ok(url: str) -> bool:
    import requests

    return requests.get(url, timeout=5).status_code == 200


def _drive(name: str, driver: str, target: dict, opts: Options, server: subprocess.Popen,
           profile: str = "") -> tuple[PhaseResult, float]:
    cpu: dict = {}

    def on_start(start, end):
        cpu["before"] = server_cpu(server.pid)
        if profile:  # py-spy over the server's processes for the timed window (as web_load --profile)
            cpu["profiler"] = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.pid), "--subprocesses",
                 "--rate", "100", "--format", "raw", "--duration", str(int(opts.seconds)), "--output", profile,
                 "--nonblocking", *(["--gil"] if opts.profile_cpu else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    phase = run_closed_loop(driver, target, opts.clients, opts.seconds, opts.client_procs, opts.seed,
                            on_start=on_start, warmup_cycles=opts.warmup_cycles)
    if "profiler" in cpu:
        try:
            cpu["profiler"].wait(60)
        except subprocess.TimeoutExpired:
            cpu["profiler"].kill()
    # CPU of the server's process tree over the whole phase (cycles still running at the end included).
    spent = server_cpu(server.pid) - cpu["before"]
    print(f"{name}: {len(phase.records)} cycles recorded, {len(phase.acknowledged)} acknowledged", flush=True)
    return phase, spent


def _run(name: str, phase: PhaseResult, cpu_s: float, audit: Reconciliation, opts: Options, checks=(), note=""):
    cycles = summarise_cycles(phase.records, phase.start, phase.end)
    result = SystemResult(name, cycles, audit, note)
    done = max(1, len([r for r in phase.records if r[2]]))
    return Run(result, 1000 * cpu_s / done, 1000 * phase.client_cpu_s / done, phase.errors, list(checks),
               phase.clients_reported, phase.ran_out)


# --------------------------------------------------------------------------------------------------
# this site


def run_site(opts: Options) -> tuple[Run, list[tuple[int, str, str]]]:
    """Runs this site; returns its run and the study's pairs (comparison id, text A, text B)."""
    database = "peers_site"
    create_database(opts.pg_url, database)
    env_extra = {
        "DJANGO_SETTINGS_MODULE": opts.site_settings, "DATABASE_URL": f"{opts.pg_url}/{database}",
        "REDIS_URL": f"{opts.redis_url}/{opts.cache_db}", "CELERY_BROKER_URL": f"{opts.redis_url}/{opts.broker_db}",
        "STATIC_MANIFEST": "0", "VOTE_RATE_LIMIT": "1000000/m", "CONN_MAX_AGE": "60", "DEBUG": "false",
        "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
    }
    os.environ.update(env_extra)
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import connections

    from annotations.models import Comparison, Vote
    from bench.web_load import audit

    for db in (opts.broker_db, opts.cache_db):  # our own Redis dbs: start from nothing
        redis.Redis.from_url(f"{opts.redis_url}/{db}").flushdb()
    call_command("migrate", verbosity=0, interactive=False)
    study, invite, comparisons = build_study(opts.overlap, invite_uses=opts.clients + 10)
    pairs = list(Comparison.objects.filter(study=study).order_by("id")
                 .values_list("id", "generation_a__text", "generation_b__text"))
    print(f"site: study of {comparisons} comparisons x overlap {opts.overlap}", flush=True)
    connections.close_all()
    port = opts.ports["site"]
    base = f"http://127.0.0.1:{port}"
    gunicorn = worker = None
    try:
        gunicorn = _start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                           "evalsite.wsgi"], dict(os.environ), opts.work / "site-gunicorn.log")
        wait_for(lambda: _http_ok(f"{base}/healthz"), 120, "site gunicorn", gunicorn, opts.work / "site-gunicorn.log")
        worker_log = opts.work / "site-worker.log"
        worker = _start([sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", "default", "--pool", "solo",
                         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
                         "--hostname", f"peers-{os.getpid()}@%h"], dict(os.environ), worker_log)
        wait_for(lambda: b"ready." in worker_log.read_bytes(), 120, "celery worker", worker, worker_log)
        target = {"base": base, "slug": study.slug, "invite_url": f"{base}/invite/{invite.token}/"}
        phase, cpu_s = _drive("site", "bench.peers.drivers:SiteClient", target, opts, gunicorn, opts.profile)
    finally:
        stop_process(worker)
        stop_process(gunicorn)
    stored = list(Vote.objects.filter(study=study, source=Vote.Source.LIVE).values_list("assignment__token", flat=True))
    checks = audit(study, phase.acknowledged)
    connections.close_all()
    if not opts.keep_db:
        drop_database(opts.pg_url, database)
    run = _run("this site", phase, cpu_s, reconcile(phase.acknowledged, stored), opts, checks)
    return run, pairs


# --------------------------------------------------------------------------------------------------
# Label Studio


def _ls_env(opts: Options, database: str, data_dir: Path) -> dict:
    package = next((opts.ls_venv / "lib").glob("python3*/site-packages/label_studio"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))}
    env.update({
        "PYTHONPATH": f"{opts.work}:{package}", "DJANGO_SETTINGS_MODULE": "peers_ls_settings", "DJANGO_DB": "default",
        "POSTGRE_NAME": database, "POSTGRE_USER": "postgres", "POSTGRE_PASSWORD": "", "POSTGRE_HOST": "127.0.0.1",
        "POSTGRE_PORT": "5432", "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "SENTRY_DSN": "", "SENTRY_RATE": "0",
        "FRONTEND_SENTRY_DSN": "", "DEBUG": "false", "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
        "LOG_LEVEL": "WARNING", "SECRET_KEY": "peers-benchmark-not-secret", "PYTHONUNBUFFERED": "1",
    })
    return env


def _ls_database(opts: Options, database: str):
    import psycopg

    return psycopg.connect(f"{opts.pg_url}/{database}")


def run_label_studio(opts: Options, pairs: list[tuple[int, str, str]]) -> Run:
    import requests

    database = "peers_ls"
    create_database(opts.pg_url, database)
    data_dir = opts.work / "ls-data"
    data_dir.mkdir(exist_ok=True)
    (opts.work / "peers_ls_settings.py").write_text(LS_SETTINGS.format(closed_port=opts.ports["closed"]))
    env = _ls_env(opts, database, data_dir)
    python = str(opts.ls_venv / "bin" / "python")
    started = time.monotonic()
    subprocess.run([python, "-m", "django", "migrate", "-v0"], env=env, check=True, cwd=opts.work,
                   stdout=(opts.work / "ls-migrate.log").open("wb"), stderr=subprocess.STDOUT)
    made = subprocess.run([python, str(PEERS / "ls_setup.py"), str(opts.clients)], env=env, check=True,
                          cwd=opts.work, capture_output=True, text=True)
    tokens = json.loads(made.stdout.strip().splitlines()[-1])
    print(f"label studio: migrated and {opts.clients} annotators made in {time.monotonic() - started:.0f} s",
          flush=True)
    port = opts.ports["label_studio"]
    base = f"http://127.0.0.1:{port}"
    log = opts.work / "ls-gunicorn.log"
    gunicorn = _start([str(opts.ls_venv / "bin" / "gunicorn"), "--no-control-socket", "--workers", "2", "--threads",
                       "4", "--worker-class", "gthread", "--timeout", "120", "--bind", f"127.0.0.1:{port}",
                       "label_studio.core.wsgi:application"], env, log, cwd=opts.work)
    try:
        wait_for(lambda: _http_ok(f"{base}/health/"), 180, "label studio gunicorn", gunicorn, log)
        owner = requests.Session()
        owner.headers["Authorization"] = f"Token {tokens['owner']}"
        project = owner.post(f"{base}/api/projects/", timeout=120, json={
            "title": "Peers benchmark", "label_config": LS_CONFIG, "maximum_annotations": opts.overlap})
        project.raise_for_status()
        project_id = project.json()["id"]
        tasks = [{"data": {"a": a, "b": b, "comparison": cid}} for cid, a, b in pairs]
        imported = owner.post(f"{base}/api/projects/{project_id}/import", json=tasks, timeout=600)
        imported.raise_for_status()
        print(f"label studio: project {project_id}, {imported.json().get('task_count')} tasks imported", flush=True)
        for _ in range(8):  # warm both workers
            owner.get(f"{base}/api/projects/{project_id}/", timeout=60)
        target = {"base": base, "project": project_id, "tokens": tokens["annotators"]}
        phase, cpu_s = _drive("label studio", "bench.peers.drivers:LabelStudioClient", target, opts, gunicorn)
    finally:
        stop_process(gunicorn)
    with _ls_database(opts, database) as conn:
        rows = conn.execute("SELECT id, task_id, completed_by_id FROM task_completion WHERE project_id = %s",
                            (project_id,)).fetchall()
        drift = conn.execute(
            "SELECT count(*) FROM task t WHERE t.project_id = %s AND t.total_annotations <> "
            "(SELECT count(*) FROM task_completion c WHERE c.task_id = t.id AND NOT c.was_cancelled)",
            (project_id,)).fetchone()[0]
    per_task = Counter(task for _, task, _ in rows)
    per_pair = Counter((task, user) for _, task, user in rows)
    checks = [
        ("no (task, annotator) annotated twice", all(n == 1 for n in per_pair.values()),
         f"{sum(1 for n in per_pair.values() if n > 1)} doubled pairs"),
        ("no task over maximum_annotations", all(n <= opts.overlap for n in per_task.values()),
         f"{sum(1 for n in per_task.values() if n > opts.overlap)} tasks over {opts.overlap}"),
        ("total_annotations counter equals the stored annotations (informational)", True, f"{drift} tasks differ"),
    ]
    if not opts.keep_db:
        drop_database(opts.pg_url, database)
    return _run("Label Studio 1.23.2", phase, cpu_s, reconcile(phase.acknowledged, [str(r[0]) for r in rows]),
                opts, checks)


# --------------------------------------------------------------------------------------------------
# Potato


POTATO_CONFIG = """annotation_task_name: Peers benchmark
task_dir: {task_dir}
output_annotation_dir: {task_dir}/annotation_output
output_annotation_format: json
data_files:
  - {task_dir}/pairs.jsonl
item_properties:
  id_key: id
  text_key: text
user_config:
  allow_all_users: true
  users: []
require_password: false
assignment_strategy: random
num_annotators_per_item: {overlap}
annotation_schemes:
  - annotation_type: pairwise
    name: preference
    description: Which summary is better?
    items_key: text
    allow_tie: true
site_dir: default
"""


def potato_stored(output_dir: Path) -> list[str]:
    """"user/item" for every answer in the users' state files (what Potato would export)."""
    stored = []
    for state_file in sorted(output_dir.glob("*/user_state.json")):
        state = json.loads(state_file.read_text())
        for item, labels in state.get("instance_id_to_label_to_value", {}).items():
            if any(value not in (None, "") for _, value in labels):
                stored.append(f"{state['user_id']}/{item}")
    return stored


def run_potato(opts: Options, pairs: list[tuple[int, str, str]]) -> Run:
    task_dir = opts.work / "potato"
    task_dir.mkdir(exist_ok=True)
    with (task_dir / "pairs.jsonl").open("w") as out:
        for cid, a, b in pairs:
            out.write(json.dumps({"id": f"c{cid}", "text": [a, b]}) + "\n")
    config = task_dir / "config.yaml"
    config.write_text(POTATO_CONFIG.format(task_dir=task_dir, overlap=opts.overlap))
    port = opts.ports["potato"]
    base = f"http://127.0.0.1:{port}"
    log = opts.work / "potato-gunicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))}
    gunicorn = _start([str(opts.potato_venv / "bin" / "gunicorn"), "--no-control-socket", "--workers", "1",
                       "--threads", "8", "--worker-class", "gthread", "--timeout", "120", "--bind",
                       f"127.0.0.1:{port}", f"potato.flask_server:create_app('{config}')"], env, log, cwd=task_dir)
    try:
        wait_for(lambda: _http_ok(f"{base}/"), 180, "potato gunicorn", gunicorn, log)
        print(f"potato: {len(pairs)} items served", flush=True)
        phase, cpu_s = _drive("potato", "bench.peers.drivers:PotatoClient", {"base": base}, opts, gunicorn)
    finally:
        stop_process(gunicorn)  # SIGTERM: a graceful stop, its state files written
    stored = potato_stored(task_dir / "annotation_output")
    per_item = Counter(key.split("/", 1)[1] for key in stored)
    checks = [("no item over num_annotators_per_item", all(n <= opts.overlap for n in per_item.values()),
               f"{sum(1 for n in per_item.values() if n > opts.overlap)} items over {opts.overlap}")]
    return _run("Potato 2.12.1", phase, cpu_s, reconcile(phase.acknowledged, stored), opts, checks)
