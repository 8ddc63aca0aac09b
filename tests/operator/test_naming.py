"""Deterministic names: valid labels for any key, stable, and distinct where they must be."""

from __future__ import annotations

import pytest
from videopipe_operator import naming

KEYS = [
    "pending/talk.mp4",
    "pending/Überraschung café/Vortrag über Öl 2024.mp4",
    "pending/日本語のビデオ.mov",
    "pending/with spaces and (parens) & symbols!.mkv",
    "pending/" + "very-long-folder-name/" * 40 + "clip.mp4",
    "pending/.hidden",
    "pending/UPPER_case.MP4",
    "pending/---.mp4",
    "pending/a",
]


@pytest.mark.parametrize("key", KEYS)
def test_videojob_name_is_a_valid_short_label(key: str) -> None:
    name = naming.videojob_name("talks", key, '"0123456789abcdef"')
    assert naming.is_label_value(name), name
    assert len(name) <= naming.MAX_VIDEOJOB_NAME
    assert naming.is_label_value(naming.job_name(name, 999_999))


@pytest.mark.parametrize("key", KEYS)
def test_videojob_name_is_deterministic_and_ignores_etag_quotes(key: str) -> None:
    assert naming.videojob_name("talks", key, '"abc"') == naming.videojob_name("talks", key, "abc")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("talks", "pending/a.mp4", "e1"), ("talks", "pending/a.mp4", "e2")),  # new content
        (("talks", "pending/a.mp4", "e1"), ("other", "pending/a.mp4", "e1")),  # other source
        (("talks", "pending/a.mp4", "e1"), ("talks", "pending/x/a.mp4", "e1")),  # other folder
        (("talks", "pending/ab", "c"), ("talks", "pending/a", "bc")),  # no ambiguity in joining
    ],
)
def test_videojob_names_differ(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    assert naming.videojob_name(*a) != naming.videojob_name(*b)


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("pending/talk.mp4", "talk-"),
        ("pending/Überraschung.mp4", "uberraschung-"),
        ("pending/日本語.mov", "video-"),
        ("pending/a b/C d.mp4", "c-d-"),
    ],
)
def test_videojob_name_is_readable(key: str, prefix: str) -> None:
    assert naming.videojob_name("s", key, "e").startswith(prefix)


@pytest.mark.parametrize("attempt", [0, -1])
def test_job_name_rejects_attempts_below_one(attempt: int) -> None:
    with pytest.raises(ValueError):
        naming.job_name("talk-0123456789ab", attempt)


def test_job_name_is_videojob_and_attempt() -> None:
    assert naming.job_name("talk-0123456789ab", 3) == "talk-0123456789ab-3"


def test_path_hash_is_a_label_value_independent_of_content() -> None:
    value = naming.path_hash("talks", "ünïcode path/" * 100)
    assert naming.is_label_value(value)
    assert value == naming.path_hash("talks", "ünïcode path/" * 100)
