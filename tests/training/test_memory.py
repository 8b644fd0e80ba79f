"""electramed.malloc_mmap_threshold.v1: glibc's mmap threshold fixed for training (electramed_spacy/memory.py)."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import spacy
from spacy.util import registry

from electramed_spacy.errors import ElectraMedError
from electramed_spacy.training.memory import set_mmap_threshold

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# In a fresh process: free an 8 MB block (glibc's dynamic threshold rises to 8 MB), then allocate 1 MB
# and print how many mmapped blocks that added: 0 from the heap (dynamic threshold), 1 when fixed at 128 KB.
PROBE = textwrap.dedent("""
    import ctypes, sys
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "fixed":
        import spacy
        from spacy.util import registry
        import electramed_spacy.training.memory  # noqa: F401 (the entry point is tested in test_registration)
        nlp = spacy.blank("en")
        callback = registry.resolve({"cb": {"@callbacks": "electramed.malloc_mmap_threshold.v1",
                                            "threshold_bytes": 131072}})["cb"]
        assert callback(nlp) is nlp
    libc.free(libc.malloc(8 << 20))
    before = libc.mallinfo2().hblks
    block = libc.malloc(1 << 20)
    print(libc.mallinfo2().hblks - before)
    libc.free(block)
""")


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt and mallinfo2")
def test_fixed_threshold_keeps_large_blocks_out_of_the_heap():
    # any MALLOC_* variable turns glibc's dynamic threshold off (dask's local cluster, run by an earlier
    # test, leaves MALLOC_TRIM_THRESHOLD_ in this process's environment): the probe runs without them
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    added = {mode: subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                                  env=env).stdout.strip()
             for mode in ("dynamic", "fixed")}
    assert added == {"dynamic": "0", "fixed": "1"}


@pytest.mark.parametrize("value", [-1, 32 * 1024 * 1024 + 1])
def test_out_of_range_threshold_is_a_clear_error(value):
    with pytest.raises(ElectraMedError, match=r"E060.*32 MB.*got " + str(value)):
        set_mmap_threshold(value)
    with pytest.raises(ElectraMedError, match="E060"):
        registry.resolve({"cb": {"@callbacks": "electramed.malloc_mmap_threshold.v1", "threshold_bytes": value}})


def test_training_configs_fix_the_threshold():
    """Every config that fine-tunes a transformer has the callback in [initialize] before_init, off (0: it costs
    time), so `--initialize.before_init.threshold_bytes 131072` is all a user short of memory adds."""
    from pathlib import Path
    configs = Path(__file__).resolve().parents[2] / "configs"
    for name in ("ner.cfg", "rel.cfg", "rel_pooled.cfg", "qa.cfg"):
        config = spacy.util.load_config(configs / name)
        assert config["initialize"]["before_init"] == {"@callbacks": "electramed.malloc_mmap_threshold.v1",
                                                       "threshold_bytes": 0}, name
        overridden = spacy.util.load_config(configs / name, overrides={"initialize.before_init.threshold_bytes": 131072})
        assert registry.resolve({"cb": overridden["initialize"]["before_init"]})["cb"] is not None
    assert set_mmap_threshold(0) is False  # 0: nothing set
