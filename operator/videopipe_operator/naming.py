"""Deterministic names: the same upload always maps to the same VideoJob and Job.

Idempotence rests on this. The daemon may discover an object twice (a crash, a slow list, a second
poll before the first claim finished); both times it computes the same VideoJob name, and the API
server's AlreadyExists says "already claimed". A re-upload with new content has a new ETag, hence a
new name. A name is a readable slug of the file name plus a hash of (source, key, ETag), so that
unicode, spaces and 1,000-byte keys all give a valid RFC 1123 label of at most 63 characters.

The Job is named `<videojob>-<attempt>`: a retry is a new Job, a crash between "create Job" and
"record it" finds the same Job again. VideoJob names are kept to 56 characters so that the Job
name (also a pod label value, `job-name`) stays within 63 for any attempt below 1,000,000.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LABEL = 63
MAX_VIDEOJOB_NAME = 56
HASH_CHARS = 12
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def normalize_etag(etag: str) -> str:
    """S3 returns ETags quoted (`"abc"`); compare and hash them without quotes."""
    return etag.strip().strip('"')


def slug(text: str, limit: int) -> str:
    """Lower-case ASCII letters, digits and single dashes; accents folded, the rest dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = _NOT_ALLOWED.sub("-", folded.lower()).strip("-")
    return cleaned[:limit].strip("-")


def digest(*parts: str, length: int = HASH_CHARS) -> str:
    """A short hex digest of the parts, unambiguous (NUL-separated)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def videojob_name(source: str, key: str, etag: str) -> str:
    """`<file-slug>-<hash>`: a valid label, ≤ 56 chars, unique per (source, key, ETag)."""
    base = key.rstrip("/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    room = MAX_VIDEOJOB_NAME - HASH_CHARS - 1
    readable = slug(stem, room) or "video"
    return f"{readable}-{digest(source, key, normalize_etag(etag))}"


def job_name(videojob: str, attempt: int) -> str:
    """The Job of one attempt: `<videojob>-<attempt>`."""
    if attempt < 1:
        raise ValueError(f"attempts start at 1, got {attempt}")
    name = f"{videojob}-{attempt}"
    if len(name) > MAX_LABEL:
        raise ValueError(f"Job name {name!r} is longer than {MAX_LABEL} characters")
    return name


def path_hash(source: str, path: str) -> str:
    """A label value that groups every VideoJob of one video path, whatever its content."""
    return digest(source, path, length=32)


def is_label_value(value: str) -> bool:
    return len(value) <= MAX_LABEL and bool(_LABEL.match(value))


__all__ = [
    "MAX_VIDEOJOB_NAME",
    "digest",
    "is_label_value",
    "job_name",
    "normalize_etag",
    "path_hash",
    "slug",
    "videojob_name",
]
