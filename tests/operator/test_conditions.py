"""Conditions keep their transition time while their status stays the same."""

from __future__ import annotations

from videopipe_operator.conditions import find, is_true, set_condition


def test_transition_time_changes_only_with_the_status() -> None:
    conds = set_condition(None, "Ready", True, "Polling", "ok", "t1")
    conds = set_condition(conds, "Ready", True, "Polling", "still ok", "t2")
    assert find(conds, "Ready")["lastTransitionTime"] == "t1"
    assert find(conds, "Ready")["message"] == "still ok"
    conds = set_condition(conds, "Ready", False, "BucketNotFound", "gone", "t3")
    assert find(conds, "Ready")["lastTransitionTime"] == "t3"
    assert not is_true(conds, "Ready")


def test_order_is_kept_and_types_are_unique() -> None:
    conds = set_condition(None, "A", True, "R", "", "t")
    conds = set_condition(conds, "B", True, "R", "", "t")
    conds = set_condition(conds, "A", False, "R", "", "t")
    assert [c["type"] for c in conds] == ["A", "B"]
