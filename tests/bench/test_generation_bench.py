"""The generation benchmark's arithmetic (bench/generation.py): what it prints as requests in flight, as
requests in a minute and as latencies must be what the recorded spans and times say."""
import math

from bench.generation import latency_summary, max_concurrent, max_in_window, mean_concurrent, prompt_inputs, ratio


def test_max_concurrent_counts_spans_open_together_and_not_ones_that_only_touch():
    spans = [(0.0, 1.0), (0.5, 2.0), (0.9, 1.5), (2.0, 3.0), (3.0, 4.0)]
    assert max_concurrent(spans) == 3  # at 0.9..1.0
    assert max_concurrent([(0.0, 1.0), (1.0, 2.0)]) == 1  # the second starts as the first ends
    assert max_concurrent([]) == 0


def test_mean_concurrent_weights_each_span_by_its_time_inside_the_window():
    spans = [(0.0, 2.0), (1.0, 2.0), (1.5, 5.0)]  # the last runs past the window's end
    assert mean_concurrent(spans, 0.0, 2.0) == (2.0 + 1.0 + 0.5) / 2.0
    assert mean_concurrent([(0.0, 4.0)], 1.0, 3.0) == 1.0
    assert math.isnan(mean_concurrent(spans, 2.0, 2.0))


def test_max_in_window_is_a_moving_window_that_lets_a_request_go_once_the_oldest_is_a_window_old():
    burst_then_wait = [0.0, 0.1, 0.2, 60.0, 60.1, 60.2]
    assert max_in_window(burst_then_wait, 60.0) == 3  # (0.0, 60.0] leaves 0.0 out
    assert max_in_window([0.0, 0.1, 59.9, 60.05], 60.0) == 3  # (0.05, 60.05] holds 0.1, 59.9, 60.05
    assert max_in_window([5.0, 1.0, 3.0], 10.0) == 3  # any order
    assert max_in_window([], 60.0) == 0


def test_latency_summary_is_nearest_rank_in_milliseconds():
    summary = latency_summary([0.010, 0.030, 0.020, 0.040, 0.100])
    assert summary == {"n": 5, "median_ms": 30.0, "p90_ms": 100.0}
    assert math.isnan(latency_summary([])["median_ms"])


def test_ratio_is_nan_when_either_side_is_missing():
    assert ratio(1.1, 1.0) == 1.1
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(float("nan"), 1.0))


def test_both_sides_ask_the_same_distinct_prompts():
    inputs = prompt_inputs(3)
    assert inputs == ["Write a line about the number 0.", "Write a line about the number 1.",
                      "Write a line about the number 2."]
