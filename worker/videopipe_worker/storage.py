"""Where a video comes from and where its results go: a local path or S3.

For S3 input we hand ffmpeg a presigned URL rather than downloading the object, so
a multi-GB video is read in byte ranges and never lands on disk (measured: faster
than download-then-extract, see FACTS.md). A store that refuses range requests gets
a plain download into `$TMPDIR` instead, because ffmpeg must seek in an mp4 whose
index sits at the end. Results are written one object per file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from videopipe.s3 import S3Uri, is_s3_uri, make_client

from .errors import ConfigError, Retryable, WorkerError

log = logging.getLogger(__name__)

PRESIGN_SECONDS = 6 * 3600  # outlives the longest extraction
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
            raise ConfigError("InputNotFound", f"input file not found: {uri}")
        stat = path.stat()
        yield InputObject(
            uri, path.name, str(path), size=stat.st_size, modified_ns=stat.st_mtime_ns
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


def accepts_ranges(url: str, timeout: float = 10) -> bool:
    """True when a GET for the first byte answers 206 Partial Content."""
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 206
    except urllib.error.HTTPError as err:
        # 416 on an empty object still means the server understands ranges.
        return err.code == 416
    except OSError:
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
                raise ConfigError("OutputNotWritable", f"cannot create {uri}: {err}") from err

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
                raise ConfigError("OutputNotWritable", f"cannot write {path}: {err}") from err
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
                raise ConfigError("OutputNotWritable", f"cannot read {name}: {err}") from err
        target = self._s3_location.join(name)
        client = self._client
        try:
            response = client.get_object(Bucket=target.bucket, Key=target.key)
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code", "")) in {"NoSuchKey", "404"}:
                return None
            raise _classify_client_error(err, str(target)) from err
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
    except ClientError as err:
        raise _classify_client_error(err, uri) from err
    except EndpointConnectionError as err:
        raise Retryable(
            "S3Unreachable",
            f"cannot reach the S3 endpoint for {uri}: {err}. "
            "Check --endpoint-url / AWS_ENDPOINT_URL and the network.",
        ) from err
    except BotoCoreError as err:
        if "credentials" in str(err).lower():
            raise ConfigError(
                "S3CredentialsMissing",
                f"no S3 credentials for {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "or use workload identity",
            ) from err
        raise Retryable("S3Error", f"S3 request for {uri} failed: {err}") from err


def _classify_client_error(err: ClientError, uri: str) -> WorkerError:
    code = str(err.response.get("Error", {}).get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in {"NoSuchKey", "404", "NotFound"}:
        return ConfigError("InputNotFound", f"no such object: {uri}")
    if code == "NoSuchBucket":
        return ConfigError("BucketNotFound", f"bucket does not exist: {uri}")
    if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
        return ConfigError(
            "S3AccessDenied",
            f"access denied to {uri} ({code}): check the credentials and the bucket policy",
        )
    if status >= 500 or code in {"SlowDown", "RequestTimeout", "InternalError"}:
        return Retryable("S3Error", f"S3 is failing for {uri}: {code}")
    return Retryable("S3Error", f"S3 request for {uri} failed: {code} {err}")


__all__ = ["InputObject", "Output", "S3Settings", "accepts_ranges", "open_input"]
