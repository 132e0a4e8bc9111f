"""The open-loop mode of bench/web_load.py: its arrivals must be a Poisson process of the asked rate
(seeded, so a run repeats), and its latency must run from the scheduled time, so that a vote which
waited for a free session shows its wait (coordinated omission) while the service time does not."""
import math
import statistics

import pytest

from bench.web_load import OpenLoopRecord, parse_args, poisson_schedule, summarise_open_loop


def test_the_schedule_is_seeded_sorted_and_inside_the_window():
    first = poisson_schedule(60.0, 30.0, seed=7)
    assert first == poisson_schedule(60.0, 30.0, seed=7)
    assert first != poisson_schedule(60.0, 30.0, seed=8)
    assert first == sorted(first)
    assert 0.0 < first[0] and first[-1] < 30.0


def test_the_schedule_has_the_rate_and_the_exponential_gaps_of_a_poisson_process():
    rate, seconds = 60.0, 600.0
    arrivals = poisson_schedule(rate, seconds, seed=1)
    expected = rate * seconds  # 36,000 arrivals, standard deviation sqrt(36,000) = 190
    assert abs(len(arrivals) - expected) < 5 * math.sqrt(expected)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1 / rate, rel=0.03)
    # exponential: standard deviation equal to the mean, and P(gap > mean) = 1/e (evenly spaced
    # arrivals would give 0 and 0 or 1)
    assert statistics.pstdev(gaps) == pytest.approx(mean, rel=0.05)
    assert sum(g > mean for g in gaps) / len(gaps) == pytest.approx(1 / math.e, abs=0.02)


@pytest.mark.parametrize(("rate", "seconds"), [(0.0, 10.0), (-5.0, 10.0), (60.0, 0.0), (math.inf, 10.0)])
def test_a_schedule_needs_a_positive_finite_rate_and_window(rate, seconds):
    with pytest.raises(ValueError, match="positive rate"):
        poisson_schedule(rate, seconds, seed=0)


def test_latency_runs_from_the_scheduled_time_and_service_time_from_the_send():
    start = 1000.0
    records = [
        # on time: a session was waiting (picked before the scheduled time), 40 ms of service
        OpenLoopRecord(start + 1.0, start + 0.5, start + 1.0, start + 1.04, 200),
        # late start: every session busy until 300 ms after the scheduled time, then 50 ms of service
        OpenLoopRecord(start + 2.0, start + 2.3, start + 2.3, start + 2.35, 200),
        # on time, 20 ms
        OpenLoopRecord(start + 3.0, start + 2.9, start + 3.0, start + 3.02, 200),
        # answered 503: counted as failed, not timed (and not a late start)
        OpenLoopRecord(start + 4.0, start + 3.9, start + 4.0, start + 9.0, 503),
        # no answer at all
        OpenLoopRecord(start + 5.0, start + 4.9, start + 5.0, start + 5.5, None),
    ]
    summary = summarise_open_loop(records, start, seconds=10.0, planned=6)
    assert summary["count"] == 3
    assert summary["p50_ms"] == pytest.approx(40.0)
    assert summary["p99_ms"] == pytest.approx(350.0)  # the late vote's queueing is in the latency
    assert summary["max_ms"] == pytest.approx(350.0)
    assert summary["service_p50_ms"] == pytest.approx(40.0)
    assert summary["service_p99_ms"] == pytest.approx(50.0)  # ... and not in the service time
    assert summary["start_delay_p99_ms"] == pytest.approx(300.0)
    assert summary["late_starts"] == 1
    assert (summary["failed"], summary["not_sent"]) == (2, 1)
    assert summary["offered_per_second"] == pytest.approx(0.6)
    assert summary["achieved_per_second"] == pytest.approx(0.3)
    assert summary["answered_after_window_s"] == 0.0


def test_a_site_that_falls_behind_has_its_achieved_rate_taken_over_the_time_to_the_last_answer():
    start = 0.0
    records = [OpenLoopRecord(i / 10, i / 10, i / 10, 2.0 + i / 5, 200) for i in range(10)]  # last at 3.8 s
    summary = summarise_open_loop(records, start, seconds=1.0, planned=10)
    assert summary["offered_per_second"] == pytest.approx(10.0)
    assert summary["achieved_per_second"] == pytest.approx(10 / 3.8)
    assert summary["answered_after_window_s"] == pytest.approx(2.8)


def test_no_answers_give_no_percentiles_and_a_window_needs_a_length():
    summary = summarise_open_loop([], 0.0, seconds=5.0, planned=3)
    assert math.isnan(summary["p99_ms"]) and summary["not_sent"] == 3 and summary["count"] == 0
    with pytest.raises(ValueError, match="positive length"):
        summarise_open_loop([], 0.0, seconds=0.0, planned=0)


def test_the_command_line_refuses_a_negative_rate_and_keeps_the_closed_loop_by_default(capsys):
    assert parse_args([]).open_loop == 0.0
    assert parse_args(["--open-loop", "60", "--seconds", "60"]).open_loop == 60.0
    with pytest.raises(SystemExit):
        parse_args(["--open-loop", "-3"])
    assert "--open-loop: a rate in votes per second above 0" in capsys.readouterr().err


def test_votes_scheduled_before_the_window_are_the_warm_up_and_not_counted():
    start = 100.0
    warm_up = [OpenLoopRecord(start - 1.0, start - 1.0, start - 1.0, start + 0.5, 200),  # cold: 1.5 s
               OpenLoopRecord(start - 0.5, start - 0.4, start - 0.4, start - 0.1, 500)]
    timed = [OpenLoopRecord(start + 0.2, start + 0.1, start + 0.2, start + 0.25, 200)]
    summary = summarise_open_loop(warm_up + timed, start, seconds=1.0, planned=1)
    assert (summary["count"], summary["failed"], summary["not_sent"], summary["late_starts"]) == (1, 0, 0, 0)
    assert summary["max_ms"] == pytest.approx(50.0)
