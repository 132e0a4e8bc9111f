"""The arithmetic of the peers benchmark, apart from any server or client: cycles in the timed window,
their latency percentiles, the audit's reconciliation of what each system acknowledged with what it
stored, the ratios between systems, and the table that reports them.

Kept pure (no Django, no HTTP) so that a fast test can check the numbers the benchmark prints.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from bench.web_load import percentile  # the same nearest-rank rule as web_load's figures

# One finished cycle as the load generator records it: (finished at, seconds it took, succeeded).
CycleRecord = tuple[float, float, bool]


@dataclass(frozen=True)
class CycleSummary:
    count: int  # successful cycles that finished inside the window
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int  # cycles that finished inside the window and did not succeed


def summarise_cycles(records: Iterable[CycleRecord], start: float, end: float) -> CycleSummary:
    """Cycles that finished in [start, end): the successful ones give the rate and the latencies, the
    others are counted as failed. Cycles still running at `end` finish later and are left out of the
    rate (their acknowledgements still go to the audit)."""
    if end <= start:
        raise ValueError(f"the window must have a positive length (start {start}, end {end})")
    in_window = [(latency, ok) for finished, latency, ok in records if start <= finished < end]
    latencies = [latency for latency, ok in in_window if ok]
    return CycleSummary(
        count=len(latencies), per_second=len(latencies) / (end - start),
        p50_ms=1000 * percentile(latencies, 50), p99_ms=1000 * percentile(latencies, 99),
        failed=len(in_window) - len(latencies),
    )


@dataclass(frozen=True)
class Reconciliation:
    acknowledged: int  # judgements the system answered with success (each key once per answer)
    stored: int  # judgements found in the system's own storage afterwards
    lost: int  # acknowledged, not stored
    unacknowledged: int  # stored without a success answer (e.g. stored, then a 500)
    doubled: int  # keys acknowledged more than once, or stored more than once

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.doubled == 0


def reconcile(acknowledged: Iterable[str], stored: Iterable[str]) -> Reconciliation:
    """Acknowledged = stored, key for key: a key is whatever names one judgement in that system (an
    assignment token, an annotation id, a (user, item) pair)."""
    ack_counts, stored_counts = Counter(acknowledged), Counter(stored)
    doubled = sum(1 for n in ack_counts.values() if n > 1) + sum(1 for n in stored_counts.values() if n > 1)
    return Reconciliation(
        acknowledged=sum(ack_counts.values()), stored=sum(stored_counts.values()),
        lost=len(ack_counts.keys() - stored_counts.keys()),
        unacknowledged=len(stored_counts.keys() - ack_counts.keys()), doubled=doubled,
    )


def ratio(ours: float, peer: float) -> float:
    """ours / peer; NaN when the peer did nothing (no ratio to speak of)."""
    return ours / peer if peer > 0 else float("nan")


@dataclass(frozen=True)
class SystemResult:
    system: str
    cycles: CycleSummary
    audit: Reconciliation
    note: str = ""

    def as_dict(self) -> dict:
        return {"system": self.system, "cycles": asdict(self.cycles), "audit": asdict(self.audit),
                "audit_passed": self.audit.passed, "note": self.note}


def ratios_against(results: Sequence[SystemResult], ours: str) -> dict[str, float]:
    """cycles/s of `ours` over each other system's, by that system's name."""
    by_name = {r.system: r for r in results}
    if ours not in by_name:
        return {}
    mine = by_name[ours].cycles.per_second
    return {r.system: ratio(mine, r.cycles.per_second) for r in results if r.system != ours}


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def format_table(results: Sequence[SystemResult], ours: str) -> str:
    """A Markdown table, one row per system, then the ratios of `ours` to each peer."""
    lines = ["| system | cycles/s | p50 (ms) | p99 (ms) | acknowledged | stored | lost | failed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.system} | {r.cycles.per_second:.1f} | {_ms(r.cycles.p50_ms)} | {_ms(r.cycles.p99_ms)} | "
                     f"{r.audit.acknowledged} | {r.audit.stored} | {r.audit.lost} | {r.cycles.failed} |")
    ratios = ratios_against(results, ours)
    if ratios:
        lines.append("")
        for name, value in ratios.items():
            shown = "n/a" if math.isnan(value) else f"{value:.2f}"
            lines.append(f"{ours} / {name} (cycles/s): {shown}")
    return "\n".join(lines)
