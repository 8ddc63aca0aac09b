"""How long `make images` takes cold and cached, and how big the images are: a printed table.

Cold means nothing to start from: podman storage and the image cache of the benchmark's own, in
a temporary folder (the machine's images and ~/.cache/videopipe/images are left alone), so the
base is made from Debian packages again where no registry is reachable. Cached is the next run,
with nothing changed. `--gpu` adds the CUDA worker (several minutes more).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "images" / "build.sh"
IMAGES = {
    "operator": "ghcr.io/videopipe/videopipe-operator:test",
    "worker (CPU)": "ghcr.io/videopipe/videopipe-worker:test",
    "worker (CUDA)": "ghcr.io/videopipe/videopipe-worker:test-gpu",
}


def storage_env(folder: Path) -> dict[str, str]:
    conf = folder / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{folder / "graph"}"\n'
        f'runroot = "{folder / "run"}"\n'
    )
    return {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(conf),
        "CONTAINERS_CONF": str(REPO / "images" / "containers.conf"),
        "VIDEOPIPE_IMAGE_CACHE": str(folder / "cache"),
    }


def timed(env: dict[str, str], *args: str) -> float:
    start = time.monotonic()
    subprocess.run(
        ["bash", str(BUILD), *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
    )
    return time.monotonic() - start


def size_mb(env: dict[str, str], image: str) -> float | None:
    proc = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", image],
        env=env,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout) / 1e6 if proc.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="also build the CUDA worker")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="videopipe-bench-images-", dir=Path.home() / ".cache"))
    env = storage_env(folder)
    rows: list[tuple[str, str]] = []
    try:
        rows.append(("make images, cold (base included)", f"{timed(env):.0f} s"))
        rows.append(("make images, cached (nothing changed)", f"{timed(env):.2f} s"))
        if args.gpu:
            rows.append(("make images-gpu, after make images", f"{timed(env, '--gpu'):.0f} s"))
            rows.append(("make images-gpu, cached", f"{timed(env, '--gpu'):.2f} s"))
        for label, image in IMAGES.items():
            size = size_mb(env, image)
            if size is not None:
                rows.append((f"{label} image size", f"{size:.0f} MB"))
    finally:
        subprocess.run(["podman", "rmi", "--all", "--force"], env=env, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    vwidth = max(len("value"), *(len(value) for _, value in rows))
    print(f"| {'what':<{width}} | {'value':>{vwidth}} |")
    print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 1)}:|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value:>{vwidth}} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
