"""NER inference: our spaCy pipeline vs `transformers.pipeline("token-classification")` on the same encoder weights.

Issue 13, items 1-2. Both sides run the same texts (whole BC5CDR test abstracts), on the same
torch thread count, in one process with the repeats interleaved (ours, HF, ours, HF, ...), so a
load change on the machine hits every row alike. Words = spaCy tokens of the texts, one count for all
rows. Load time and peak RSS (VmHWM) come from a fresh subprocess per row that loads the model and
runs the same texts once.

The HF side is `AutoModelForTokenClassification` built from the SAME encoder: for a trained pipeline,
its transformer is exported (`save_pretrained`) first; for the base-size run, the same random
checkpoint directory. Its classification head is random (our NER is a transition-based parser on
top of the encoder, not a token classifier): speed does not depend on the head's values, only the
entity grouping of `aggregation_strategy="simple"` sees them. HF rows: its defaults (batch_size 1,
texts cut at model_max_length = 512 wordpieces, so 45 of the 500 test abstracts lose their end there),
batched (8, 16), and batched with `stride` so, like ours, every word of a long abstract is seen.

Commands (2 torch threads; numbers in the README come from these lines):

    # MiniLM-L6 (real weights, fine-tuned on BC5CDR): ours as trained + levers vs HF
    python benchmarks/ner_speed/ner_vs_hf.py compare /work/runs/dapt_ner/minilm_s0/model-best /work/runs/corpus/bc5cdr_test.spacy \\
        --n-docs 100 --repeats 3 --output benchmarks/ner_speed/results/ner_vs_hf_minilm.json \\
        --variant "fp32:model.autocast=null" --variant "int8:model.autocast=null;model.quantize=\\"dynamic_int8\\"" \\
        --variant "bf16_w256:model.get_spans.window=256;model.get_spans.stride=224"

    # base size (12 x 768, random ELECTRA-base in the published ELECTRAMed layout)
    python benchmarks/ner_speed/ner_vs_hf.py build-base /tmp/electra_base_random /tmp/ner_base_random \\
        --vocab ../shared/data/vocab/electramed_scivocab_uncased.txt --data /work/runs/corpus/bc5cdr_test.spacy
    python benchmarks/ner_speed/ner_vs_hf.py compare /tmp/ner_base_random /work/runs/corpus/bc5cdr_test.spacy \\
        --encoder /tmp/electra_base_random --n-docs 50 --output benchmarks/ner_speed/results/ner_vs_hf_base.json

    # two minutes, no trained model needed: the default configs/ner.cfg on any encoder vs HF on the same weights
    python benchmarks/ner_speed/ner_vs_hf.py quick ENCODER corpus/bc5cdr_test.spacy

    # F1 of each lever on all 500 test abstracts (not timed against each other: one pass each)
    python benchmarks/ner_speed/ner_vs_hf.py accuracy /work/runs/dapt_ner/minilm_s0/model-best /work/runs/corpus/bc5cdr_test.spacy \\
        --variant "fp32:model.autocast=null" ... --output benchmarks/ner_speed/results/ner_levers_minilm.json

A variant is `name:key=value;key=value`, keys under `[components.transformer]`, values JSON
(`null`, numbers, quoted strings).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import typer

app = typer.Typer(add_completion=False, help=__doc__.split("\n")[0])

HF_LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def parse_variant(spec: str) -> Tuple[str, Dict]:
    """'int8:model.autocast=null;model.quantize="dynamic_int8"' -> ('int8', nested override dict)."""
    name, _, body = spec.partition(":")
    overrides: Dict = {}
    for item in filter(None, body.split(";")):
        key, _, value = item.partition("=")
        node = overrides
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(value)
    return name, {"components": {"transformer": overrides}} if overrides else {}


def load_texts(data: Path, n_docs: int) -> Tuple[List[str], int]:
    import spacy
    from spacy.tokens import DocBin

    docs = list(DocBin().from_disk(data).get_docs(spacy.blank("en").vocab))[:n_docs]
    return [d.text for d in docs], sum(len(d) for d in docs)


def load_ours(model: Path, overrides: Dict):
    import spacy

    return spacy.load(model, config=overrides)


def export_encoder(model: Path, out: Path) -> Path:
    """The pipeline's own (fine-tuned) transformer weights + tokenizer as a save_pretrained directory."""
    import spacy

    trf = spacy.load(model).get_pipe("transformer").model
    trf.transformer.save_pretrained(out)
    trf.tokenizer.save_pretrained(out)
    return out


def load_hf(encoder: Path):
    """token-classification pipeline on the encoder, random 5-way BIO head, fp32, CPU."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer, pipeline

    config = AutoConfig.from_pretrained(encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder, model_max_length=config.max_position_embeddings)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(HF_LABELS), id2label=dict(enumerate(HF_LABELS)),
        label2id={label: i for i, label in enumerate(HF_LABELS)},
    )
    return pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple", device=-1)


def run_ours(nlp, texts: List[str], batch_size: int) -> int:
    return sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=batch_size))


def run_hf(hf, texts: List[str], hf_kwargs: Dict) -> int:
    return sum(len(ents) for ents in hf(texts, **hf_kwargs))


def hf_rows(batch_sizes: List[int], stride: int) -> Dict[str, Dict]:
    rows = {"hf_default": {}}
    for size in batch_sizes:
        rows[f"hf_b{size}"] = {"batch_size": size}
    if stride and batch_sizes:
        rows[f"hf_b{max(batch_sizes)}_stride{stride}"] = {"batch_size": max(batch_sizes), "stride": stride}
    return rows


class ForwardTimer:
    """Wall seconds spent inside a torch module's forward, summed (pre/post forward hooks).

    On the HF rows it splits the pipeline's time into the encoder's forward and everything else
    (tokenising, pre/post-processing, entity grouping): the part no pipeline on the same weights
    can avoid, at float32, is the forward."""

    def __init__(self, module) -> None:
        self.seconds = 0.0
        self._start = 0.0
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, module, args) -> None:
        self._start = time.perf_counter()

    def _post(self, module, args, output) -> None:
        self.seconds += time.perf_counter() - self._start


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@app.command()
def probe(
    kind: str, target: Path, data: Path, n_docs: int = 100, threads: int = 2, batch_size: int = 32,
    variant: str = "ours:", hf_kwargs: str = "{}",
) -> None:
    """(internal) In a fresh process: load one row's model, run the texts once, print load time and peak RSS."""
    import torch

    torch.set_num_threads(threads)
    texts, _ = load_texts(data, n_docs)
    start = time.perf_counter()
    if kind == "ours":
        model = load_ours(target, parse_variant(variant)[1])
    else:
        model = load_hf(target)
    load_s = time.perf_counter() - start
    rss_loaded = vm_hwm_mb()
    if kind == "ours":
        run_ours(model, texts, batch_size)
    else:
        run_hf(model, texts, json.loads(hf_kwargs))
    print(json.dumps({"load_s": round(load_s, 2), "peak_rss_mb_after_load": round(rss_loaded), "peak_rss_mb": round(vm_hwm_mb())}))


def run_probe(args: List[str]) -> Dict:
    out = subprocess.run([sys.executable, __file__, "probe", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


@app.command()
def compare(
    model: Path = typer.Argument(..., help="Our trained/assembled NER pipeline directory"),
    data: Path = typer.Argument(..., help="DocBin of the texts (BC5CDR test)"),
    encoder: Optional[Path] = typer.Option(None, help="Encoder dir for HF; default: export the pipeline's transformer"),
    n_docs: int = typer.Option(100, help="Texts to time (from the start of DATA)"),
    repeats: int = typer.Option(3, help="Interleaved timed passes per row"),
    threads: int = typer.Option(2, help="torch threads, both sides"),
    batch_size: int = typer.Option(32, help="nlp.pipe batch_size for ours"),
    variant: List[str] = typer.Option([], help="Extra rows of ours: name:key=value;... under [components.transformer]"),
    hf_batch_size: List[int] = typer.Option([8, 16], help="Batched HF rows (besides its default, batch_size 1)"),
    hf_stride: int = typer.Option(32, help="Extra HF row at the largest batch size with this stride (0: none)"),
    probes: bool = typer.Option(True, help="Load time and peak RSS per row in fresh subprocesses"),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    """Words/s of ours (as saved + variants) and HF token-classification rows, interleaved."""
    import torch
    import transformers

    torch.set_num_threads(threads)
    texts, n_words = load_texts(data, n_docs)
    tmp = Path(tempfile.mkdtemp(prefix="ner_vs_hf_"))
    if encoder is None:
        encoder = export_encoder(model, tmp / "encoder")
    ours = {"ours": load_ours(model, {})}
    variant_specs = {"ours": "ours:"}
    for spec in variant:
        name, overrides = parse_variant(spec)
        ours[f"ours_{name}"], variant_specs[f"ours_{name}"] = load_ours(model, overrides), spec
    hf = load_hf(encoder)
    hf_settings = hf_rows(hf_batch_size, hf_stride)
    runners = {name: (lambda nlp=nlp: run_ours(nlp, texts, batch_size)) for name, nlp in ours.items()}
    runners.update({name: (lambda kw=kw: run_hf(hf, texts, kw)) for name, kw in hf_settings.items()})
    for name in ours:  # warm-up: first-call allocations, the lazy int8 copy
        run_ours(ours[name], texts[:4], batch_size)
    run_hf(hf, texts[:4], {})
    times: Dict[str, List[float]] = {name: [] for name in runners}
    hf_forward = ForwardTimer(hf.model)
    forward_s: Dict[str, List[float]] = {name: [] for name in hf_settings}
    ents: Dict[str, int] = {}
    loads = []
    for rep in range(repeats):
        loads.append(loadavg())
        for name, run in runners.items():
            start, forward_before = time.perf_counter(), hf_forward.seconds
            ents[name] = run()
            times[name].append(time.perf_counter() - start)
            if name in forward_s:
                forward_s[name].append(hf_forward.seconds - forward_before)
        print(f"repeat {rep + 1}/{repeats} done, load {loads[-1]}", file=sys.stderr)
    loads.append(loadavg())
    rows = {}
    for name, secs in times.items():
        wps = [n_words / s for s in secs]
        rows[name] = {
            "words_per_s_median": round(statistics.median(wps), 1), "words_per_s_min": round(min(wps), 1),
            "words_per_s_max": round(max(wps), 1), "spread_pct": round(100 * (max(wps) - min(wps)) / statistics.median(wps), 1),
            "seconds": [round(s, 2) for s in secs], "entities": ents[name],
        }
        if name in hf_settings:
            rows[name]["hf_call_kwargs"] = hf_settings[name]
            rows[name]["model_forward_s"] = [round(f, 2) for f in forward_s[name]]
            rows[name]["model_forward_share"] = round(sum(forward_s[name]) / sum(secs), 3)
        else:
            rows[name]["variant"] = variant_specs[name]
    if probes:
        common = ["--n-docs", str(n_docs), "--threads", str(threads), "--batch-size", str(batch_size)]
        for name in rows:
            if name in hf_settings:
                args = ["hf", str(encoder), str(data), *common, "--hf-kwargs", json.dumps(hf_settings[name])]
            else:
                args = ["ours", str(model), str(data), *common, "--variant", variant_specs[name]]
            rows[name].update(run_probe(args))
    base_hf = rows["hf_default"]["words_per_s_median"]
    best_hf = max(rows[n]["words_per_s_median"] for n in hf_settings)
    for name in ours:
        rows[name]["x_hf_default"] = round(rows[name]["words_per_s_median"] / base_hf, 2)
        rows[name]["x_best_hf"] = round(rows[name]["words_per_s_median"] / best_hf, 2)
    from electramed_spacy.precision import calibration, choose_autocast

    chosen = {"autocast_auto": choose_autocast(what="the benchmark") or "float32", "matmul_flops": calibration()}
    print(f"autocast = \"auto\" chose {chosen['autocast_auto']} on this machine: matmul "
          f"{chosen['matmul_flops']['float32'] / 1e9:.0f} GFLOP/s float32, {chosen['matmul_flops']['bfloat16'] / 1e9:.0f} bf16")
    result = {
        "model": str(model), "encoder": str(encoder), "data": str(data), "docs": len(texts), "words": n_words,
        "auto_chose": chosen,
        "torch_threads": threads, "repeats": repeats, "ours_batch_size": batch_size,
        "loadavg_per_repeat": loads, "cpu": _cpu_name(), "cpu_flags": _cpu_flags(), "torch": torch.__version__,
        "transformers": transformers.__version__, "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "default"),
        "rows": rows,
        "note": "HF head random (5-way BIO); words = spaCy tokens; hf_default truncates at 512 wordpieces",
    }
    for name, row in rows.items():
        extra = (f" x{row['x_hf_default']} vs hf_default" if name in ours
                 else f", {100 * row['model_forward_share']:.0f}% of it in the model's forward")
        print(f"{name:24s} {row['words_per_s_median']:9.1f} words/s (min {row['words_per_s_min']}, "
              f"spread {row['spread_pct']}%) load {row.get('load_s')} s, peak RSS {row.get('peak_rss_mb')} MB{extra}")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


@app.command()
def accuracy(
    model: Path, data: Path,
    variant: List[str] = typer.Option([], help="Rows besides the pipeline as saved: name:key=value;..."),
    threads: int = typer.Option(2), batch_size: int = typer.Option(32),
    output: Optional[Path] = typer.Option(None),
) -> None:
    """Entity P/R/F of the pipeline as saved and of each variant on every doc of DATA (nlp.evaluate)."""
    import spacy
    import torch
    from spacy.tokens import DocBin
    from spacy.training import Example

    torch.set_num_threads(threads)
    rows = {}
    for spec in ["as_saved:", *variant]:
        name, overrides = parse_variant(spec)
        nlp = spacy.load(model, config=overrides)
        examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(data).get_docs(nlp.vocab)]
        start, load = time.perf_counter(), loadavg()
        scores = nlp.evaluate(examples, batch_size=batch_size)
        rows[name] = {
            "variant": spec, "ents_f": round(100 * scores["ents_f"], 2), "ents_p": round(100 * scores["ents_p"], 2),
            "ents_r": round(100 * scores["ents_r"], 2),
            "per_type_f": {k: round(100 * v["f"], 2) for k, v in scores["ents_per_type"].items()},
            "seconds_untimed_comparison": round(time.perf_counter() - start, 1), "loadavg": load,
        }
        print(f"{name:16s} F1 {rows[name]['ents_f']:6.2f}  P {rows[name]['ents_p']:6.2f}  R {rows[name]['ents_r']:6.2f}", flush=True)
        if output:  # after every row, so a long run keeps what it has measured
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"model": str(model), "data": str(data), "docs": len(examples), "rows": rows}, indent=2))


def build_pipeline(encoder: Path, data: Path, out: Path, config: Path) -> Path:
    """The NER pipeline of `config` on `encoder`, initialised with the labels of DATA's first 20 docs, untrained."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp_config = spacy.util.load_config(config, overrides={"paths.model": str(encoder)}, interpolate=True)
    nlp = spacy.util.load_model_from_config(nlp_config, auto_fill=True)
    docs = list(DocBin().from_disk(data).get_docs(nlp.vocab))[:20]
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    nlp.to_disk(out)
    return out


@app.command()
def quick(
    encoder: Path = typer.Argument(..., help="A save_pretrained encoder folder (BERT, ELECTRA, MPNet, ...)"),
    data: Path = typer.Argument(..., help="DocBin of texts with entities (e.g. corpus/bc5cdr_test.spacy)"),
    n_docs: int = typer.Option(40, help="Texts to time"),
    repeats: int = typer.Option(3, help="Interleaved timed passes per row"),
    threads: int = typer.Option(2, help="torch threads, both sides"),
    config: Path = typer.Option(Path(__file__).resolve().parents[2] / "configs" / "ner.cfg"),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON"),
) -> None:
    """Speed in about two minutes: the default NER config on ENCODER (its head untrained: speed does not depend
    on it) against transformers.pipeline("token-classification") on the same weights, interleaved, with the
    words/s spread and what `auto` chose."""
    with tempfile.TemporaryDirectory(prefix="ner_quick_") as tmp:
        pipeline = build_pipeline(encoder, data, Path(tmp) / "ner", config)
        compare(pipeline, data, encoder=encoder, n_docs=n_docs, repeats=repeats, threads=threads, batch_size=32,
                variant=[], hf_batch_size=[8, 16], hf_stride=0, probes=False, output=output)


@app.command("build-base")
def build_base(
    encoder_out: Path = typer.Argument(..., help="Where to write the random ELECTRA-base checkpoint"),
    pipeline_out: Path = typer.Argument(..., help="Where to write the (untrained) NER pipeline on it"),
    vocab: Path = typer.Option(..., help="SciVocab vocab.txt (../shared/data/vocab/electramed_scivocab_uncased.txt)"),
    data: Path = typer.Option(..., help="DocBin with BC5CDR entities (for the NER labels only)"),
    config: Path = typer.Option(Path(__file__).resolve().parents[2] / "configs" / "ner.cfg"),
    seed: int = typer.Option(0),
) -> None:
    """A randomly initialised ELECTRA-base (12 x 768) saved like the published ELECTRAMed checkpoint
    (pytorch_model.bin, ElectraForPreTraining config, vocab.txt; no tokenizer files), and an NER pipeline
    assembled on it from configs/ner.cfg and initialised with BC5CDR labels (no training: speed only)."""
    import torch
    from transformers import ElectraConfig, ElectraForPreTraining

    import electramed_spacy  # noqa: F401  (registers the architectures)

    words = [line.rstrip("\n") for line in vocab.open(encoding="utf8")]
    torch.manual_seed(seed)
    cfg = ElectraConfig(
        vocab_size=len(words), embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=512, architectures=["ElectraForPreTraining"],
    )
    encoder_out.mkdir(parents=True, exist_ok=True)
    ElectraForPreTraining(cfg).save_pretrained(encoder_out, safe_serialization=False)
    shutil.copyfile(vocab, encoder_out / "vocab.txt")
    build_pipeline(encoder_out, data, pipeline_out, config)
    print(f"{encoder_out}: {sorted(p.name for p in encoder_out.iterdir())}; pipeline {pipeline_out}")


def _cpu_flags() -> List[str]:
    """The CPU flags that decide which precision is fast here (bf16 and int8 units, AVX-512, AVX2)."""
    wanted = ("avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni", "avx512f", "avx2", "fma")
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [f for f in wanted if f in flags]
    return []


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    app()
