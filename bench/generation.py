"""Benchmark of sampling through the site: what its client costs per request next to the openai SDK called
directly in a loop on the same server, and whether an endpoint's limits hold (requests in flight, requests
per minute), against a real `transformers serve` started here (bench.model_server: a random one-layer model
on CPU, so the server's time per request is small and the client's share of it as large as it gets).

    .venv/bin/python bench/generation.py                      # about 3 minutes
    .venv/bin/python bench/generation.py --requests 60 --rpm 0   # quicker: no per-minute window
    .venv/bin/python bench/generation.py --redis-url redis://127.0.0.1:6379/12   # limits kept in Redis
    .venv/bin/python bench/generation.py --database-url postgres://postgres@127.0.0.1:5432/sepeval_h15bench
    .venv/bin/python bench/generation.py --json               # the results as one JSON object

Every comparison runs both sides in the same run on the same requests (same prompts, same seeds, same
parameters), interleaved so that a busy machine slows both alike:

1. Client overhead, one request at a time: the peer is the openai SDK called directly (one `openai.OpenAI`,
   `chat.completions.create(stream=True)` with the parameters the site sends, the stream consumed and its
   text joined); the site's side is what a chunk does per sample (`services.run_chunk`'s `ask`): the
   prompt rendered, a `SampleRequest`, `EndpointLimiter.slot(...)`, `OpenAIClient(spec).sample(...)`. The
   two alternate request by request (which goes first alternates too). Median and p90 latency per request,
   the client process's CPU time per request, and the ratio site / SDK of the medians (goal <= 1.1).
2. The whole chunk path with the database (unless --no-db): Django on a fresh SQLite file (or
   --database-url), a prompt dataset of --chunk-requests instances (50), one endpoint per run, `services.start_run`
   then `services.run_chunk` for every chunk in this process (what the workers do, storing each sample
   with its provenance), against the SDK doing the same requests with the same concurrency; runs in the
   order SDK, site, site, SDK, twice; the ratio of the total times (it includes the database writes).
3. Requests in flight: an endpoint with max_concurrency L (--limits, 2 and 4), 3L threads asking through
   the site's path (several chunks of one endpoint at once), or with --redis-url two processes of 3L/2
   threads each sharing the limit through Redis, as two Celery workers would. `FaultProxy(failures=0)` in
   front of the server counts the requests it holds (the server's side); the limiter's own count is
   sampled every 5 ms. Max and time-weighted mean in flight vs L (max must never exceed it: exit status 1), and the
   throughput next to L threads without a limiter (the most L requests at a time can give); --limit-requests
   (100) per run, in the order limited, free, free, limited.
4. Requests per minute (unless --rpm 0): an endpoint with requests_per_minute R, 1.5 R requests from 8
   threads; the most requests the limiter granted in any 60 s (must be <= R: the exit status says so),
   the most the server received in any 60 s (more than R when requests granted together reach the server
   at different times: the grant comes before the wait for a concurrency slot), and when request R + 1
   arrived (the moving window lets it go 60 s after the first). This part alone takes a minute.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.web_load import machine, percentile  # noqa: E402 - after the path setup
from generation.clients import EndpointSpec, OpenAIClient, SampleRequest  # noqa: E402
from generation.limiter import EndpointLimiter, Limits  # noqa: E402
from generation.prompts import DEFAULT_PROMPT_TEMPLATE, render_prompt  # noqa: E402

OVERHEAD_GOAL = 1.1  # issue 15: site / SDK per request
TIMEOUT_SECONDS, MAX_RETRIES = 60.0, 1
# The limiter's grants are noted just after `limits` stores them: two notes 60 s apart may be a few ms
# closer than the stored hits, so its own count is taken over 60 s less this.
HIT_TOLERANCE_SECONDS = 0.05


def prompt_inputs(n: int) -> list[str]:
    """The instances' inputs, as tests/factories.make_prompt_dataset writes them."""
    return [f"Write a line about the number {i}." for i in range(n)]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Count, median and p90 (nearest rank) in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "median_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90)}


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def max_concurrent(spans: Sequence[tuple[float, float]]) -> int:
    """The most (start, end) spans open at one instant; a span ending when another starts does not overlap it."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def mean_concurrent(spans: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Spans open on average over [start, end] (each weighted by its time inside it); NaN for no window."""
    if end <= start:
        return float("nan")
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in spans) / (end - start)


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most times in any half-open window (t - window, t], as a moving-window rate limit counts them."""
    ordered = sorted(times)
    best = first = 0
    for i, t in enumerate(ordered):
        while ordered[first] <= t - window:
            first += 1
        best = max(best, i - first + 1)
    return best


def bench_spec(base_url: str, model: str, max_concurrency: int = 4, requests_per_minute: int = 0) -> EndpointSpec:
    return EndpointSpec(name=f"bench-{uuid.uuid4().hex[:10]}", kind="openai", model=model, base_url=base_url,
                        max_concurrency=max_concurrency, requests_per_minute=requests_per_minute,
                        timeout_seconds=TIMEOUT_SECONDS, max_retries=MAX_RETRIES)


# ------------------------------------------------------------------------------------------------------
# the two sides


class SdkLoop:
    """The peer: the openai SDK called directly, with the parameters the site sends."""

    def __init__(self, base_url: str, model: str):
        import openai

        self.model = model
        self.client = openai.OpenAI(base_url=base_url, api_key="EMPTY", timeout=TIMEOUT_SECONDS,
                                    max_retries=MAX_RETRIES)

    def sample(self, prompt: str, seed: int | None, max_tokens: int) -> str:
        params: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                                  "temperature": 1.0, "top_p": 1.0, "max_tokens": max_tokens, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if seed is not None:
            params["seed"] = seed
        parts = []
        for chunk in self.client.chat.completions.create(**params):
            for choice in chunk.choices or ():
                if choice.delta and choice.delta.content:
                    parts.append(choice.delta.content)
        return "".join(parts)


class SitePath:
    """What a chunk does per sample (services.run_chunk's `ask`), without the database around it."""

    def __init__(self, spec: EndpointSpec, limiter: EndpointLimiter):
        self.spec, self.limiter, self.limits = spec, limiter, Limits.of(spec)
        self.client = OpenAIClient(spec)

    def sample(self, input_text: str, seed: int | None, max_tokens: int) -> str:
        request = SampleRequest(prompt=render_prompt(DEFAULT_PROMPT_TEMPLATE, input_text), max_tokens=max_tokens,
                                seed=seed)
        with self.limiter.slot(self.limits, tokens=request.estimated_tokens()):
            return self.client.sample(request).text


def _timed(call: Callable[[int], str], i: int) -> tuple[float, float]:
    """Wall and CPU seconds (of this process: the server is another one) of one request."""
    wall, cpu = time.perf_counter(), time.process_time()
    text = call(i)
    if not text:
        raise RuntimeError("the server answered an empty text")
    return time.perf_counter() - wall, time.process_time() - cpu


def client_overhead(base_url: str, model: str, n: int, max_tokens: int, redis_url: str, warmup: int = 10) -> dict:
    """Part 1: n requests one at a time through each side, alternating request by request."""
    sdk = SdkLoop(base_url, model)
    site = SitePath(bench_spec(base_url, model), EndpointLimiter(redis_url))
    inputs = prompt_inputs(n)
    sides: dict[str, Callable[[int], str]] = {
        "sdk": lambda i: sdk.sample(render_prompt(DEFAULT_PROMPT_TEMPLATE, inputs[i]), i, max_tokens),
        "site": lambda i: site.sample(inputs[i], i, max_tokens)}
    for i in range(min(warmup, n)):
        for side in sides.values():
            side(i)
    wall: dict[str, list[float]] = {"sdk": [], "site": []}
    cpu: dict[str, list[float]] = {"sdk": [], "site": []}
    for i in range(n):
        for name in (("sdk", "site") if i % 2 == 0 else ("site", "sdk")):
            w, c = _timed(sides[name], i)
            wall[name].append(w)
            cpu[name].append(c)
    out: dict[str, Any] = {"requests": n, "max_tokens": max_tokens, "limiter": "redis" if redis_url else "embedded"}
    for name in sides:
        out[name] = {**latency_summary(wall[name]), "cpu_ms": statistics.fmean(cpu[name]) * 1000}
    out["ratio_median"] = ratio(out["site"]["median_ms"], out["sdk"]["median_ms"])
    out["ratio_p90"] = ratio(out["site"]["p90_ms"], out["sdk"]["p90_ms"])
    out["ratio_cpu"] = ratio(out["site"]["cpu_ms"], out["sdk"]["cpu_ms"])
    out["steps_us"] = site_steps(base_url, model, redis_url)
    return out


def site_steps(base_url: str, model: str, redis_url: str, repeat: int = 2000) -> dict[str, float]:
    """What the site adds per sample, step by step, in microseconds (no request sent)."""
    spec = bench_spec(base_url, model)
    limiter = EndpointLimiter(redis_url)
    limits = Limits.of(spec)
    client = OpenAIClient(spec)
    request = SampleRequest(prompt="Write a line about the number 1.", max_tokens=4, seed=1)

    def per_call(call: Callable[[], object], times: int = repeat) -> float:
        started = time.perf_counter()
        for _ in range(times):
            call()
        return (time.perf_counter() - started) / times * 1e6

    def slot() -> None:
        with limiter.slot(limits, tokens=request.estimated_tokens()):
            pass

    return {"render_prompt_and_request": per_call(lambda: SampleRequest(
                prompt=render_prompt(DEFAULT_PROMPT_TEMPLATE, "Write a line."), max_tokens=4, seed=1)),
            "request_params": per_call(lambda: client.request_params(request)),
            "limiter_slot": per_call(slot, repeat if not redis_url else 500),
            "openai_client_construction": per_call(lambda: OpenAIClient(spec), 20)}


# ------------------------------------------------------------------------------------------------------
# part 2: the chunk path with the database


def setup_django(database_url: str, redis_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalsite.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_BROKER_URL"] = ""  # eager: nothing is queued here, the chunks are run in this process
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # not a line per request from the HTTP library (both sides)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def chunk_path(base_url: str, model: str, n: int, max_tokens: int, concurrency: int, rounds: int = 2) -> dict:
    """Part 2: a run of n samples (k = 1) through start_run + run_chunk, against the SDK on the same requests."""
    from annotations.models import Dataset, Instance, System
    from generation import services
    from generation.models import GenerationRun, ModelEndpoint

    dataset = Dataset.objects.create(slug=f"bench-prompts-{uuid.uuid4().hex[:8]}")
    inputs = prompt_inputs(n)
    Instance.objects.bulk_create(Instance(dataset=dataset, external_id=f"p{i}", input=text)
                                 for i, text in enumerate(inputs))
    run_settings = services.RunSettings(k=1, max_tokens=max_tokens, seed=0, chain_separability=False)

    def site() -> float:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        system = System.objects.create(name=name)
        ModelEndpoint.objects.create(name=name, system=system, base_url=base_url, model=model,
                                     max_concurrency=concurrency, timeout_seconds=TIMEOUT_SECONDS,
                                     max_retries=MAX_RETRIES)
        started = time.perf_counter()
        run, chunks = services.start_run(dataset, [system], run_settings)
        for chunk in chunks:
            services.run_chunk(run.pk, chunk.index, chunk.system_id, chunk.instance_ids)
        elapsed = time.perf_counter() - started
        run.refresh_from_db()
        if run.status != GenerationRun.Status.DONE or run.done != n:
            raise RuntimeError(f"run {run.pk} ended {run.status} with {run.done}/{n} samples: {run.error}")
        return elapsed

    def sdk() -> float:
        client = SdkLoop(base_url, model)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:  # seed_for: seed + sample index 0
            texts = list(pool.map(lambda text: client.sample(render_prompt(DEFAULT_PROMPT_TEMPLATE, text), 0,
                                                             max_tokens), inputs))
        if not all(texts):
            raise RuntimeError("the server answered an empty text")
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"sdk": [], "site": []}
    for name in ("sdk", "site", "site", "sdk") * rounds:
        times[name].append((sdk if name == "sdk" else site)())
    out: dict[str, Any] = {"requests": n, "concurrency": concurrency,
                           "chunks": math.ceil(n / _chunk_instances())}
    for name, values in times.items():
        out[name] = {"seconds": values, "per_request_ms": sum(values) / len(values) / n * 1000}
    out["ratio"] = ratio(sum(times["site"]), sum(times["sdk"]))
    return out


def _chunk_instances() -> int:
    from django.conf import settings

    return int(settings.GENERATION_CHUNK_INSTANCES)


# ------------------------------------------------------------------------------------------------------
# parts 3 and 4: the limits


def _drain(site: SitePath | None, client: OpenAIClient, jobs: queue.Queue, max_tokens: int, threads: int,
           latencies: list[float]) -> None:
    """`threads` threads take (input, seed) jobs until none is left, through the site's path (or, without a
    site, straight through the client: no limiter)."""
    def worker() -> None:
        while True:
            try:
                text, seed = jobs.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            if site is not None:
                site.sample(text, seed, max_tokens)
            else:
                client.sample(SampleRequest(prompt=text, max_tokens=max_tokens, seed=seed))
            latencies.append(time.perf_counter() - started)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _jobs(first: int, n: int) -> queue.Queue:
    jobs: queue.Queue = queue.Queue()
    for i, text in enumerate(prompt_inputs(first + n)[first:], start=first):
        jobs.put((text, i))
    return jobs


def limit_process(spec: EndpointSpec, redis_url: str, first: int, n: int, max_tokens: int, threads: int,
                  ready, go, results) -> None:
    """One of two worker processes sharing an endpoint's limit through Redis (run by multiprocessing)."""
    site = SitePath(spec, EndpointLimiter(redis_url))
    jobs = _jobs(first, n)
    latencies: list[float] = []
    ready.put(os.getpid())
    go.wait()
    _drain(site, site.client, jobs, max_tokens, threads, latencies)
    results.put({"latencies": latencies, "waited_seconds": site.limiter.waited_seconds})


class _Sampler:
    """The limiter's own in-flight count, read every `every` seconds in a thread."""

    def __init__(self, limiter: EndpointLimiter, key: str, every: float = 0.005):
        self.values: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limiter, key, every), daemon=True)

    def _run(self, limiter: EndpointLimiter, key: str, every: float) -> None:
        while not self._stop.is_set():
            self.values.append(limiter.in_flight(key))
            time.sleep(every)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def limit_workload(upstream: str, model: str, n: int, max_tokens: int, threads: int, redis_url: str,
                   max_concurrency: int, requests_per_minute: int = 0, processes: int = 1,
                   use_limiter: bool = True) -> dict:
    """n requests from `threads` threads (in each of `processes` processes) through a counting FaultProxy."""
    from bench.model_server import FaultProxy

    proxy = FaultProxy(upstream, failures=0).start()
    spec = bench_spec(proxy.base_url, model, max_concurrency, requests_per_minute)
    limiter = EndpointLimiter(redis_url)
    latencies: list[float] = []
    hits: list[float] = []
    waited = 0.0
    try:
        if processes == 1:
            if requests_per_minute:
                _record_hits(limiter, hits)
            site = SitePath(spec, limiter) if use_limiter else None
            client = site.client if site else OpenAIClient(spec)
            jobs = _jobs(0, n)
            with _Sampler(limiter, spec.name) as sampler:
                started = time.perf_counter()
                _drain(site, client, jobs, max_tokens, threads, latencies)
                elapsed = time.perf_counter() - started
            waited = limiter.waited_seconds
        else:
            context = mp.get_context("spawn")
            ready, results, go = context.Queue(), context.Queue(), context.Event()
            share = [n // processes + (p < n % processes) for p in range(processes)]
            workers = [context.Process(target=limit_process, args=(spec, redis_url, sum(share[:p]), share[p],
                                                                   max_tokens, threads, ready, go, results))
                       for p in range(processes)]
            for worker in workers:
                worker.start()
            for _ in workers:
                ready.get(timeout=120)
            with _Sampler(limiter, spec.name) as sampler:
                started = time.perf_counter()
                go.set()
                for _ in workers:
                    result = results.get(timeout=600)
                    latencies += result["latencies"]
                    waited += result["waited_seconds"]
                elapsed = time.perf_counter() - started
            for worker in workers:
                worker.join(30)
    finally:
        proxy.stop()
    if len(proxy.spans) != n:
        raise RuntimeError(f"the proxy forwarded {len(proxy.spans)} requests, not {n}")
    window = (min(s for s, _ in proxy.spans), max(e for _, e in proxy.spans))
    return {"limit": max_concurrency if use_limiter else None, "threads": threads * processes,
            "processes": processes, "requests": n, "seconds": elapsed, "per_second": n / elapsed,
            "server_max_in_flight": proxy.max_in_flight, "server_max_from_spans": max_concurrent(proxy.spans),
            "server_mean_in_flight": mean_concurrent(proxy.spans, *window),
            "limiter_max_in_flight": max(sampler.values, default=0),
            "limiter_mean_in_flight": statistics.fmean(sampler.values) if sampler.values else float("nan"),
            "waited_seconds": waited, **latency_summary(latencies),
            "arrivals": sorted(t for t, _ in proxy.requests), "hits": sorted(hits)}


def _record_hits(limiter: EndpointLimiter, hits: list[float]) -> None:
    """Note when the limiter grants a request-per-minute hit (bench only: wraps its rate limiter's `hit`)."""
    rates = limiter._rates
    hit = rates.hit

    def recording(item, *identifiers, cost=1):
        granted = hit(item, *identifiers, cost=cost)
        if granted and identifiers[0].startswith("rpm:"):
            hits.append(time.monotonic())
        return granted

    rates.hit = recording  # type: ignore[method-assign]


def concurrency_limits(upstream: str, model: str, limits: Sequence[int], n: int, max_tokens: int,
                       redis_url: str) -> list[dict]:
    """Part 3: per limit L, 3L threads through the limiter and L threads without one, in the order limited,
    free, free, limited; the in-flight figures are the worst of the two limited runs, the rates their sums."""
    rows = []
    processes = 2 if redis_url else 1
    for limit in limits:
        threads = math.ceil(3 * limit / processes)
        runs: dict[str, list[dict]] = {"limited": [], "free": []}
        for kind in ("limited", "free", "free", "limited"):
            if kind == "limited":
                row = limit_workload(upstream, model, n, max_tokens, threads, redis_url, limit, processes=processes)
            else:
                row = limit_workload(upstream, model, n, max_tokens, limit, "", limit, use_limiter=False)
            row.pop("arrivals")
            row.pop("hits")
            runs[kind].append(row)
        limited, free = runs["limited"], runs["free"]
        per_second = 2 * n / sum(r["seconds"] for r in limited)
        ideal = 2 * n / sum(r["seconds"] for r in free)
        rows.append({"limit": limit, "threads": threads * processes, "processes": processes, "requests": 2 * n,
                     "server_max_in_flight": max(r["server_max_in_flight"] for r in limited),
                     "server_max_from_spans": max(r["server_max_from_spans"] for r in limited),
                     "server_mean_in_flight": statistics.fmean(r["server_mean_in_flight"] for r in limited),
                     "limiter_max_in_flight": max(r["limiter_max_in_flight"] for r in limited),
                     "per_second": per_second, "ideal_per_second": ideal,
                     "throughput_ratio": ratio(per_second, ideal),
                     "p90_ms": max(r["p90_ms"] for r in limited), "runs": runs})
    return rows


def requests_per_minute(upstream: str, model: str, rpm: int, max_tokens: int, redis_url: str) -> dict:
    """Part 4: 1.5 R requests from 8 threads with requests_per_minute R (and max_concurrency 4)."""
    n = rpm + math.ceil(rpm / 2)
    row = limit_workload(upstream, model, n, max_tokens, 8, redis_url, 4, requests_per_minute=rpm)
    arrivals, hits = row.pop("arrivals"), row.pop("hits")
    first = arrivals[0]
    row.update({"requests_per_minute": rpm, "max_in_any_60s": max_in_window(arrivals, 60.0),
                "limiter_max_in_any_60s": max_in_window(hits, 60.0 - HIT_TOLERANCE_SECONDS),
                "within_first_second": sum(t - first < 1.0 for t in arrivals),
                "request_r_plus_1_after_s": arrivals[rpm] - first,
                "mean_per_minute": (len(arrivals) - 1) / (arrivals[-1] - first) * 60})
    return row


# ------------------------------------------------------------------------------------------------------
# report


def report(results: dict) -> str:
    lines = [f"machine: {results['machine']}; load average {results['load_before']} before, "
             f"{results['load_after']} after; {results['seconds']:.0f} s"]
    o = results["overhead"]
    lines += ["", f"1. client overhead: {o['requests']} requests one at a time, max_tokens {o['max_tokens']}, "
              f"limiter {o['limiter']}",
              "| side | median (ms) | p90 (ms) | client CPU per request (ms) |", "|---|---:|---:|---:|"]
    for name, label in (("sdk", "openai SDK in a loop"), ("site", "site: slot + OpenAIClient.sample")):
        lines.append(f"| {label} | {o[name]['median_ms']:.1f} | {o[name]['p90_ms']:.1f} | {o[name]['cpu_ms']:.2f} |")
    lines.append(f"| site / SDK | {o['ratio_median']:.3f} | {o['ratio_p90']:.3f} | {o['ratio_cpu']:.3f} |")
    lines.append("site steps (µs, no request): " + ", ".join(f"{k} {v:.1f}" for k, v in o["steps_us"].items()))
    verdict = "met" if o["ratio_median"] <= OVERHEAD_GOAL else "NOT met"
    lines.append(f"goal site / SDK <= {OVERHEAD_GOAL} (medians): {verdict}")
    for c in results.get("chunk_path", []):
        lines += ["", f"2. chunk path with the database ({results['database']}): {c['requests']} samples, "
                  f"{c['chunks']} chunks, concurrency {c['concurrency']}",
                  f"   SDK {', '.join(f'{s:.2f}' for s in c['sdk']['seconds'])} s "
                  f"({c['sdk']['per_request_ms']:.1f} ms a request); site "
                  f"{', '.join(f'{s:.2f}' for s in c['site']['seconds'])} s ({c['site']['per_request_ms']:.1f} ms "
                  f"a sample); site / SDK {c['ratio']:.3f}"]
    if results.get("concurrency"):
        lines += ["", "3. requests in flight vs max_concurrency",
                  "| limit | threads (processes) | requests | server max | server mean | limiter max | "
                  "req/s | req/s, L threads, no limiter | ratio | p90 (ms) |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["concurrency"]:
            lines.append(f"| {r['limit']} | {r['threads']} ({r['processes']}) | {r['requests']} | "
                         f"{r['server_max_in_flight']} | {r['server_mean_in_flight']:.2f} | "
                         f"{r['limiter_max_in_flight']} | {r['per_second']:.1f} | {r['ideal_per_second']:.1f} | "
                         f"{r['throughput_ratio']:.2f} | {r['p90_ms']:.0f} |")
        held = all(r["server_max_in_flight"] <= r["limit"] for r in results["concurrency"])
        lines.append(f"limit held at the server in every run: {'yes' if held else 'NO'}")
    r = results.get("rpm")
    if r:
        lines += ["", f"4. requests_per_minute {r['requests_per_minute']}: {r['requests']} requests, "
                  f"{r['threads']} threads, max_concurrency 4: most in any 60 s at the server "
                  f"{r['max_in_any_60s']}, granted by the limiter {r['limiter_max_in_any_60s']} (limit "
                  f"{r['requests_per_minute']}); {r['within_first_second']} in the "
                  f"first second; request R + 1 arrived {r['request_r_plus_1_after_s']:.2f} s after the first; "
                  f"mean {r['mean_per_minute']:.1f}/min over {r['seconds']:.1f} s"]
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per side in part 1 (200)")
    parser.add_argument("--max-tokens", type=int, default=4, help="max_tokens of every request (4)")
    parser.add_argument("--limits", default="2,4", help="max_concurrency values of part 3 (2,4)")
    parser.add_argument("--limit-requests", type=int, default=100, help="requests per run in part 3 (100; 4 runs)")
    parser.add_argument("--chunk-requests", type=int, default=50,
                        help="samples per run in part 2 (50; 8 runs: SDK, site, site, SDK, twice)")
    parser.add_argument("--chunk-concurrency", default="1,4", help="endpoint concurrency of part 2's runs (1,4)")
    parser.add_argument("--rpm", type=int, default=40, help="requests_per_minute of part 4; 0 skips it (40)")
    parser.add_argument("--redis-url", default="",
                        help="keep the limits in this Redis (part 3 then runs two processes); default embedded")
    parser.add_argument("--database-url", default="",
                        help="database of part 2 (default: a fresh SQLite file); a postgres:// one is dropped and "
                             "created, and dropped at the end")
    parser.add_argument("--no-db", action="store_true", help="skip part 2")
    parser.add_argument("--model-folder", default=os.path.join(tempfile.gettempdir(), "sepeval-tiny-lm"))
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object only")
    args = parser.parse_args(argv)

    from bench.model_server import ModelServer, build_tiny_model

    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "load_before": load_average(),
                               "command": " ".join(["bench/generation.py", *(argv or sys.argv[1:])])}
    folder = build_tiny_model(args.model_folder)
    server = ModelServer(folder).start()
    model = str(folder)
    pg = None
    try:
        log = (lambda text: None) if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
        log(f"server {server.base_url} up after {time.perf_counter() - started:.1f} s; part 1")
        results["overhead"] = client_overhead(server.base_url, model, args.requests, args.max_tokens, args.redis_url)
        if not args.no_db:
            database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-generation-')}/db.sqlite3"
            if database_url.startswith("postgres"):
                from bench.web_load import create_database

                pg = database_url.rsplit("/", 1)
                create_database(*pg)
            results["database"] = database_url.split("://")[0]
            log("part 2: migrate")
            setup_django(database_url, args.redis_url)
            results["chunk_path"] = [chunk_path(server.base_url, model, args.chunk_requests, args.max_tokens, c)
                                     for c in _ints(args.chunk_concurrency)]
        log("part 3")
        results["concurrency"] = concurrency_limits(server.base_url, model, _ints(args.limits), args.limit_requests,
                                                    args.max_tokens, args.redis_url)
        if args.rpm:
            log("part 4 (a minute)")
            results["rpm"] = requests_per_minute(server.base_url, model, args.rpm, args.max_tokens, args.redis_url)
    finally:
        server.stop()
        if pg:
            from django.db import connections

            from bench.web_load import drop_database

            connections.close_all()
            drop_database(*pg)
    results["load_after"] = load_average()
    results["seconds"] = time.perf_counter() - started
    print(json.dumps(results, indent=1) if args.json else report(results))
    held = all(r["server_max_in_flight"] <= r["limit"] for r in results["concurrency"])
    rpm_held = "rpm" not in results or \
        results["rpm"]["limiter_max_in_any_60s"] <= results["rpm"]["requests_per_minute"]
    return 0 if held and rpm_held else 1


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
