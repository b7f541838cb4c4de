"""Keeping glibc's allocator from handing chunk buffers back to the kernel after each use.

pack, verify and restore allocate and free buffers of a chunk (4 MiB) thousands of times a second on several
threads. glibc serves such sizes from mmap, or from heaps it trims as soon as the top is free, so every buffer
costs page faults and zeroed pages again: measured on restore of the 4 GB bench mix, 0.6 s of 3.1 s of system
time. Raising the mmap and trim thresholds keeps freed buffers for reuse. It changes no result, only where memory
comes from, and the working set is bounded by the pipelines' own queues, so peak RSS stays where it was.

The command line calls :func:`keep_freed_buffers` once at start; a program using the library may do the same.
"""

from __future__ import annotations

import ctypes
import functools

#: mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Allocations up to this size come from the heap, not from mmap: a chunk buffer with room to spare. glibc's
#: ceiling for the mmap threshold on 64-bit systems is 32 MiB.
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of a heap is given back to the kernel only beyond this.
TRIM_THRESHOLD = 256 * 2**20


@functools.cache
def keep_freed_buffers() -> bool:
    """Set the thresholds (once); False where the C library has no ``mallopt`` (not glibc) or refuses them."""
    return _thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)


#: A lane among many (pack --at-once N, packer/coordinator.py FULL_PIPELINE_LANES): a chunk buffer freed goes
#: back to the kernel at once, so that each of N processes does not keep a heap of freed buffers.
LANE_MMAP_THRESHOLD = 1 * 2**20
LANE_TRIM_THRESHOLD = 1 * 2**20


def give_back_freed_buffers() -> bool:
    """Undo :func:`keep_freed_buffers` for this process (a lane forked from the command line, one of many):
    buffers of a chunk's size are mapped and unmapped again; False where ``mallopt`` is missing or refuses."""
    return _thresholds(LANE_MMAP_THRESHOLD, LANE_TRIM_THRESHOLD)


def _thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    try:
        # The process's own symbols, the C library's among them: ctypes.util.find_library("c") would cost more
        # than a plan's walk (it imports subprocess and may run ldconfig).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
