"""Handing freed memory back to the system between the steps of a large file."""

from __future__ import annotations

import ctypes
import os
import sys

import pyarrow as pa

__all__ = ["configure_memory", "release_memory", "trim_eagerly"]

_LIBC: ctypes.CDLL | None | bool = None

#: how long Arrow's jemalloc pool keeps freed pages before handing them back (jemalloc's own
#: default is 1 s, in which a check of a 1,000,000-row file frees and reallocates the same
#: ~100 MB of column copies several times over)
DECAY_MS = 200
#: glibc: free memory above this at the top of the heap goes back to the system (setting it
#: also fixes the mmap threshold at its 128 KB default: numpy arrays above it are mapped and
#: unmapped on their own instead of staying in the heap once one such array has been freed)
TRIM_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD = -1  # mallopt's parameter number (malloc.h)
_CONFIGURED = False
_TRIMMING = False


def configure_memory() -> None:
    """Once per process, before the first file is read (every run and every `rosterbot`
    command call it; only the first call does anything):

    * Arrow's memory pool becomes its jemalloc pool, which hands freed memory back to the
      system; the default (mimalloc) keeps it, ~300 MB more resident memory while a 180 MB
      file is read and checked.  An ARROW_DEFAULT_MEMORY_POOL set by whoever runs us is left
      alone, and a pyarrow built without jemalloc keeps its default.
    * jemalloc hands freed pages back after DECAY_MS instead of a second.  It applies to the
      arenas created after the call, hence before anything is allocated.  Measured on the
      1,000,000-row benchmark file (bench/README.md, "Round 4"): the peak of a no-change
      re-upload ~55 MB lower, no measurable CPU cost."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    _CONFIGURED = True
    try:
        pa.jemalloc_set_decay_ms(DECAY_MS)
        if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
            pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pass  # a pyarrow built without jemalloc


def trim_eagerly() -> None:
    """From now on in this process, glibc's malloc (numpy, Python) hands freed memory back
    above TRIM_THRESHOLD.  Called by a run that applies (an upload): its peak is the highest,
    and on PostgreSQL the no-change re-upload of the 1,000,000-row benchmark file peaks
    ~80 MB lower with it (~1,070 -> ~980 MiB), for ~0.2-0.5 s more system time, which a
    check, well under 1 GB, does not pay.  Elsewhere than Linux with glibc: nothing."""
    global _TRIMMING
    if _TRIMMING:
        return
    _TRIMMING = True
    libc = _libc()
    if libc and hasattr(libc, "mallopt"):
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def _libc() -> ctypes.CDLL | None:
    global _LIBC
    if _LIBC is None:
        # the process's own symbols, where glibc's are (ctypes.util.find_library would run
        # ldconfig in a child process: ~0.1 s of a check)
        try:
            _LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else False
            _LIBC = _LIBC if _LIBC and hasattr(_LIBC, "malloc_trim") else False
        except OSError:
            _LIBC = False
    return _LIBC or None


def release_memory() -> None:
    """Hand the memory freed by the last step back to the system now, so the next step
    does not add its own on top of it: glibc's heap (it keeps freed blocks below the top of
    the heap), and Arrow's pool where its `release_unused()` does something (mimalloc, the
    system pool; on pyarrow 26's jemalloc pool it measured as a no-op: jemalloc hands freed
    pages back by itself, DECAY_MS later).  For a 1,000,000-row file this is ~100 MB less at
    the peak; it costs a few milliseconds."""
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc:
        libc.malloc_trim(0)
