"""The runner's pure decisions, as tables: no S3, no processes, no clock."""

from __future__ import annotations

import sys

import pytest
from videopipe_runner.__main__ import build_parser, main, settings_from_args
from videopipe_runner.policy import (
    Action,
    NextStep,
    Outcome,
    RunExit,
    Support,
    after_worker,
    backoff_delay,
    lease_expired,
    probe_verdict,
    run_exit_code,
)
from videopipe_runner.settings import RunnerSettings
from videopipe_runner.worker import worker_argv


@pytest.mark.parametrize(
    ("exit_code", "runs", "expected"),
    [
        (0, 1, NextStep(Action.COMPLETE)),
        (0, 3, NextStep(Action.COMPLETE)),
        (2, 1, NextStep(Action.FAIL)),  # configuration: no retry
        (3, 1, NextStep(Action.FAIL)),  # bad input: no retry
        (1, 1, NextStep(Action.RETRY, 10.0)),
        (1, 2, NextStep(Action.RETRY, 20.0)),
        (1, 3, NextStep(Action.FAIL)),  # the third run was the last
        (-9, 1, NextStep(Action.RETRY, 10.0)),  # killed (out of memory): retryable
        (130, 1, NextStep(Action.RETRY, 10.0)),
    ],
)
def test_after_worker(exit_code: int, runs: int, expected: NextStep) -> None:
    assert after_worker(exit_code, runs, max_runs=3, backoff=10.0) == expected


def test_a_single_run_allowed_means_no_retry() -> None:
    assert after_worker(1, 1, max_runs=1, backoff=10.0) == NextStep(Action.FAIL)


@pytest.mark.parametrize(
    ("runs", "base", "delay"),
    [(1, 10, 10), (2, 10, 20), (3, 10, 40), (20, 10, 300), (1, 0, 0), (1, -5, 0)],
)
def test_backoff_doubles_up_to_a_cap(runs: int, base: float, delay: float) -> None:
    assert backoff_delay(runs, base) == delay


@pytest.mark.parametrize(
    ("age", "lease", "expired"),
    [(0, 60, False), (59.9, 60, False), (60, 60, False), (60.5, 60, True), (-3, 60, False)],
)
def test_lease_expiry(age: float, lease: float, expired: bool) -> None:
    assert lease_expired(age, lease) is expired


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [
        ((200, 412, 412), Support.HONOURED),  # moto, AWS S3, MinIO
        ((200, 200, 200), Support.IGNORED),  # headers silently dropped
        ((200, 412, 200), Support.IGNORED),  # create-only works, compare-and-swap does not
        ((200, 200, 412), Support.IGNORED),
        ((501, 501, 501), Support.REJECTED),  # "not implemented"
        ((200, 412, 400), Support.REJECTED),
    ],
)
def test_probe_verdict(statuses: tuple[int, int, int], verdict: Support) -> None:
    assert probe_verdict(*statuses) is verdict


C, F, S, R = Outcome.COMPLETED, Outcome.FAILED, Outcome.SKIPPED, Outcome.RETURNED


@pytest.mark.parametrize(
    ("outcomes", "once", "interrupted", "code"),
    [
        ([], True, False, RunExit.OK),  # nothing to do is success
        ([C, C], True, False, RunExit.OK),
        ([C, F], True, False, RunExit.NOT_ALL_DONE),
        ([C, S], True, False, RunExit.NOT_ALL_DONE),
        ([C, R], True, True, RunExit.INTERRUPTED),
        ([C, F], False, True, RunExit.OK),  # a watch stopped by a signal stopped cleanly
    ],
)
def test_run_exit_code(outcomes: list[Outcome], once: bool, interrupted: bool, code: int) -> None:
    assert run_exit_code(outcomes, once=once, interrupted=interrupted) == code


def test_worker_command_line() -> None:
    argv = worker_argv(
        "s3://b/v/processing/a b.mp4",
        "s3://b/v/results/a b.mp4/",
        endpoint="http://127.0.0.1:9000",
        region="eu-west-1",
        options=("--model", "small", "--no-summary"),
    )
    assert argv == [
        sys.executable,
        "-m",
        "videopipe",
        "transcribe",
        "s3://b/v/processing/a b.mp4",
        "--output",
        "s3://b/v/results/a b.mp4/",
        "--endpoint-url",
        "http://127.0.0.1:9000",
        "--region",
        "eu-west-1",
        "--model",
        "small",
        "--no-summary",
    ]


def test_only_the_worker_options_given_are_forwarded() -> None:
    args = build_parser().parse_args(["s3://b", "--language", "de", "--no-summary"])
    assert settings_from_args(args).worker_options == ("--language", "de", "--no-summary")


def test_parallel_workers_share_the_cpus() -> None:
    args = build_parser().parse_args(["s3://b", "-j", "64"])
    assert settings_from_args(args).worker_options == ("--cpu-threads", "1")
    args = build_parser().parse_args(["s3://b", "-j", "64", "--cpu-threads", "4"])
    assert settings_from_args(args).worker_options == ("--cpu-threads", "4")


def test_settings_from_the_command_line() -> None:
    args = build_parser().parse_args(["s3://b/videos/", "--watch", "--interval", "2", "-j", "2"])
    settings = settings_from_args(args)
    assert (settings.bucket, settings.prefix, settings.once) == ("b", "videos/", False)
    assert (settings.interval, settings.concurrency) == (2, 2)


def test_the_command_lines_defaults_are_the_settings_defaults() -> None:
    given = settings_from_args(build_parser().parse_args(["s3://b"]))
    assert given == RunnerSettings(uri=given.uri, endpoint=given.endpoint)


@pytest.mark.parametrize(
    "argv",
    [
        ["not-a-uri"],
        ["s3://b", "--concurrency", "0"],
        ["s3://b", "--lease", "-1"],
        ["s3://b", "--once", "--watch"],
        ["s3://b", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2_before_touching_s3(argv: list[str]) -> None:
    assert main(argv) == RunExit.CONFIG
