"""Keep freed memory in the process instead of handing it back to the kernel.

A worker transcribes one video and exits, so glibc's default of returning freed
heap to the kernel (and of mmap-ing every large block afresh) only buys page faults:
each batch's buffers are faulted in again. A long-running process adapts these
thresholds on its own after a while; a fresh worker pays until it does. Fixing them
up front measured 0.3-0.4 s faster transcription of a 10-minute talk on 2 CPUs
(bench/worker.py). Memory use peaks where it would anyway; it just is not returned
before exit.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed; bigger blocks are still mmap-ed
TRIM_THRESHOLD = 512 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for a one-shot process; False where that is not possible."""
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # raises off glibc (musl, macOS)
        libc = ctypes.CDLL(None)  # the symbols already loaded, glibc's among them
        return bool(
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, ValueError, AttributeError) as err:
        log.debug("keeping malloc's defaults: %s", err)
        return False


__all__ = ["keep_freed_memory"]
