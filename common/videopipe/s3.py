"""S3 URIs and clients for any S3-compatible store (AWS S3, GCS interop, MinIO, Beget).

One place builds boto3 clients so that every part treats endpoints the same way:
an explicit endpoint wins, otherwise boto3's own configuration applies
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_REGION`, profiles, Workload Identity).
Stores other than AWS get path-style addressing, which all of them accept. The SQS client that
the operator reads bucket events with is built here too, the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import boto3
from botocore.config import Config

SCHEME = "s3://"


@dataclass(frozen=True)
class S3Uri:
    """`s3://bucket/key`; `key` may be empty or end with `/` for a prefix."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith(SCHEME):
            raise ValueError(f"not an S3 URI (expected s3://bucket/key): {uri!r}")
        bucket, _, key = uri[len(SCHEME) :].partition("/")
        if not bucket:
            raise ValueError(f"S3 URI has no bucket: {uri!r}")
        return cls(bucket, key)

    def join(self, *parts: str) -> S3Uri:
        key = self.key
        for part in parts:
            key = f"{key.rstrip('/')}/{part.lstrip('/')}" if key else part.lstrip("/")
        return S3Uri(self.bucket, key)

    @property
    def name(self) -> str:
        """The last path element, for messages (`talk.mp4`)."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def is_s3_uri(value: str) -> bool:
    return value.startswith(SCHEME)


def endpoint_from_env() -> str | None:
    """The endpoint boto3 itself would use from the environment, if any."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def make_client(
    endpoint: str | None = None,
    region: str | None = None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    max_attempts: int = 5,
    connect_timeout: float = 5,
    read_timeout: float = 60,
) -> Any:
    """A boto3 S3 client with bounded retries and timeouts (a dead store fails fast)."""
    endpoint = endpoint or endpoint_from_env()
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def make_sqs_client(
    endpoint: str | None = None,
    region: str | None = None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    read_timeout: float = 30,
) -> Any:
    """A boto3 SQS client for bucket events; `read_timeout` must outlast a 20 s long poll."""
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=read_timeout,
    )
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL_SQS") or None,
        region_name=region or os.environ.get("AWS_REGION") or "us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def quote_key(key: str) -> str:
    """A key made safe for a URL path (unicode, spaces), reversible with `unquote`."""
    return quote(key, safe="/")


__all__ = [
    "S3Uri",
    "endpoint_from_env",
    "is_s3_uri",
    "make_client",
    "make_sqs_client",
    "quote_key",
    "unquote",
]
