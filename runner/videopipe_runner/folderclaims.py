"""Exclusive claims on videos in a local folder: an OS lock per video, held while it is worked on.

The same promise as `claims.Claims` (while a runner holds `<path>`, nobody else moves it), with
what one machine offers instead of conditional writes. A runner claims `<path>` by taking an
exclusive `flock` on `<root>/.videopipe/locks/<path>` (non-blocking: one holder, the others are
told it is taken), and only then renames the video into `processing/`; `os.rename` is atomic, so
even two claimants of one file could not both move it. The OS releases the lock when its holder
dies, however it dies: a crashed runner's videos are free at once, no lease to wait out.

A released lock file is deleted. Someone may have opened it just before and lock the deleted
file; so after locking, the holder checks the path still names the file it locked, and tries
again otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

from videopipe_runner.claims import LOCKS_FOLDER, Lease, LeaseLost, LockInfo, new_owner_id
from videopipe_runner.policy import Support

NEVER_EXPIRES = float("inf")


class FolderClaims:
    """Locks for one folder root, with `claims.Claims`' interface; thread-safe."""

    conditional = True  # the locks are exclusive: nothing to turn off

    def __init__(self, root: Path, *, owner: str | None = None, lease_seconds: float = 60) -> None:
        self.root = Path(root)
        self.owner = owner or new_owner_id()
        self.lease_seconds = lease_seconds  # only paces the heartbeat: an OS lock never expires
        self._held: dict[str, tuple[Lease, int]] = {}
        self._mutex = threading.Lock()

    def lock_file(self, path: str) -> Path:
        return self.root / LOCKS_FOLDER / path

    def probe(self) -> Support:
        return Support.HONOURED

    def acquire(self, path: str) -> Lease | None:
        """Lock `path`; None if another runner (or another thread here) holds it."""
        file = self.lock_file(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if _same_file(fd, file):
                _write_owner(fd, self.owner, path)
                lease = Lease(path=path, key=str(file), etag="", seconds=NEVER_EXPIRES)
                with self._mutex:
                    self._held[path] = (lease, fd)
                return lease
            os.close(fd)  # deleted by its last holder after we opened it: open it again
        return None

    def inspect(self, path: str) -> LockInfo | None:
        """Who holds `path`, or None if nobody does (a stale file of a dead runner is nobody)."""
        file = self.lock_file(path)
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                body = _read_owner(file)
                return LockInfo(
                    path=path,
                    etag="",
                    owner=str(body.get("owner", "unknown")),
                    host=str(body.get("host", "")),
                    lease_seconds=NEVER_EXPIRES,
                    age_seconds=0.0,
                )
            return None
        finally:
            os.close(fd)

    def renew(self, lease: Lease) -> None:
        """Nothing to renew; raises LeaseLost only for a lease already given up."""
        if lease.lost.is_set():
            raise LeaseLost(lease.path)
        lease.renewed = time.monotonic()

    def release(self, lease: Lease) -> None:
        with lease.mutex:
            if lease.released:
                return
            lease.released = True
            with self._mutex:
                _, fd = self._held.pop(lease.path, (None, -1))
            if fd < 0:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_file(lease.path))  # while still locked: nobody relies on it
            os.close(fd)
            _prune(self.lock_file(lease.path).parent, self.root / LOCKS_FOLDER)

    def held(self) -> list[Lease]:
        with self._mutex:
            return [lease for lease, _ in self._held.values()]

    def sweep(self, keep: set[str]) -> int:
        """Nothing to sweep: a dead runner's lock is released by the OS (its file is reused)."""
        return 0


def _same_file(fd: int, file: Path) -> bool:
    try:
        on_disk = file.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _write_owner(fd: int, owner: str, path: str) -> None:
    body = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid(), "path": path}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(body).encode(), 0)


def _read_owner(file: Path) -> dict[str, object]:
    try:
        data = json.loads(file.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _prune(folder: Path, top: Path) -> None:
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


__all__ = ["FolderClaims"]
