"""The runner's pure decisions: retries, lease expiry, store support, the run's exit code.

Everything here takes plain values and returns a plain answer, with no S3, clock or process in
sight, so each rule is tested with a table (`tests/runner/test_policy.py`) and the I/O modules
stay thin. The rules follow the worker's exit-code contract (`videopipe.report.ExitCode`): `0`
done, `2` configuration and `3` bad input fail at once (no retry can fix them), anything else is
retried in place with exponential backoff up to a bounded number of worker runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from videopipe.report import ExitCode

MAX_BACKOFF_SECONDS = 300.0
# Answers of a store that does not implement a conditional header at all.
REJECTED_STATUSES = frozenset({400, 501})


class Action(StrEnum):
    COMPLETE = "complete"  # move to completed/
    FAIL = "fail"  # move to failed/ and write the error report
    RETRY = "retry"  # run the worker again after `delay` seconds


@dataclass(frozen=True)
class NextStep:
    action: Action
    delay: float = 0.0


def after_worker(exit_code: int, runs: int, max_runs: int, backoff: float) -> NextStep:
    """What to do after the worker's `runs`-th run of this claim ended with `exit_code`."""
    if exit_code == ExitCode.OK:
        return NextStep(Action.COMPLETE)
    if exit_code in (ExitCode.CONFIG, ExitCode.BAD_INPUT):
        return NextStep(Action.FAIL)
    if runs >= max_runs:
        return NextStep(Action.FAIL)
    return NextStep(Action.RETRY, backoff_delay(runs, backoff))


def backoff_delay(runs: int, base: float, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """`base`, then twice that after each further failed run, never more than `cap`."""
    return min(max(base, 0.0) * 2 ** max(runs - 1, 0), cap)


def lease_expired(age_seconds: float, lease_seconds: float) -> bool:
    """A lock whose holder has not renewed it for longer than its lease is free to take.

    `age_seconds` is measured on the store's own clock (the `Date` of the answer minus the lock's
    `Last-Modified`), so clocks of runners on different machines never enter into it.
    """
    return age_seconds > lease_seconds


class Support(StrEnum):
    HONOURED = "honoured"  # 412 on a failed precondition: exclusive locks work
    IGNORED = "ignored"  # the write succeeded anyway: the header is silently dropped
    REJECTED = "rejected"  # 400/501: the store refuses the header


def probe_verdict(create: int, create_again: int, replace_stale: int) -> Support:
    """Judge a store from the HTTP statuses of three probe writes to one new key.

    `create`: PUT with `If-None-Match: *` (should succeed); `create_again`: the same again
    (should be 412); `replace_stale`: PUT with `If-Match` and a wrong ETag (should be 412).
    Locks need both conditions: create-only for a claim, compare-and-swap for renewing and
    taking over a lease.
    """
    statuses = (create, create_again, replace_stale)
    if any(status in REJECTED_STATUSES for status in statuses):
        return Support.REJECTED
    if create_again == 412 and replace_stale == 412:
        return Support.HONOURED
    return Support.IGNORED


class Outcome(StrEnum):
    """How one claimed video left this runner's hands."""

    COMPLETED = "completed"  # in completed/, results in results/<path>/
    FAILED = "failed"  # in failed/ with failed/<path>.error.json
    RETURNED = "returned"  # given back to pending/ at shutdown, for the next run
    SKIPPED = "skipped"  # left alone: key too long, or another runner took the lease over
    ERROR = "error"  # the store failed mid-way; the video stays where it is, for recovery


class RunExit:
    """Exit codes of `videopipe run` (documented in the README)."""

    OK = 0  # every video this run took ended in completed/ (or there was nothing to do)
    NOT_ALL_DONE = 1  # some video failed, was skipped, or hit a store error
    CONFIG = 2  # usage or configuration: bad URI, no bucket, no access, worker not installed
    INTERRUPTED = 130  # --once stopped by SIGINT/SIGTERM; videos in flight went back to pending/


def run_exit_code(outcomes: Iterable[Outcome], *, once: bool, interrupted: bool) -> int:
    """`--once` reports on the batch; `--watch` is a service whose clean stop is success."""
    if not once:
        return RunExit.OK
    if interrupted:
        return RunExit.INTERRUPTED
    if all(outcome is Outcome.COMPLETED for outcome in outcomes):
        return RunExit.OK
    return RunExit.NOT_ALL_DONE


__all__ = [
    "Action",
    "NextStep",
    "Outcome",
    "RunExit",
    "Support",
    "after_worker",
    "backoff_delay",
    "lease_expired",
    "probe_verdict",
    "run_exit_code",
]
