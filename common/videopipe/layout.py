"""The S3 folder layout: the contract with users (docs/architecture.md, "S3 layout").

Under a source's bucket and optional root prefix, a video travels
`pending/<path>` → `processing/<path>` → `completed/<path>` or `failed/<path>`
(with `failed/<path>.error.json`), and its results land in `results/<path>/`.
`<path>` is the key relative to its folder and may contain sub-folders. This module
is pure string work, shared by the operator and `videopipe run`, so both agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ERROR_SUFFIX = ".error.json"
# The worker's result files by the name a status, a report or a webhook gives each.
RESULT_NAMES = {
    "transcript": "transcript.json",
    "srt": "transcript.srt",
    "vtt": "transcript.vtt",
    "txt": "transcript.txt",
    "summary": "summary.json",
    "manifest": "manifest.json",
}
RESULT_FILES = tuple(RESULT_NAMES.values())


def result_uris(base: str, summary: bool) -> dict[str, str]:
    """Each result file's URI under `base` (the results folder's URI, ending in /), and `prefix`."""
    out = {"prefix": base}
    out.update({k: base + v for k, v in RESULT_NAMES.items() if summary or k != "summary"})
    return out


class Folder(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    RESULTS = "results"


@dataclass(frozen=True)
class Layout:
    """Key arithmetic for one bucket root; `prefix` is "" or ends with "/"."""

    prefix: str = ""

    def __post_init__(self) -> None:
        cleaned = self.prefix.strip("/")
        object.__setattr__(self, "prefix", f"{cleaned}/" if cleaned else "")

    def folder(self, folder: Folder) -> str:
        """The prefix of a folder, e.g. `videos/pending/`."""
        return f"{self.prefix}{folder}/"

    def key(self, folder: Folder, path: str) -> str:
        return f"{self.folder(folder)}{path}"

    def path_of(self, key: str, folder: Folder) -> str:
        """The `<path>` of a key inside `folder`; ValueError if it is not there."""
        head = self.folder(folder)
        if not key.startswith(head) or len(key) == len(head):
            raise ValueError(f"{key!r} is not an object under {head!r}")
        return key[len(head) :]

    def results_prefix(self, path: str) -> str:
        return f"{self.folder(Folder.RESULTS)}{path}/"

    def error_key(self, path: str) -> str:
        return f"{self.key(Folder.FAILED, path)}{ERROR_SUFFIX}"

    @staticmethod
    def is_video_key(key: str) -> bool:
        """Folder markers and our own error reports are not videos."""
        return not key.endswith("/") and not key.endswith(ERROR_SUFFIX)


__all__ = ["ERROR_SUFFIX", "RESULT_FILES", "RESULT_NAMES", "Folder", "Layout", "result_uris"]
