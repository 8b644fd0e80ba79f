"""Which floating-point precision is fastest here: measured on this machine, never assumed.

bf16 autocast is several times faster than float32 on CPUs with bf16 units (AVX512-BF16, AMX)
and on recent GPUs, but emulated, and about 29x slower, on CPUs without them (AVX2/FMA only).
`auto` settings (`autocast = "auto"` of the encoders, `precision = "auto"` of pre-training) call
`choose_autocast`: a square matmul is timed in float32 and under bf16 autocast on the device the
model runs on; where bf16 reaches `BF16_MARGIN` x the float32 rate, a transformer encoder layer
(MiniLM's width, a batch of 128-token windows) is timed the same way, because casts, softmax and
layer norms can eat a faster matmul (on one Intel Xeon with bf16 units a whole NER pipeline ran
0.79x in bf16). bf16 is chosen only when both pass. The measurement (~1 s; a few seconds where
bf16 is emulated) is cached per CPU model, torch version, device and thread count in
`$XDG_CACHE_HOME/electramed/precision.json`, and `matmul_peak` doubles as the peak FLOP/s a
training step is compared with. Explicit settings bypass all this. Pure torch: used by the
spaCy layers (`ml/`) and by pre-training alike.
"""
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Dict, Optional

import torch

logger = logging.getLogger("electramed")
AUTO = "auto"
BF16_MARGIN = 1.2  # bf16 must be clearly faster: a tie keeps float32, which needs no casts and no F1 check
MATMUL_SIZE = 512  # 0.27 GFLOP a product: ~4 ms in float32, ~0.4 s where bf16 is emulated


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "electramed" / "precision.json"


def _key(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model()
    return f"{name} | torch {torch.__version__} | {device.type} | threads {torch.get_num_threads()}"


def matmul_peak(dtype: Optional[torch.dtype] = None, device: Optional[torch.device] = None, repeats: int = 2) -> float:
    """FLOP/s of a `MATMUL_SIZE` square matmul in float32 (`dtype` None) or under autocast to `dtype`:
    the best of `repeats` timed products after one warm-up."""
    device = device or torch.device("cpu")
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device)
    best = float("inf")
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            (a @ b).sum().item()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first product warms up kernels and caches
                best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_SIZE ** 3 / best


def layer_rate(dtype: Optional[torch.dtype] = None, device: Optional[torch.device] = None, repeats: int = 2) -> float:
    """Tokens/s of one transformer encoder layer (width 384, 6 heads, FFN 1,536) on 4 windows of 128
    tokens, in float32 (`dtype` None) or under autocast to `dtype`; best of `repeats` after a warm-up."""
    device = device or torch.device("cpu")
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(384, 6, 1536, batch_first=True).to(device).eval()
    x = torch.randn(4, 128, 384, device=device)
    best = float("inf")
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        for i in range(repeats + 1):
            start = time.perf_counter()
            layer(x).float().sum().item()
            if i:
                best = min(best, time.perf_counter() - start)
    return x.shape[0] * x.shape[1] / best


def linear_rate(mode: str, repeats: int = 3) -> float:
    """Rows/s through the Linear layers of one encoder layer (MiniLM's width: q, k, v, o 384 x 384, FFN
    384 -> 1,536 -> 384) on 512 rows, on CPU, in "float32", under "bfloat16" autocast or as "int8"
    (torch's dynamic quantization, one scale per weight row, as `quantize = "dynamic_int8_per_channel"`)."""
    import warnings

    torch.manual_seed(0)
    stack = torch.nn.Sequential(*[torch.nn.Linear(384, 384) for _ in range(4)], torch.nn.Linear(384, 1536),
                                torch.nn.Linear(1536, 384)).eval()
    if mode == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stack = quantize_dynamic(stack, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    x, wide = torch.randn(512, 384), torch.randn(512, 1536)
    best = float("inf")
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=mode == "bfloat16"):
        for i in range(repeats + 1):
            start = time.perf_counter()
            for layer in stack:  # each layer on an input of its width
                y = layer(x if layer.in_features == 384 else wide)
            y.float().sum().item()
            if i:
                best = min(best, time.perf_counter() - start)
    return x.shape[0] / best


def calibration(device: Optional[torch.device] = None) -> Dict[str, float]:
    """{"float32", "bfloat16": matmul FLOP/s; "layer_float32", "layer_bfloat16": encoder-layer tokens/s,
    measured only where the bf16 matmul passes; on CPU "linear_float32", "linear_int8": rows/s of an encoder
    layer's Linear layers (`linear_rate`)} for this machine, measured once and cached."""
    device = device or torch.device("cpu")
    path, key = _cache_path(), _key(device)
    try:
        cached = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        cached = {}
    result = cached.get(key) if isinstance(cached.get(key), dict) else {}
    wanted = {"float32", "bfloat16"} | ({"linear_float32", "linear_int8"} if device.type == "cpu" else set())
    if wanted <= set(result):
        return result
    if not {"float32", "bfloat16"} <= set(result):
        result = {"float32": matmul_peak(None, device), "bfloat16": matmul_peak(torch.bfloat16, device)}
        if result["bfloat16"] >= BF16_MARGIN * result["float32"]:
            result.update(layer_float32=layer_rate(None, device), layer_bfloat16=layer_rate(torch.bfloat16, device))
    if device.type == "cpu":
        result.update({f"linear_{mode}": linear_rate(mode) for mode in ("float32", "int8")})
    cached[key] = result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=2), encoding="utf8")
        os.replace(tmp, path)
    except OSError:  # a read-only home: measure again next time
        pass
    return result


def choose_autocast(device: Optional[torch.device] = None, *, what: str = "the encoder") -> Optional[str]:
    """"bfloat16" when bf16 autocast is measured >= BF16_MARGIN x float32 on `device`, else None (float32).
    Logs the choice and the figures behind it."""
    device = device or torch.device("cpu")
    rates = calibration(device)
    ratio = rates["bfloat16"] / rates["float32"]
    layer = rates["layer_bfloat16"] / rates["layer_float32"] if "layer_float32" in rates else None
    choice = "bfloat16" if ratio >= BF16_MARGIN and layer is not None and layer >= BF16_MARGIN else None
    logger.info("precision auto for %s on %s: %s (bf16 / float32: matmul %.2fx of %.1f GFLOP/s, encoder layer %s; "
                "bf16 needs >= %.1fx on both)", what, device.type, choice or "float32", ratio, rates["float32"] / 1e9,
                "not timed" if layer is None else f"{layer:.2f}x", BF16_MARGIN)
    return choice


INT8_MODE = "dynamic_int8_per_channel"  # one scale per weight row: BC5CDR NER F1 within 0.1 of float32 (benchmarks/ner_speed)


def choose_quantize(device: Optional[torch.device] = None, *, autocast: Optional[str] = None,
                    what: str = "the encoder") -> Optional[str]:
    """`INT8_MODE` where the encoder runs in float32 (`autocast` None: no bf16 units) and int8 Linear layers
    measure >= BF16_MARGIN x float32 ones on this CPU; else None. Where bf16 autocast was chosen it stays: it
    speeds attention too and keeps F1 (BC5CDR test 77.83 vs 77.82 float32), while int8 leaves attention in
    float32 and costs a little F1. Never on a GPU (the int8 kernels are CPU ones)."""
    device = device or torch.device("cpu")
    if device.type != "cpu" or autocast is not None:
        logger.info("quantize auto for %s: off (%s)", what, f"{autocast} autocast" if autocast else device.type)
        return None
    rates = calibration(device)
    ratio = rates["linear_int8"] / rates["linear_float32"]
    choice = INT8_MODE if ratio >= BF16_MARGIN else None
    logger.info("quantize auto for %s: %s (int8 Linear layers %.2fx the float32 ones; int8 needs >= %.1fx)", what,
                choice or "off", ratio, BF16_MARGIN)
    return choice


def resolve_autocast(value: Optional[str], device: Optional[torch.device] = None, *, what: str = "the encoder") -> Optional[str]:
    """An `autocast` setting with "auto" replaced by the measured choice; any other value as given."""
    return choose_autocast(device, what=what) if value == AUTO else value
