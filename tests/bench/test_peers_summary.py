"""The peers benchmark's arithmetic (bench/peers/summary.py) and its reading of Potato's state files:
what it prints as cycles/s, percentiles, lost, failed and the ratios must be what the records say."""
import json
import math

import pytest

from bench.peers.summary import (
    CycleSummary,
    Reconciliation,
    SystemResult,
    format_table,
    percentile,
    ratios_against,
    reconcile,
    summarise_cycles,
)
from bench.peers.systems import potato_stored


def test_percentile_is_nearest_rank_and_nan_for_nothing():
    values = [0.4, 0.1, 0.3, 0.2]
    assert percentile(values, 50) == 0.2
    assert percentile(values, 99) == 0.4
    assert percentile(values, 0) == 0.1
    assert math.isnan(percentile([], 50))


def test_cycles_outside_the_window_are_left_out_and_failures_are_counted_not_timed():
    records = [
        (9.9, 5.0, True),  # finished before the window
        (10.0, 0.1, True),
        (12.0, 0.3, True),
        (13.0, 9.0, False),  # failed: counted, not in the latencies
        (19.99, 0.2, True),
        (20.0, 0.1, True),  # finished at the end: still running when the window closed
    ]
    summary = summarise_cycles(records, start=10.0, end=20.0)
    assert summary == CycleSummary(count=3, per_second=0.3, p50_ms=200.0, p99_ms=300.0, failed=1)


def test_a_window_of_no_length_is_refused():
    with pytest.raises(ValueError, match="positive length"):
        summarise_cycles([], start=5.0, end=5.0)


def test_reconcile_counts_lost_unacknowledged_and_doubled_keys():
    result = reconcile(acknowledged=["a", "b", "c", "c"], stored=["a", "c", "d", "d"])
    assert result == Reconciliation(acknowledged=4, stored=4, lost=1, unacknowledged=1, doubled=2)
    assert not result.passed
    assert reconcile(["a", "b"], ["b", "a"]).passed


def test_a_stored_judgement_that_was_never_acknowledged_does_not_fail_the_audit():
    result = reconcile(acknowledged=["a"], stored=["a", "b"])
    assert (result.lost, result.unacknowledged, result.passed) == (0, 1, True)


def _result(name, per_second, failed=0):
    return SystemResult(name, CycleSummary(int(per_second * 30), per_second, 500.0, 900.0, failed),
                        reconcile(["x"], ["x"]))


def test_ratios_are_ours_over_each_peer_and_nan_for_a_peer_that_did_nothing():
    results = [_result("ours", 40.0), _result("slow", 4.0), _result("idle", 0.0)]
    ratios = ratios_against(results, "ours")
    assert ratios["slow"] == 10.0
    assert math.isnan(ratios["idle"])
    assert ratios_against(results, "absent") == {}


def test_the_table_has_a_row_per_system_and_the_ratio_lines():
    table = format_table([_result("ours", 40.0), _result("peer", 8.0, failed=3)], "ours")
    lines = table.splitlines()
    assert lines[2] == "| ours | 40.0 | 500 | 900 | 1 | 1 | 0 | 0 |"
    assert lines[3] == "| peer | 8.0 | 500 | 900 | 1 | 1 | 0 | 3 |"
    assert lines[-1] == "ours / peer (cycles/s): 5.00"


def test_potato_answers_are_read_from_each_users_state_file(tmp_path):
    for user, labels in {"peer-0": {"c1": [[{"schema": "preference", "name": "selection"}, "A"]],
                                    "c2": [[{"schema": "preference", "name": "selection"}, ""]]},
                         "peer-1": {"c1": [[{"schema": "preference", "name": "selection"}, "tie"]]}}.items():
        (tmp_path / user).mkdir()
        (tmp_path / user / "user_state.json").write_text(
            json.dumps({"user_id": user, "instance_id_to_label_to_value": labels}))
    assert potato_stored(tmp_path) == ["peer-0/c1", "peer-1/c1"]
