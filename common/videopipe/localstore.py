"""The folder layout on a local file system: `videopipe run ./videos` without S3.

The same folders as in a bucket (`pending/ processing/ completed/ failed/ results/` under one
root, `videopipe.layout`), with the same answers as `videopipe.store.Store` to what
`videopipe.settle` and the runner ask (the `settle.Storage` protocol), so that a video settles
the same way in both. What differs, and why it is simpler here:

- A move is `os.rename`: atomic, so a move is done or not done and needs no copy to recognise.
  Of two runners renaming the same file, exactly one finds it; the other gets "missing".
- A file's ETag is made from its inode, size and modification time (`file_etag`). A rename keeps
  all three, so the identity never changes on the way, and a new file under the same name (a
  re-upload) has another one. The worker records the same value in `manifest.json`.
- S3 keeps our metadata (attempts, claimant) on the object; here it lives beside the folders in
  `.videopipe/meta/<path>.json`, valid only for the file whose ETag it names, so that `mv
  failed/x pending/x` continues the attempt count and a new file starts at 1.

Files are written to a hidden temporary name and renamed, so no reader sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from videopipe.layout import Folder, Layout
from videopipe.reasons import Reason
from videopipe.store import (
    META_ATTEMPTS,
    META_VIDEOJOB,
    MoveResult,
    ObjectInfo,
    StoreError,
    claimed_by,
)

META_FOLDER = ".videopipe/meta"


def file_etag(stat: os.stat_result) -> str:
    """A local file's ETag: the same across renames, another one for a new file."""
    return f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"


@dataclass
class LocalStore:
    """One folder root on this machine; keys are paths relative to it, as in a bucket."""

    root: Path
    layout: Layout = field(default_factory=Layout)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    # -- checks --

    def check_bucket(self) -> None:
        """Raise StoreError unless the root is a folder we can use; create missing folders."""
        if not self.root.is_dir():
            raise StoreError(Reason.BUCKET_NOT_FOUND, "stat", f"{self.root} is not a folder")
        try:
            for folder in Folder:
                (self.root / self.layout.folder(folder)).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(Reason.ACCESS_DENIED, "mkdir", str(e)) from e

    def fits(self, path: str) -> bool:
        """True if every name the path needs is within the file system's limits."""
        try:
            name_max = os.pathconf(self.root, "PC_NAME_MAX")
        except (OSError, ValueError):
            name_max = 255
        longest = len(f"{path.rsplit('/', 1)[-1]}.error.json".encode())
        return longest <= name_max and all(len(p.encode()) <= name_max for p in path.split("/"))

    def location(self, key: str) -> str:
        """What the worker is given to read or write `key`: a local path."""
        return str(self.root / key)

    # -- reading --

    def list_folder(self, folder: Folder, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Videos in a folder, in key order; hidden files (partial writes) are not videos."""
        base = self.root / self.layout.folder(folder)
        found = sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)
        )
        count = 0
        for key in found:
            if not Layout.is_video_key(key):
                continue
            info = self.head(key)
            if info is None:
                continue
            yield info
            count += 1
            if limit is not None and count >= limit:
                return

    def list_pending(self, limit: int | None = None) -> Iterator[ObjectInfo]:
        return self.list_folder(Folder.PENDING, limit)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            stat = (self.root / key).stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(Reason.STORAGE_ERROR, "stat", str(e)) from e
        etag = file_etag(stat)
        meta = self._meta(self._path_of(key))
        return ObjectInfo(
            key=key,
            etag=etag,
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            metadata=meta if meta.pop("etag", None) == etag else {},
        )

    def results_manifest(self, path: str) -> dict[str, Any] | None:
        return self._read_json(self.root / self.layout.results_prefix(path) / "manifest.json")

    def read_error(self, path: str) -> dict[str, Any] | None:
        return self._read_json(self.root / self.layout.error_key(path))

    # -- writing --

    def move(
        self,
        path: str,
        src: Folder,
        dst: Folder,
        *,
        identity: str,
        expect_etag: str | None = None,
        attempts: int | None = None,
        videojob: str | None = None,
    ) -> MoveResult:
        """Rename `src/<path>` to `dst/<path>` if it is this video; `Store.move`'s contract."""
        src_key, dst_key = self.layout.key(src, path), self.layout.key(dst, path)
        source = self.head(src_key)
        ours = source is not None and (
            (expect_etag is not None and source.etag == expect_etag)
            or (
                source.identity == identity
                and (src is Folder.PENDING or claimed_by(source, videojob))
            )
        )
        if source is None or not ours:
            target = self.head(dst_key)
            if target is None or target.identity != identity or not claimed_by(target, videojob):
                return MoveResult.MISSING
            return MoveResult.ALREADY_MOVED
        meta = dict(source.metadata or {})
        if attempts is not None:
            meta[META_ATTEMPTS] = str(attempts)
        if videojob:
            meta[META_VIDEOJOB] = videojob
        self._write_json(self._meta_file(path), {**meta, "etag": source.etag})
        target_file = self.root / dst_key
        try:
            target_file.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.root / src_key, target_file)
        except FileNotFoundError:  # another runner renamed it first
            return MoveResult.MISSING
        except OSError as e:
            raise StoreError(Reason.STORAGE_ERROR, "rename", str(e)) from e
        self._prune(self.root / src_key)
        return MoveResult.MOVED

    def delete(self, key: str) -> None:
        """Delete a file; a missing one is fine."""
        try:
            (self.root / key).unlink(missing_ok=True)
        except OSError as e:
            raise StoreError(Reason.STORAGE_ERROR, "unlink", str(e)) from e
        self._prune(self.root / key)

    def write_error(self, path: str, report: Mapping[str, Any]) -> str:
        """Write `failed/<path>.error.json` (overwriting: the last attempt's word counts)."""
        key = self.layout.error_key(path)
        self._write_json(self.root / key, dict(report))
        return key

    def delete_error(self, path: str) -> None:
        self.delete(self.layout.error_key(path))

    # -- helpers --

    def _path_of(self, key: str) -> str:
        for folder in Folder:
            with contextlib.suppress(ValueError):
                return self.layout.path_of(key, folder)
        return key

    def _meta_file(self, path: str) -> Path:
        return self.root / self.layout.prefix / META_FOLDER / f"{path}.json"

    def _meta(self, path: str) -> dict[str, str]:
        data = self._read_json(self._meta_file(path)) or {}
        return {str(k): str(v) for k, v in data.items()}

    def _read_json(self, file: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None
        except OSError as e:
            raise StoreError(Reason.STORAGE_ERROR, "read", str(e)) from e
        return data if isinstance(data, dict) else None

    def _write_json(self, file: Path, data: dict[str, Any]) -> None:
        body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        tmp = file.with_name(f".{file.name}.{os.getpid()}.part")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(body, encoding="utf-8")
            os.replace(tmp, file)
        except OSError as e:
            raise StoreError(Reason.STORAGE_ERROR, "write", str(e)) from e

    def _prune(self, file: Path) -> None:
        """Remove sub-folders a move or delete left empty (a folder itself stays)."""
        tops = {self.root / self.layout.folder(f) for f in Folder}
        parent = file.parent
        while parent not in tops and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent


__all__ = ["META_FOLDER", "LocalStore", "file_etag"]
