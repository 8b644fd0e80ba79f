"""The pre-training log (one JSON row per logged step, `OUTPUT/log.jsonl`, plus one per downstream probe)
and its figure `curves.png`: ELECTRA's two losses (arXiv:2003.10555) against the discriminator's base rate,
accuracies, learning rate, and the probe's entity F1 when `[probe]` is on."""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

LOG = "log.jsonl"


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines after the checkpoint's step so the log matches one uninterrupted run."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf8").splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf8")


def read_log(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf8").splitlines() if line.strip()] if Path(path).exists() else []


def base_rate_entropy(p: float) -> float:
    """Binary entropy (nats) of the share of replaced tokens: the RTD loss of a context-blind discriminator."""
    return 0.0 if p <= 0 or p >= 1 else float(-p * np.log(p) - (1 - p) * np.log(1 - p))


def plot_curves(log_path: Path, png: Path) -> Optional[Path]:
    rows = read_log(log_path)
    probes = [r for r in rows if "probe_f" in r]
    rows = [r for r in rows if "gen_loss" in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 4 if probes else 3, figsize=(20 if probes else 15, 4))
    for key in ("gen_loss", "disc_loss"):
        axes[0].plot(steps, [r[key] for r in rows], label=key)
    # a discriminator that ignores context can still reach the entropy of the share replaced
    axes[0].plot(steps, [base_rate_entropy(r["replaced"]) for r in rows], "--", label="disc base rate")
    axes[0].set_yscale("log")
    axes[0].set_title("losses (disc x1, unweighted; nats)")
    for key in ("gen_acc", "disc_acc", "replaced"):
        axes[1].plot(steps, [r[key] for r in rows], label=key)
    axes[1].set_title("accuracies / share replaced")
    axes[2].plot(steps, [r["lr"] for r in rows], label="lr")
    axes[2].set_title("learning rate")
    if probes:  # a linear NER tagger on the frozen discriminator (probe.py)
        axes[3].plot([r["step"] for r in probes], [r["probe_f"] for r in probes], "o-", label="probe entity F1 (dev)")
        axes[3].set_title("downstream probe")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
