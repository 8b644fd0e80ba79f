"""Training memory bounded on glibc: freed tensors go back to the system.

glibc's malloc serves a request above its mmap threshold with its own mapping, returned to the
system on free; below it, from the heap. The threshold is dynamic: each time a mapped block is
freed, it rises to that block's size (up to 32 MB). A transformer's forward and backward allocate
tensors of 1-32 MB, with a new size for every padded batch width, so after the first few they all
come from the heap, and the heap fragments: the holes left by one width do not fit the next.
Measured (`benchmarks/training_memory/train_memory.py`, `benchmarks/training_memory/results/train_memory*.json`, 1 thread beside another
training): one marked-pair relation update on the DDI-2013 training document with 1,818 candidate pairs (57
length-sorted batches, activations recomputed batch by batch) took RSS from 0.7 GB to 10.1 GB (peak
10.3 GB) and kept it there; with a fixed 128 KB threshold the same update peaked at 1.9 GB and left
0.9 GB, in the same time (252 vs 254 s).

`electramed.malloc_mmap_threshold.v1` is an `[initialize] before_init` callback that fixes the
threshold (which also turns the dynamic adjustment off) in the training process. It costs time: every
large tensor is then a fresh mapping whose pages fault in. Measured on the same runs, 1 thread beside
another training: six ordinary marked-pair updates 19.4-19.7 s -> 24.0-25.0 s, four BC5CDR NER updates 12.4 ->
16.5 s (peak 2.4 -> 2.0 GB). So the configs carry it switched off (`threshold_bytes = 0`, glibc's
default); on a machine short of memory, `--initialize.before_init.threshold_bytes 131072` bounds it.
Where the C library is not glibc it does nothing and says so.

`trim_heap` is the cheaper remedy `electramed train` applies after every update: `malloc_trim(0)` hands
the heap's free pages back to the system (glibc >= 2.8 releases free chunks inside the heap, not only at
its top), once per update instead of a fresh mapping per tensor. `--no-trim-heap` switches it off.
"""
import ctypes
import ctypes.util
import platform
from typing import Callable

from spacy.language import Language
from spacy.util import registry
from wasabi import msg

from ..errors import ElectraMedError, Errors

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
# glibc refuses a threshold above HEAP_MAX / 2 (32 MB on 64-bit)
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024


def set_mmap_threshold(threshold_bytes: int) -> bool:
    """`mallopt(M_MMAP_THRESHOLD, threshold_bytes)` where the C library is glibc; True if it was set
    (0 sets nothing: glibc's dynamic default stays)."""
    if not 0 <= threshold_bytes <= MAX_MMAP_THRESHOLD:
        raise ElectraMedError(Errors.E060.format(value=threshold_bytes))
    libc = _glibc() if threshold_bytes else None
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes))) if libc is not None else False


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def trim_heap() -> bool:
    """`malloc_trim(0)` where the C library is glibc: free heap pages go back to the system; True if it
    released any."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


@registry.callbacks("electramed.malloc_mmap_threshold.v1")
def configure_mmap_threshold(threshold_bytes: int = 0) -> Callable[[Language], Language]:
    """`[initialize] before_init`: fix glibc's mmap threshold at `threshold_bytes` for this process
    (0: leave glibc's dynamic default)."""
    if not 0 <= threshold_bytes <= MAX_MMAP_THRESHOLD:
        raise ElectraMedError(Errors.E060.format(value=threshold_bytes))

    def before_init(nlp: Language) -> Language:
        if threshold_bytes and not set_mmap_threshold(threshold_bytes):
            msg.info("electramed.malloc_mmap_threshold.v1: not glibc, left the allocator as it is")
        return nlp

    return before_init
