"""S3 operations on the folder layout, shared by the operator and `videopipe run` (boto3 only).

`layout.py` says where a video's keys are; this module does things to them: list `pending/`
page by page, move a video between folders, write `failed/<path>.error.json`, check results.

A move is copy-then-delete, made idempotent rather than atomic (S3 has no rename):

- The copy carries the video's identity in its metadata (`videopipe-etag`: the ETag it had when
  it was discovered, and `videopipe-attempts`). A multipart upload's ETag changes when it is
  copied (docs/architecture.md, "Measured facts"), so the identity, not the ETag, says "this is
  the same video": after a crash between copy and delete, the next attempt finds the copy and
  knows it is its own.
- The source is deleted only if it is still the version that was copied (`IfMatch`), so a user's
  re-upload that lands between copy and delete is not lost. Stores that do not support the
  condition get a plain delete (the window is milliseconds).
- `delete_object` of a missing key succeeds, and a copy over an identical copy is harmless, so
  running a move twice gives the same result as running it once.

Exclusive claims are not this module's business: the operator's VideoJob (a Kubernetes object
with a deterministic name) is the claim; a single-machine runner must add its own lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from videopipe.layout import RESULT_FILES, Folder, Layout
from videopipe.reasons import Reason
from videopipe.s3errors import classify
from videopipe.s3errors import error_code as _error_code
from videopipe.s3errors import status as _status

META_ETAG = "videopipe-etag"
META_ATTEMPTS = "videopipe-attempts"
META_VIDEOJOB = "videopipe-videojob"
MAX_KEY_BYTES = 1024
PAGE_SIZE = 1000  # real S3 caps a page at 1,000 keys; moto would return more
# Server-side copies above 4 GiB use multipart copy (CopyObject stops at 5 GiB). In the calling
# thread: a failure must surface in the caller before it deletes the source.
_COPY_CONFIG = TransferConfig(
    multipart_threshold=4 * 1024**3, multipart_chunksize=512 * 1024**2, use_threads=False
)
_LONGEST_RESULT = max(len(f"/{name}") for name in RESULT_FILES)


class StoreError(Exception):
    """An S3 failure with a bounded `reason` (for conditions and metrics) and the operation."""

    def __init__(self, reason: Reason, operation: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.operation = operation
        self.message = message


def normalize_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"')


@dataclass(frozen=True)
class ObjectInfo:
    """One object as listed (`metadata` is None) or as read by HEAD (`metadata` is a dict)."""

    key: str
    etag: str  # without quotes
    size: int
    last_modified: datetime | None = None
    metadata: Mapping[str, str] | None = None
    content_type: str | None = None

    @property
    def identity(self) -> str:
        """The ETag the video had when first discovered: kept in our copies' metadata."""
        if self.metadata and self.metadata.get(META_ETAG):
            return normalize_etag(self.metadata[META_ETAG])
        return self.etag

    @property
    def attempts(self) -> int:
        """Attempts already made on this video, as recorded on our copies (0 if none)."""
        try:
            return max(0, int((self.metadata or {}).get(META_ATTEMPTS, 0)))
        except ValueError:
            return 0


def claimed_by(obj: ObjectInfo, videojob: str | None) -> bool:
    """True unless `obj` names a claimant (`videopipe-videojob`) other than `videojob`."""
    claimant = (obj.metadata or {}).get(META_VIDEOJOB)
    return not (videojob and claimant and claimant != videojob)


class MoveResult(StrEnum):
    MOVED = "moved"  # copied and the source deleted now
    ALREADY_MOVED = "already-moved"  # an earlier run did it (the copy is ours, the source gone)
    MISSING = "missing"  # neither our source nor our copy exists


@dataclass
class Store:
    """One bucket root: `client` is a boto3 S3 client (see `videopipe.s3.make_client`)."""

    client: Any
    bucket: str
    layout: Layout = field(default_factory=Layout)
    conditional_delete: bool = True  # turned off when the store rejects DeleteObject If-Match
    page_size: int = PAGE_SIZE

    # -- checks --

    def check_bucket(self) -> None:
        """Raise StoreError if the bucket cannot be reached (absent, denied, endpoint down)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            # HEAD answers have no body: a bare 404 is the only way S3 says "no such bucket".
            reason = Reason.BUCKET_NOT_FOUND if _status(e) == 404 else classify(e)
            raise StoreError(reason, "HeadBucket", _describe(e)) from e
        except BotoCoreError as e:
            raise StoreError(classify(e), "HeadBucket", _describe(e)) from e

    def fits(self, path: str) -> bool:
        """True if every key this path will need is within S3's 1,024-byte key limit."""
        longest = max(
            len(self.layout.key(Folder.PROCESSING, path).encode()),
            len(self.layout.key(Folder.COMPLETED, path).encode()),
            len(self.layout.error_key(path).encode()),
            len(self.layout.results_prefix(path).encode()) + _LONGEST_RESULT - 1,
        )
        return longest <= MAX_KEY_BYTES

    # -- reading --

    def list_folder(self, folder: Folder, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Videos in a folder, paginated (1,000 a page), in key order; at most `limit`."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.layout.folder(folder),
            PaginationConfig={"PageSize": self.page_size},
        )
        count = 0
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if not Layout.is_video_key(item["Key"]):
                        continue
                    yield ObjectInfo(
                        key=item["Key"],
                        etag=normalize_etag(item.get("ETag")),
                        size=int(item.get("Size", 0)),
                        last_modified=item.get("LastModified"),
                    )
                    count += 1
                    if limit is not None and count >= limit:
                        return
        except (ClientError, BotoCoreError) as e:
            raise StoreError(classify(e), "ListObjectsV2", _describe(e)) from e

    def location(self, key: str) -> str:
        """What the worker is given to read or write `key`: its S3 URI."""
        return f"s3://{self.bucket}/{key}"

    def list_pending(self, limit: int | None = None) -> Iterator[ObjectInfo]:
        return self.list_folder(Folder.PENDING, limit)

    def head(self, key: str) -> ObjectInfo | None:
        """The object with its metadata, or None if it does not exist."""
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _status(e) == 404 or _error_code(e) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StoreError(classify(e), "HeadObject", _describe(e)) from e
        except BotoCoreError as e:
            raise StoreError(classify(e), "HeadObject", _describe(e)) from e
        return ObjectInfo(
            key=key,
            etag=normalize_etag(resp.get("ETag")),
            size=int(resp.get("ContentLength", 0)),
            last_modified=resp.get("LastModified"),
            metadata=dict(resp.get("Metadata") or {}),
            content_type=resp.get("ContentType"),
        )

    def results_manifest(self, path: str) -> dict[str, Any] | None:
        """The worker's `results/<path>/manifest.json` (written last), or None if absent or
        unreadable. Whether it is this upload's is `videopipe.settle.results_of`'s question."""
        return self._read_json(f"{self.layout.results_prefix(path)}manifest.json")

    def read_error(self, path: str) -> dict[str, Any] | None:
        return self._read_json(self.layout.error_key(path))

    def _read_json(self, key: str) -> dict[str, Any] | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
            data = json.loads(resp["Body"].read())
        except ClientError as e:
            if _status(e) == 404 or _error_code(e) in {"NoSuchKey", "404"}:
                return None
            raise StoreError(classify(e), "GetObject", _describe(e)) from e
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

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
        """Move `src/<path>` to `dst/<path>` if it is this video; idempotent.

        The source counts as this video if its ETag is `expect_etag` (as listed) or its recorded
        identity is `identity`. The copy records `identity`, `attempts` and `videojob`; an
        existing copy counts as done only if it has this identity and no other `videojob`.
        """
        src_key, dst_key = self.layout.key(src, path), self.layout.key(dst, path)
        identity = normalize_etag(identity)
        source = self.head(src_key)
        # In pending/ the object is the user's (whoever claimed an earlier copy); elsewhere it is
        # the claimant's named in its metadata.
        ours = source is not None and (
            (expect_etag is not None and source.etag == normalize_etag(expect_etag))
            or (
                source.identity == identity
                and (src is Folder.PENDING or claimed_by(source, videojob))
            )
        )
        if source is not None and ours:
            metadata = dict(source.metadata or {})
            metadata[META_ETAG] = identity
            if attempts is not None:
                metadata[META_ATTEMPTS] = str(attempts)
            if videojob:
                metadata[META_VIDEOJOB] = videojob
            extra: dict[str, Any] = {
                "MetadataDirective": "REPLACE",
                "Metadata": metadata,
                "CopySourceIfMatch": f'"{source.etag}"',
            }
            if source.content_type:
                extra["ContentType"] = source.content_type
            try:
                self.client.copy(
                    {"Bucket": self.bucket, "Key": src_key},
                    self.bucket,
                    dst_key,
                    ExtraArgs=extra,
                    Config=_COPY_CONFIG,
                )
            except ClientError as e:
                if _status(e) == 412:  # replaced between HEAD and copy: not ours any more
                    return self._already_moved(dst_key, identity, videojob)
                raise StoreError(classify(e), "CopyObject", _describe(e)) from e
            except BotoCoreError as e:
                raise StoreError(classify(e), "CopyObject", _describe(e)) from e
            self._delete_if_unchanged(src_key, source.etag)
            return MoveResult.MOVED
        return self._already_moved(dst_key, identity, videojob)

    def _already_moved(self, dst_key: str, identity: str, videojob: str | None) -> MoveResult:
        """The copy is ours if it has our identity and, when we name one, our claimant: two
        claimants of one video (two VideoSources over one bucket) never both get it."""
        target = self.head(dst_key)
        if target is None or target.identity != identity or not claimed_by(target, videojob):
            return MoveResult.MISSING
        return MoveResult.ALREADY_MOVED

    def _delete_if_unchanged(self, key: str, etag: str) -> None:
        if self.conditional_delete:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=f'"{etag}"')
                return
            except ClientError as e:
                if _status(e) == 412:
                    return  # a new upload took its place: leave it for its own VideoJob
                if _status(e) == 404:
                    return
                if _status(e) in {400, 501} or _error_code(e) == "NotImplemented":
                    self.conditional_delete = False  # this store does not do If-Match deletes
                else:
                    raise StoreError(classify(e), "DeleteObject", _describe(e)) from e
            except BotoCoreError as e:
                raise StoreError(classify(e), "DeleteObject", _describe(e)) from e
        self.delete(key)

    def delete(self, key: str) -> None:
        """Delete a key; a missing key is fine (S3 answers 204 anyway)."""
        self._call("DeleteObject", self.client.delete_object, Bucket=self.bucket, Key=key)

    def write_error(self, path: str, report: Mapping[str, Any]) -> str:
        """Write `failed/<path>.error.json` (overwriting: the last attempt's word counts)."""
        key = self.layout.error_key(path)
        body = json.dumps(dict(report), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        self._call(
            "PutObject",
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body.encode(),
            ContentType="application/json",
        )
        return key

    def delete_error(self, path: str) -> None:
        self.delete(self.layout.error_key(path))

    def _call(self, operation: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as e:
            raise StoreError(classify(e), operation, _describe(e)) from e


def error_report(
    *,
    path: str,
    reason: str,
    message: str,
    attempt: int,
    exit_code: int | None = None,
    videojob: str | None = None,
    job: str | None = None,
    source: str | None = None,
    worker: Mapping[str, Any] | None = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    """The body of `failed/<path>.error.json`: why, when, which attempt (`videopipe.layout`)."""
    report: dict[str, Any] = {
        "path": path,
        "reason": reason,
        "message": message,
        "attempt": attempt,
        "failedAt": (when or datetime.now(UTC)).isoformat(timespec="seconds"),
        "retry": "move this object from failed/ back to pending/ to try again",
    }
    optional = {
        "exitCode": exit_code,
        "videojob": videojob,
        "job": job,
        "source": source,
        "worker": dict(worker) if worker else None,
    }
    report.update({k: v for k, v in optional.items() if v is not None})
    return report


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '') or exc}"
    return str(exc)


__all__ = [
    "MAX_KEY_BYTES",
    "META_ATTEMPTS",
    "META_ETAG",
    "META_VIDEOJOB",
    "MoveResult",
    "ObjectInfo",
    "Store",
    "StoreError",
    "claimed_by",
    "error_report",
    "normalize_etag",
]
