"""Where a video comes from and where its results go: a local path or S3.

For S3 input we hand ffmpeg a presigned URL rather than downloading the object, so a multi-GB
video is read in byte ranges and never lands on disk (measured: faster than
download-then-extract; docs/architecture.md, "Measured facts"). A store that refuses range
requests gets a plain download into `$TMPDIR` instead, because ffmpeg must seek in an mp4 whose
index sits at the end. Results are written one object per file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from videopipe.localstore import file_etag
from videopipe.reasons import Reason
from videopipe.s3 import S3Uri, is_s3_uri, make_client
from videopipe.s3errors import classify, error_code

from .errors import ConfigError, Retryable, WorkerError

log = logging.getLogger(__name__)

PRESIGN_SECONDS = 6 * 3600  # outlives the longest extraction
RANGE_PROBE_ATTEMPTS = 4  # waits of 0.5, 1 and 2 s between them
CONTENT_TYPES = {
    ".json": "application/json",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class S3Settings:
    endpoint: str | None = None
    region: str | None = None

    @functools.cached_property
    def client(self) -> Any:
        """One client for input and output: building one costs ~60 ms of CPU."""
        return make_client(self.endpoint, self.region)


@dataclass
class InputObject:
    """What ffmpeg should open, and what we know about it before opening it."""

    uri: str
    name: str  # for messages: `talk.mp4`
    source: str  # a local path or an http(s) URL
    size: int | None = None
    etag: str | None = None
    modified_ns: int | None = None  # a local file's mtime: its identity, with its size

    @property
    def identity(self) -> str:
        """What tells this upload from another one at the same place (for checkpoints)."""
        return self.etag or f"{self.size}:{self.modified_ns}"


@contextlib.contextmanager
def open_input(uri: str, s3: S3Settings) -> Iterator[InputObject]:
    """Resolve INPUT to something ffmpeg can read; clean up any download on exit."""
    if not is_s3_uri(uri):
        path = Path(uri)
        if not path.is_file():
            raise ConfigError(Reason.INPUT_NOT_FOUND, f"input file not found: {uri}")
        stat = path.stat()
        # The ETag `videopipe run` over a local folder knows the file by (its manifest check).
        yield InputObject(
            uri,
            path.name,
            str(path),
            size=stat.st_size,
            etag=file_etag(stat),
            modified_ns=stat.st_mtime_ns,
        )
        return
    location = S3Uri.parse(uri)
    client = s3.client
    head = _s3_call(lambda: client.head_object(Bucket=location.bucket, Key=location.key), uri)
    obj = InputObject(
        uri,
        location.name,
        source="",
        size=int(head["ContentLength"]),
        etag=str(head.get("ETag", "")).strip('"') or None,
    )
    url = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": location.bucket, "Key": location.key},
        ExpiresIn=PRESIGN_SECONDS,
    )
    if obj.size == 0 or accepts_ranges(url):
        obj.source = url
        yield obj
        return
    log.info("the store refuses range requests; downloading %s first", obj.name)
    with tempfile.TemporaryDirectory(prefix="videopipe-") as tmp:
        target = Path(tmp) / "input"
        _s3_call(lambda: client.download_file(location.bucket, location.key, str(target)), uri)
        obj.source = str(target)
        yield obj


def accepts_ranges(url: str, timeout: float = 10, attempts: int = RANGE_PROBE_ATTEMPTS) -> bool:
    """True when a GET for the first byte answers 206 Partial Content.

    Throttling (429, 5xx) and lost connections are asked again, with a doubling wait: a
    busy store would otherwise look like one without ranges and cost a whole download.
    """
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status == 206
        except urllib.error.HTTPError as err:
            if err.code != 429 and err.code < 500:
                # 416 on an empty object still means the server understands ranges.
                return err.code == 416
        except OSError:
            pass
    return False


class Output:
    """A local folder or an S3 prefix that result files are written into."""

    def __init__(self, uri: str, s3: S3Settings) -> None:
        self.uri = uri if uri.endswith("/") else f"{uri}/"
        self._s3_location = S3Uri.parse(self.uri) if is_s3_uri(uri) else None
        self._client = s3.client if self._s3_location else None
        if self._s3_location is None:
            try:
                Path(uri).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(
                    Reason.OUTPUT_NOT_WRITABLE, f"cannot create {uri}: {err}"
                ) from err

    def write(self, name: str, data: bytes) -> str:
        """Write one file and return its URI."""
        if self._s3_location is None:
            path = Path(self.uri) / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.part")
                tmp.write_bytes(data)
                tmp.replace(path)  # readers never see half a file
            except OSError as err:
                raise ConfigError(
                    Reason.OUTPUT_NOT_WRITABLE, f"cannot write {path}: {err}"
                ) from err
            return str(path)
        target = self._s3_location.join(name)
        content_type = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        client = self._client
        _s3_call(
            lambda: client.put_object(
                Bucket=target.bucket, Key=target.key, Body=data, ContentType=content_type
            ),
            str(target),
        )
        return str(target)

    def read(self, name: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        if self._s3_location is None:
            try:
                return (Path(self.uri) / name).read_bytes()
            except FileNotFoundError:
                return None
            except OSError as err:
                raise ConfigError(Reason.OUTPUT_NOT_WRITABLE, f"cannot read {name}: {err}") from err
        target = self._s3_location.join(name)
        client = self._client
        try:
            response = client.get_object(Bucket=target.bucket, Key=target.key)
        except ClientError as err:
            if error_code(err) in {"NoSuchKey", "404"}:
                return None
            raise _worker_error(err, str(target)) from err
        return _s3_call(lambda: response["Body"].read(), str(target))

    def list(self, folder: str) -> list[str]:
        """Names (relative to the output) of the files in `folder`, sorted."""
        if self._s3_location is None:
            path = Path(self.uri) / folder
            return sorted(f"{folder}/{p.name}" for p in path.glob("*") if p.is_file())
        prefix = self._s3_location.join(f"{folder}/")
        client = self._client
        pages = _s3_call(
            lambda: list(
                client.get_paginator("list_objects_v2").paginate(
                    Bucket=prefix.bucket, Prefix=prefix.key
                )
            ),
            str(prefix),
        )
        return sorted(
            f"{folder}/{o['Key'][len(prefix.key) :]}"
            for page in pages
            for o in page.get("Contents", [])
        )

    def delete(self, names: list[str]) -> None:
        """Remove files (missing ones are fine), and a local folder they leave empty."""
        if self._s3_location is None:
            for name in names:
                path = Path(self.uri) / name
                path.unlink(missing_ok=True)
                if path.parent != Path(self.uri):
                    with contextlib.suppress(OSError):
                        path.parent.rmdir()  # only when empty
            return
        client, location = self._client, self._s3_location
        for start in range(0, len(names), 1000):  # DeleteObjects takes 1,000 keys at most
            keys = [{"Key": location.join(n).key} for n in names[start : start + 1000]]
            _s3_call(
                lambda keys=keys: client.delete_objects(
                    Bucket=location.bucket, Delete={"Objects": keys, "Quiet": True}
                ),
                self.uri,
            )


def _s3_call(call: Any, uri: str) -> Any:
    """Run one S3 request, turning botocore's errors into worker errors with advice."""
    try:
        return call()
    except (ClientError, BotoCoreError) as err:
        raise _worker_error(err, uri) from err


def _worker_error(err: ClientError | BotoCoreError, uri: str) -> WorkerError:
    """The shared classifier's reason (`videopipe.s3errors`), as the worker's exit class."""
    reason = classify(err)
    code = error_code(err) if isinstance(err, ClientError) else ""
    if reason is Reason.OBJECT_NOT_FOUND:
        return ConfigError(Reason.INPUT_NOT_FOUND, f"no such object: {uri}")
    if reason is Reason.BUCKET_NOT_FOUND:
        return ConfigError(Reason.BUCKET_NOT_FOUND, f"bucket does not exist: {uri}")
    if isinstance(err, NoCredentialsError) or (
        isinstance(err, BotoCoreError) and "credentials" in str(err).lower()
    ):
        return ConfigError(
            Reason.S3_CREDENTIALS_MISSING,
            f"no S3 credentials for {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or use workload identity",
        )
    if reason is Reason.ACCESS_DENIED:
        return ConfigError(
            Reason.S3_ACCESS_DENIED,
            f"access denied to {uri} ({code}): check the credentials and the bucket policy",
        )
    if reason is Reason.ENDPOINT_UNREACHABLE:
        return Retryable(
            Reason.S3_UNREACHABLE,
            f"cannot reach the S3 endpoint for {uri}: {err}. "
            "Check --endpoint-url / AWS_ENDPOINT_URL and the network.",
        )
    if reason in (Reason.THROTTLED, Reason.UNAVAILABLE):
        return Retryable(Reason.S3_ERROR, f"S3 is failing for {uri}: {code}")
    return Retryable(Reason.S3_ERROR, f"S3 request for {uri} failed: {code or err}")


__all__ = ["InputObject", "Output", "S3Settings", "accepts_ranges", "open_input"]
