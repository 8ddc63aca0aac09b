"""Errors the worker turns into exit codes (`videopipe.report.ExitCode`).

Every stage raises one of these with a reason (a short CamelCase word that the
operator puts on the VideoJob) and a message for people that says what is wrong and
how to fix it. `__main__` is the only place that maps them to exit codes.
"""

from __future__ import annotations

from videopipe.report import ExitCode


class WorkerError(Exception):
    """Base class: retryable unless a subclass says otherwise."""

    exit_code = ExitCode.RETRYABLE

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class BadInput(WorkerError):
    """The input itself is unusable (not media, no audio, corrupt, too long)."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(WorkerError):
    """Settings are wrong (missing input, bad credentials, unknown model)."""

    exit_code = ExitCode.CONFIG


class Retryable(WorkerError):
    """A passing failure: store unreachable, Gemini overloaded, out of memory."""


__all__ = ["BadInput", "ConfigError", "Retryable", "WorkerError"]
