"""The closed-loop load generator every system of the peers benchmark is driven with: N clients, each
repeating "submit a judgement, receive the next item" with no think time for a fixed window, spread
as threads over a few spawned client processes, all starting at one instant.

It is bench/web_load.py's generator (same processes, barrier, common start and end, records of
(finished, seconds, ok)) with the cycle left to a driver object, so that this site, Label Studio and
Potato are measured by the same code; only the HTTP requests of a cycle differ (bench/peers/drivers.py).
web_load.py keeps its own copy unchanged (its CLI and output are recorded in docs/benchmarks.md).

A driver is a class named "module:Class", built in the client process as Class(target, index, seed),
with `sign_in()` (before the clock starts) and `cycle() -> Cycle`. Each client runs a few warm-up
cycles after signing in and before the clock (`warmup_cycles`): they are stored and go to the audit,
but are not timed, so no system is charged for its lazy imports and first connections.
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import resource
import threading
import time
from dataclasses import dataclass, field

MAX_FAILURES_IN_A_ROW = 20  # a client that keeps failing stops instead of spinning on errors


@dataclass
class Cycle:
    ok: bool  # the judgement was accepted and the next item received
    acknowledged: str | None = None  # key of the judgement the system acknowledged, if it did
    done: bool = False  # the system has nothing more for this client
    error: str = ""


@dataclass
class PhaseResult:
    start: float
    end: float
    records: list = field(default_factory=list)  # (finished, seconds, ok)
    acknowledged: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    ran_out: int = 0
    clients_reported: int = 0
    client_cpu_s: float = 0.0


def _load(driver: str):
    module, _, name = driver.partition(":")
    return getattr(importlib.import_module(module), name)


def _client(driver_cls, target, index, seed, ready, start_box, out, warmup_cycles=0):
    records, acknowledged, errors = [], [], []
    ran_out = False
    try:
        client = driver_cls(target, index, seed)
        client.sign_in()
        # Warm-up, before the clock: each server's first requests pay its lazy imports and first
        # connections (this site: ~1 s per gunicorn worker importing scipy for the recompute task on its
        # first vote). Its judgements are stored and acknowledged like any other, so they go to the audit.
        for _ in range(warmup_cycles):
            try:
                result = client.cycle()
            except Exception as exc:  # noqa: BLE001 - a transport error is a failed cycle
                result = Cycle(ok=False, error=f"transport: {exc!r}")
            if result.acknowledged is not None:
                acknowledged.append(result.acknowledged)
            if result.error:
                errors.append(f"client {index} warm-up: {result.error}")
            if result.done:
                break
    except Exception as exc:  # noqa: BLE001 - reported, and the run then fails its check
        errors.append(f"client {index} sign-in: {exc!r}")
        ready.wait()
        out.append((records, acknowledged, errors, ran_out))
        return
    ready.wait()
    start_box["event"].wait()
    start, end = start_box["start"], start_box["end"]
    while time.time() < start:
        time.sleep(0.001)
    failures = 0
    while time.time() < end:
        began = time.time()
        try:
            result = client.cycle()
        except Exception as exc:  # noqa: BLE001 - a transport error is a failed cycle
            result = Cycle(ok=False, error=f"transport: {exc!r}")
        finished = time.time()
        records.append((finished, finished - began, result.ok))
        if result.acknowledged is not None:
            acknowledged.append(result.acknowledged)
        if result.error:
            errors.append(f"client {index}: {result.error}")
        failures = 0 if result.ok else failures + 1
        if result.done:
            ran_out = True
            break
        if failures >= MAX_FAILURES_IN_A_ROW:
            errors.append(f"client {index}: stopped after {failures} failed cycles in a row")
            break
    close = getattr(client, "close", None)
    if close is not None:
        close()
    out.append((records, acknowledged, errors, ran_out))


def client_process(driver, target, indices, seed_base, to_parent, from_parent, warmup_cycles=0):
    """One client process: a thread per client index; reports through the queues."""
    driver_cls = _load(driver)
    ready = threading.Barrier(len(indices) + 1)
    start_box: dict = {"event": threading.Event()}
    out: list = []
    threads = [threading.Thread(target=_client, daemon=True,
                                args=(driver_cls, target, index, seed_base + index, ready, start_box, out,
                                      warmup_cycles))
               for index in indices]
    for thread in threads:
        thread.start()
    ready.wait()
    to_parent.put("ready")
    start_box["start"], start_box["end"] = from_parent.get()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start_box["event"].set()
    for thread in threads:
        thread.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    to_parent.put({"threads": out, "cpu": cpu})


def run_closed_loop(driver: str, target: dict, clients: int, seconds: float, processes: int = 2,
                    seed: int = 0, on_start=None, warmup_cycles: int = 0) -> PhaseResult:
    """Sign `clients` clients in, let each run `warmup_cycles` cycles (not timed, acknowledgements kept),
    then run them for `seconds` from one common instant; returns every record and acknowledgement.
    `on_start(start, end)` is called just before the clock starts (e.g. to read the server's CPU time)."""
    ctx = mp.get_context("spawn")
    procs = max(1, min(processes, clients))
    shares = [list(range(i, clients, procs)) for i in range(procs)]
    channels = []
    for share in shares:
        to_parent, from_parent = ctx.Queue(), ctx.Queue()
        process = ctx.Process(target=client_process, daemon=True,
                              args=(driver, target, share, seed, to_parent, from_parent, warmup_cycles))
        process.start()
        channels.append((process, to_parent, from_parent))
    for _, to_parent, _ in channels:
        if to_parent.get(timeout=600) != "ready":
            raise RuntimeError("a client process failed to start")
    start = time.time() + 0.5
    end = start + seconds
    if on_start is not None:
        on_start(start, end)
    for _, _, from_parent in channels:
        from_parent.put((start, end))
    reports = [to_parent.get(timeout=seconds + 600) for _, to_parent, _ in channels]
    for process, _, _ in channels:
        process.join(30)
    result = PhaseResult(start=start, end=end)
    for report in reports:
        result.client_cpu_s += report["cpu"]
        for records, acknowledged, errors, ran_out in report["threads"]:
            result.records.extend(records)
            result.acknowledged.extend(acknowledged)
            result.errors.extend(errors)
            result.ran_out += ran_out
            result.clients_reported += 1
    return result
