"""`electramed train`: a run killed (SIGKILL) or stopped (SIGTERM) and rerun with the same command ends with
exactly the weights and dev scores of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [("Cisplatin induced nephrotoxicity in rats.", [(0, 9, "Chemical"), (18, 32, "Disease")]),
         ("Lithium treatment and hypothyroidism were linked.", [(0, 7, "Chemical"), (22, 36, "Disease")]),
         ("Aspirin reduced the risk of myocardial infarction.", [(0, 7, "Chemical"), (28, 49, "Disease")]),
         ("Warfarin interacts with fluconazole.", [(0, 8, "Chemical"), (24, 35, "Chemical")])]


def _docbin(path, rows):
    nlp = spacy.blank("en")
    docs = []
    for text, ents in rows:
        doc = nlp(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in ents]
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


def _command(tiny_electra, tmp_path, output):
    train = _docbin(tmp_path / "train.spacy", TRAIN * 3)
    dev = _docbin(tmp_path / "dev.spacy", TRAIN[:2])
    return [sys.executable, "-m", "electramed_spacy.cli", "train", str(ROOT / "configs" / "ner.cfg"), "--output", str(output),
            "--checkpoint-every", "3", "--paths.train", str(train), "--paths.dev", str(dev), "--paths.model", str(tiny_electra),
            "--training.max_steps", "16", "--training.eval_frequency", "4", "--training.optimizer.learn_rate.warmup_steps", "4",
            "--training.batcher.size", "60", "--components.transformer.model.autocast", "null"]


def _run(cmd, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _weights(model_dir):
    """Every thinc parameter and every torch tensor of a saved pipeline (the tokenizer files of a
    transformer name their temp folder, so the model files are not compared byte for byte)."""
    import srsly

    from electramed_spacy.ml.safe_load import load_state

    found = {}
    for path in sorted(model_dir.glob("*/model")):
        msg = srsly.msgpack_loads(path.read_bytes())
        found[f"{path.parent.name} params"] = srsly.msgpack_dumps(msg["params"])
        for i, shims in enumerate(msg["shims"]):
            for j, data in enumerate(shims):
                state = load_state(srsly.msgpack_loads(data)["state"], str(path))
                found.update({f"{path.parent.name} {i}/{j} {k}": v.numpy().tobytes() for k, v in state.items()})
    return found


def _step(output):
    state = output / "checkpoint" / "state.json"
    try:
        return json.loads(state.read_text())["step"] if state.exists() else -1
    except ValueError:
        return -1


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_then_rerun_ends_with_the_uninterrupted_weights(tiny_electra, tmp_path, sig):
    reference = tmp_path / "reference"
    done = _run(_command(tiny_electra, tmp_path, reference))
    out, _ = done.communicate(timeout=600)
    assert done.returncode == 0, out

    killed = tmp_path / "killed"
    cmd = _command(tiny_electra, tmp_path, killed)
    proc = _run(cmd)
    deadline = time.monotonic() + 300
    while _step(killed) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    if sig == signal.SIGTERM:
        assert "rerun the same command to continue" in out
    stopped_at = _step(killed)
    assert 6 <= stopped_at < 16
    again = _run(cmd)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0 and f"after update {stopped_at}" in out, out

    assert _weights(killed / "model-last") == _weights(reference / "model-last")
    best = [json.loads((d / "model-best" / "meta.json").read_text())["performance"] for d in (killed, reference)]
    assert best[0] == best[1]
    rerun = _run(cmd)
    assert "nothing to do" in rerun.communicate(timeout=300)[0]  # a finished run is not trained further


def test_a_checkpoint_of_another_config_is_refused(tiny_electra, tmp_path):
    from electramed_spacy.training.resumable import train

    output = tmp_path / "out"
    (output / "checkpoint").mkdir(parents=True)
    (output / "checkpoint" / "state.json").write_text("{}")
    (output / "checkpoint" / "config.cfg").write_text("[paths]\ntrain = \"other\"\n")
    with pytest.raises(ValueError, match="another config"):
        train(ROOT / "configs" / "ner.cfg", output, overrides={"paths.model": str(tiny_electra)}, checkpoint_every=3)
