"""Peers benchmark: this site, Label Studio and Potato driven by one closed-loop load generator on
the same pairs of texts in the same run, each audited (acknowledged = stored); prints cycles/s,
p50/p99, acknowledged, stored, lost and failed for each, and the ratios this site / each peer.

    make bench-peers                                   # installs the peers' virtualenvs, then runs this
    .venv/bin/python -m bench.peers --clients 20 --seconds 30
    .venv/bin/python -m bench.peers --systems site,potato --json /tmp/peers.json

Needs PostgreSQL (`--pg-url`) and Redis (`--redis-url`, dbs `--broker-db` and `--cache-db` are
flushed), and the peers' virtualenvs from `make bench-peers` (bench/peers/.venvs/, git-ignored).
What each system runs and how it is audited: bench/peers/systems.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.peers.summary import format_table, ratios_against
from bench.peers.systems import PEERS, Options, run_label_studio, run_potato, run_site
from bench.web_load import machine, print_profile

SYSTEMS = ("site", "label-studio", "potato")
OURS = "this site"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients per system (20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each system's timed phase (30)")
    parser.add_argument("--overlap", type=int, default=3, help="judgements per pair (3)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes the clients are spread over")
    parser.add_argument("--pg-url", default=os.environ.get("LOAD_PG_URL", "postgres://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server, without database name (databases peers_site, peers_ls)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="Redis server, without db number")
    parser.add_argument("--broker-db", type=int, default=4, help="Redis db of this site's Celery broker (4)")
    parser.add_argument("--cache-db", type=int, default=5, help="Redis db of this site's cache (5)")
    parser.add_argument("--port-base", type=int, default=8400, help="ports used: base+10, +20, +30, +99 (closed)")
    parser.add_argument("--ls-venv", default=str(PEERS / ".venvs" / "label-studio"))
    parser.add_argument("--potato-venv", default=str(PEERS / ".venvs" / "potato"))
    parser.add_argument("--keep-db", action="store_true", help="leave the databases for inspection")
    parser.add_argument("--profile", default="",
                        help="record this site's gunicorn workers with py-spy during its phase into this file "
                             "and print where the time goes (bench/web_load.py's summary)")
    parser.add_argument("--profile-cpu", action="store_true", help="with --profile: only threads holding the GIL")
    parser.add_argument("--site-settings", default="evalsite.settings",
                        help="DJANGO_SETTINGS_MODULE of this site (default: the deployed evalsite.settings)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup-cycles", type=int, default=3,
                        help="cycles per client before each system's timed phase: stored and audited, not timed "
                             "(first requests pay lazy imports and first connections); 0 for none (3)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {', '.join(unknown)} (choose from {', '.join(SYSTEMS)})")
    if ("label-studio" in chosen or "potato" in chosen) and "site" not in chosen:
        parser.error("--systems: the peers are given this site's pairs of texts, so 'site' must be included")
    for name, venv in (("label-studio", args.ls_venv), ("potato", args.potato_venv)):
        if name in chosen and not (Path(venv) / "bin" / "gunicorn").exists():
            parser.error(f"no {name} virtualenv at {venv}: run `make bench-peers-install` first")
    args.chosen = chosen
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="peers-"))
    opts = Options(
        clients=args.clients, seconds=args.seconds, overlap=args.overlap, pg_url=args.pg_url.rstrip("/"),
        redis_url=args.redis_url.rstrip("/"), broker_db=args.broker_db, cache_db=args.cache_db,
        ports={"site": args.port_base + 10, "label_studio": args.port_base + 20, "potato": args.port_base + 30,
               "closed": args.port_base + 99},
        work=work, ls_venv=Path(args.ls_venv), potato_venv=Path(args.potato_venv), client_procs=args.client_procs,
        seed=args.seed, keep_db=args.keep_db, profile=args.profile, profile_cpu=args.profile_cpu,
        site_settings=args.site_settings, warmup_cycles=args.warmup_cycles)
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}; {args.clients} clients, "
          f"{args.seconds:.0f} s per system after {args.warmup_cycles} warm-up cycles per client; logs in {work}",
          flush=True)
    runs = []
    site, pairs = run_site(opts)
    runs.append(site)
    if "label-studio" in args.chosen:
        runs.append(run_label_studio(opts, pairs))
    if "potato" in args.chosen:
        runs.append(run_potato(opts, pairs))

    results = [run.result for run in runs]
    print()
    print(format_table(results, OURS))
    print()
    passed = True
    for run in runs:
        audit = run.result.audit
        ok = audit.passed and run.clients_reported == args.clients
        print(f"{run.result.system}: CPU per cycle {run.server_cpu_ms_per_cycle:.1f} ms in the server, "
              f"{run.client_cpu_ms_per_cycle:.1f} ms in the clients; "
              f"{audit.unacknowledged} stored but not acknowledged, {audit.doubled} doubled; "
              f"{run.clients_reported} clients reported, {run.ran_out} ran out of items")
        print(f"  [{'ok' if ok else 'FAIL'}] acknowledged = stored ({audit.lost} lost)")
        for name, check_ok, detail in run.checks:
            print(f"  [{'ok' if check_ok else 'FAIL'}] {name}: {detail}")
        if run.errors:
            print(f"  {len(run.errors)} client errors, e.g. {run.errors[:3]}")
        if run.result.system == OURS:
            passed = ok and all(check_ok for _, check_ok, _ in run.checks)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print_profile(args, "this site's gunicorn workers during its phase")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine(), "args": {k: v for k, v in vars(args).items()},
            "results": [dict(run.result.as_dict(), server_cpu_ms_per_cycle=run.server_cpu_ms_per_cycle,
                             client_cpu_ms_per_cycle=run.client_cpu_ms_per_cycle,
                             checks=run.checks, errors=run.errors[:50], clients_reported=run.clients_reported)
                        for run in runs],
            "ratios": ratios_against(results, OURS),
        }, indent=2, default=str))
    print("\nTHIS SITE'S AUDIT PASSED" if passed else "\nTHIS SITE'S AUDIT FAILED")
    if passed and not any(run.errors for run in runs):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}", file=sys.stderr)  # a failed audit or client errors: look there
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
