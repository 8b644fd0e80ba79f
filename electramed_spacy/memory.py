"""Training memory bounded on glibc: freed tensors go back to the system.

glibc's malloc serves a request above its mmap threshold with its own mapping, returned to the
system on free; below it, from the heap. The threshold is dynamic: each time a mapped block is
freed, it rises to that block's size (up to 32 MB). A transformer's forward and backward allocate
tensors of 1-32 MB, with a new size for every padded batch width, so after the first few they all
come from the heap, and the heap fragments: the holes left by one width do not fit the next.
Measured (`benchmarks/results/train_memory.json`): one v3 relation update on the DDI-2013 training
document with 1,818 candidate pairs (57 length-sorted batches, activations recomputed batch by
batch) took RSS from 0.7 GB to 9.8 GB and kept it there; with a fixed 128 KB threshold the same
update peaked at 1.9 GB and left 0.9 GB.

`electramed.malloc_mmap_threshold.v1` is an `[initialize] before_init` callback that fixes the
threshold (which also turns the dynamic adjustment off) in the training process. The configs set it;
where the C library is not glibc it does nothing and says so.
"""
import ctypes
import ctypes.util
import platform
from typing import Callable

from spacy.language import Language
from spacy.util import registry
from wasabi import msg

from .errors import ElectraMedError, Errors

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
# glibc refuses a threshold above HEAP_MAX / 2 (32 MB on 64-bit)
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024


def set_mmap_threshold(threshold_bytes: int) -> bool:
    """`mallopt(M_MMAP_THRESHOLD, threshold_bytes)` where the C library is glibc; True if it was set."""
    if not 0 < threshold_bytes <= MAX_MMAP_THRESHOLD:
        raise ElectraMedError(Errors.E055.format(value=threshold_bytes))
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))


@registry.callbacks("electramed.malloc_mmap_threshold.v1")
def configure_mmap_threshold(threshold_bytes: int = 131072) -> Callable[[Language], Language]:
    """`[initialize] before_init`: fix glibc's mmap threshold at `threshold_bytes` for this process."""
    if not 0 < threshold_bytes <= MAX_MMAP_THRESHOLD:
        raise ElectraMedError(Errors.E055.format(value=threshold_bytes))

    def before_init(nlp: Language) -> Language:
        if not set_mmap_threshold(threshold_bytes):
            msg.info("electramed.malloc_mmap_threshold.v1: not glibc, left the allocator as it is")
        return nlp

    return before_init
