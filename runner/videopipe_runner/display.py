"""Showing progress: a live table on a terminal, one log line per change elsewhere.

On a terminal people watch: `LiveDisplay` redraws one row per video (state, attempt, audio
length, time, the worker's last log line) a few times a second with rich's `Live`, on stderr so
that stdout keeps only the summary; the table is cleared at the end, where the summary takes
its place. In a log (systemd, a container, CI) nobody watches and
redrawing makes a mess: `LogDisplay` writes one line when a video changes state and none for the
worker's chatter. Both are fed the same `VideoStatus` objects from the trips' threads.

`print_summary` is the end of a `--once` run: a table of every video this runner took, with its
outcome and reason, then what went wrong for each video that did not complete.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from videopipe_runner.policy import Outcome
from videopipe_runner.status import Step, VideoStatus

log = logging.getLogger("videopipe_runner")

QUIET_STEPS = frozenset({Step.CLAIMED, Step.MOVING, Step.FINISHING, Step.GONE})
MAX_FINISHED_ROWS = 20  # a long watch keeps only the latest finished videos on screen
STYLES = {
    Outcome.COMPLETED: "green",
    Outcome.FAILED: "red",
    Outcome.RETURNED: "yellow",
    Outcome.SKIPPED: "magenta",
    Outcome.ERROR: "magenta",
}


class Display(Protocol):
    def start(self) -> None: ...
    def update(self, status: VideoStatus) -> None: ...
    def stop(self) -> None: ...


class LogDisplay:
    """One line per state change, for logs."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}
        self._mutex = threading.Lock()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def update(self, status: VideoStatus) -> None:
        with self._mutex:
            if self._last.get(status.path) == status.label:
                return
            self._last[status.path] = status.label
            if status.done or status.step is Step.GONE:
                del self._last[status.path]  # a long watch must not remember every video
        # Claiming, moving and finishing take milliseconds: worth a line only when debugging.
        quiet = status.outcome is None and status.step in QUIET_STEPS
        log.log(logging.DEBUG if quiet else logging.INFO, "%s", describe(status))


class LiveDisplay:
    """A table redrawn in place on a terminal."""

    def __init__(self, console: Console, title: str) -> None:
        self.title = title
        self._rows: dict[str, VideoStatus] = {}
        self._mutex = threading.Lock()
        self._live = Live(
            console=console, get_renderable=self._render, refresh_per_second=4, transient=True
        )

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.refresh()
        self._live.stop()

    def update(self, status: VideoStatus) -> None:
        with self._mutex:
            if status.step is Step.GONE:
                if self._rows.get(status.path) is status:
                    del self._rows[status.path]
                return
            if self._rows.get(status.path) is not status:  # rows stay in the order of claims
                self._rows.pop(status.path, None)
                self._rows[status.path] = status
            finished = [path for path, s in self._rows.items() if s.done]
            for path in finished[:-MAX_FINISHED_ROWS]:
                del self._rows[path]

    def _render(self) -> RenderableType:
        with self._mutex:
            rows = list(self._rows.values())
        finished = [s for s in rows if s.done]
        active = [s for s in rows if not s.done]
        table = Table(
            title=self.title, title_justify="left", expand=False, box=None, pad_edge=False
        )
        for name, justify in COLUMNS:
            table.add_column(name, justify=justify, no_wrap=name != "video")
        table.add_column("detail", overflow="ellipsis", no_wrap=True, max_width=60)
        for s in finished + active:
            detail = s.detail if not s.done else (s.reason or "")
            table.add_row(*cells(s), Text(detail, style="dim"))
        if not rows:
            return Group(table, Text("waiting for videos in pending/ ...", style="dim"))
        return table


COLUMNS = (
    ("video", "left"),
    ("state", "left"),
    ("attempt", "right"),
    ("audio", "right"),
    ("time", "right"),
)


def cells(status: VideoStatus) -> list[Text]:
    style = STYLES.get(status.outcome, "cyan") if status.outcome else "cyan"
    return [
        Text(status.path),
        Text(status.label, style=style),
        Text(str(status.attempt or "")),
        Text(seconds(status.audio_seconds)),
        Text(seconds(status.wall_seconds)),
    ]


def describe(status: VideoStatus) -> str:
    """A one-line account of a state change, for logs."""
    if status.outcome is Outcome.COMPLETED:
        audio = f", {seconds(status.audio_seconds)} of audio" if status.audio_seconds else ""
        return f"{status.path}: completed in {seconds(status.wall_seconds)}{audio}"
    if status.outcome is not None:
        because = f": {status.reason}" if status.reason else ""
        message = f" ({status.message})" if status.message else ""
        return f"{status.path}: {status.outcome}{because}{message}"
    if status.step is Step.RUNNING:
        return f"{status.path}: running the worker (attempt {status.attempt})"
    if status.step is Step.WAITING:
        return f"{status.path}: waiting to retry ({status.detail})"
    return f"{status.path}: {status.step}"


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 3600:
        hours, rest = divmod(int(value), 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    if value >= 120:
        return f"{int(value) // 60}:{int(value) % 60:02d}"
    return f"{value:.1f} s"


def print_summary(statuses: Iterable[VideoStatus], console: Console) -> None:
    """The table at the end of a run, then what went wrong for each video that did not finish."""
    done = sorted((s for s in statuses if s.done), key=lambda s: s.path)
    if not done:
        console.print("Nothing to do: no video in pending/ could be claimed.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (
        ("video", "left"),
        ("outcome", "left"),
        ("reason", "left"),
        ("attempt", "right"),
        ("audio", "right"),
        ("wall time", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in done:
        table.add_row(
            s.path,
            Text(s.label, style=STYLES.get(s.outcome, "")),  # type: ignore[arg-type]
            s.reason,
            str(s.attempt or ""),
            seconds(s.audio_seconds),
            seconds(s.wall_seconds),
        )
    console.print(table)
    counts = {o: sum(1 for s in done if s.outcome is o) for o in Outcome}
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
    console.print(f"\n{len(done)} video{'s' if len(done) != 1 else ''}: {tally}")
    for s in done:
        if s.outcome is not Outcome.COMPLETED and s.message:
            console.print(f"  {s.path}: {s.message}", style="dim", highlight=False)


__all__ = ["Display", "LiveDisplay", "LogDisplay", "describe", "print_summary"]
