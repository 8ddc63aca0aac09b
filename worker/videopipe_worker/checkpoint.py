"""Finished windows kept next to the results, so a new attempt continues from them.

A Spot node's preemption, an eviction or an OOM kill ends an attempt without
warning; the next attempt should not transcribe hours of audio again. After each
window the worker writes that window's segments to `.partial/window-NNNNN.json` in
its output (an S3 prefix or a folder). Every file carries a key: a hash of the
upload's identity (S3 ETag, or a local file's size and mtime) and of every setting
that changes the text (model, device, compute type, language, beam, batch, VAD,
word timestamps, window length). A new attempt uses the windows that carry its own
key, consecutive from the first; anything else is another upload's or other
settings' work, and is deleted. The checkpoint is removed once `manifest.json` is
written, or when the input turns out to be unusable.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from typing import Any

from .errors import WorkerError
from .storage import Output
from .transcribe import WindowResult

log = logging.getLogger(__name__)

FOLDER = ".partial"
FORMAT = 1


def checkpoint_key(identity: str, settings: dict[str, Any]) -> str:
    """Equal for the same upload and the same text-changing settings, only then."""
    text = json.dumps({"format": FORMAT, "input": identity, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Checkpoint:
    def __init__(self, output: Output, key: str) -> None:
        self.output = output
        self.key = key
        self._written: list[str] = []

    def load(self) -> list[WindowResult]:
        """This key's finished windows, consecutive from the first; others deleted."""
        names = self.output.list(FOLDER)
        finished: list[WindowResult] = []
        stale: list[str] = []
        for name in names:
            data = self.output.read(name)
            try:
                entry = json.loads(data or b"")
                window = WindowResult.from_dict(entry["window"])
                usable = entry["key"] == self.key
            except (ValueError, KeyError, TypeError):
                usable = False
            expected_start = finished[-1].end if finished else 0
            if usable and window.index == len(finished) and window.start == expected_start:
                finished.append(window)
                self._written.append(name)
            else:
                stale.append(name)
        if stale:
            log.info("ignoring %d checkpoint files of another upload or other settings", len(stale))
            self._discard(stale)
        return finished

    def save(self, window: WindowResult) -> None:
        name = f"{FOLDER}/window-{window.index:05d}.json"
        data = json.dumps({"key": self.key, "window": asdict(window)}, ensure_ascii=False)
        self.output.write(name, data.encode())
        self._written.append(name)

    def remove(self) -> None:
        if self._written:
            self._discard(self._written)
            self._written = []

    def _discard(self, names: list[str]) -> None:
        """Delete checkpoint files, best effort: a leftover file is never used by another
        upload or setting (its key differs) and is replaced by the next run, so a store
        that refuses the delete must not fail a video whose results are written."""
        try:
            self.output.delete(names)
        except WorkerError as err:
            log.warning("could not delete %d checkpoint files (harmless): %s", len(names), err)


__all__ = ["FOLDER", "Checkpoint", "checkpoint_key"]
