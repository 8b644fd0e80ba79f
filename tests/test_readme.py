"""The README a user reads: about 300 lines, no internal talk, every code block runs as written.

Python blocks are executed; `spacy.load("en_electramed_*")` loads the installed package when
`spacy project run all` has installed it, else a tiny pipeline of the same components built here.
Shell lines are checked against the CLI and the project: each `electramed` command and option exists,
each `spacy project run` names a command or workflow of project.yml and sets only declared vars.
The results table is the one `scripts/make_docs.py` writes from benchmarks/*/results.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from conftest import build_tiny_electra
from spacy.tokens import Span

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
INTERNAL = re.compile(r"issue [0-9]|session|/work/|20[0-9]{2}-[0-9]{2}-|\bv3\b|\bLP-FT\b|\bcont1\b|\btapt\b|\blever", re.I)


def test_short_and_free_of_internal_talk():
    assert len(README.splitlines()) <= 300
    docs = [README] + [p.read_text(encoding="utf8") for p in (ROOT / "docs").glob("*.md")]
    for text in docs:
        assert not INTERNAL.findall(text), INTERNAL.findall(text)[:5]


def test_docs_and_results_table_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_docs.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _tiny_pipelines(tmp_path: Path) -> dict:
    from spacy.training import Example

    from electramed_spacy.corpora.bioasq import make_qa_doc
    from electramed_spacy.doc.relations import Relation, set_relations

    encoder = build_tiny_electra(tmp_path / "encoder")
    window = {"@misc": "electramed.strided_spans.v1", "window": 32, "stride": 24}
    ner = spacy.blank("en")
    ner.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(encoder),
                                                  "get_spans": window}})
    ner.add_pipe("ner", config={"model": {"tok2vec": {"@architectures": "spacy-transformers.TransformerListener.v1",
                                                      "grad_factor": 1.0, "pooling": {"@layers": "reduce_mean.v1"}}}})
    doc = ner.make_doc("Cisplatin induced nephrotoxicity.")
    doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")]
    ner.initialize(lambda: [Example(ner.make_doc(doc.text), doc)])
    ner.to_disk(tmp_path / "ner")

    rel = spacy.blank("en")
    rel.add_pipe("electramed_sentencizer")
    rel.add_pipe("transformer", config={"model": {"@architectures": "electramed.Transformer.v1", "name": str(encoder),
                                                  "get_spans": window}})
    rel.add_pipe("electramed_relation_extractor", name="relation_extractor", config={"model": {"hidden_width": 8}})
    doc = rel.make_doc("Ketoconazole raises simvastatin levels.")
    doc.ents = [Span(doc, 0, 1, "drug"), Span(doc, 2, 3, "drug")]
    set_relations(doc, [Relation(doc.ents[0], doc.ents[1], "mechanism")])
    rel.initialize(lambda: [Example(rel.make_doc(doc.text), doc)])
    rel.to_disk(tmp_path / "re")

    qa = spacy.blank("en")
    qa.add_pipe("electramed_qa", config={"model": {"name": str(encoder), "max_length": 48, "overlap": 8, "max_question_tokens": 16}})
    ref, _ = make_qa_doc(qa.make_doc, "Which drug?", "Naloxone works.", [(0, 8)], qa_id="q_001")
    pred, _ = make_qa_doc(qa.make_doc, "Which drug?", "Naloxone works.", qa_id="q_001")
    qa.initialize(lambda: [Example(pred, ref)])
    qa.to_disk(tmp_path / "qa")
    return {"en_electramed_ner": tmp_path / "ner", "en_electramed_re": tmp_path / "re", "en_electramed_qa": tmp_path / "qa"}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    names = ["en_electramed_ner", "en_electramed_re", "en_electramed_qa"]
    if all(spacy.util.is_package(n) for n in names):
        return {n: n for n in names}
    return _tiny_pipelines(tmp_path_factory.mktemp("readme_pipelines"))


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_python_blocks_run(index, pipelines, tmp_path, monkeypatch):
    source = BLOCKS[index][1]
    load = spacy.load
    monkeypatch.setattr(spacy, "load", lambda name, *a, **k: load(pipelines.get(name, name), *a, **k))
    monkeypatch.chdir(tmp_path)
    exec(compile(source, f"README.md block {index}", "exec"), {"__name__": "__readme__"})


def _shell_lines():
    for lang, body in BLOCKS:
        if lang == "bash":
            for line in re.sub(r"\\\n\s*", " ", body).splitlines():
                line = line.split(" #")[0].strip()
                for part in filter(None, (p.strip() for p in line.split("&&"))):
                    yield part


SHELL = list(_shell_lines())


def test_shell_blocks_name_real_commands_options_and_vars():
    import click
    import typer
    from weasel.util import load_project_config

    from electramed_spacy.cli import app

    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="electramed")
    project = load_project_config(ROOT, interpolate=False)
    runnable = {c["name"] for c in project["commands"]} | set(project["workflows"])
    checked = 0
    for line in SHELL:
        args = shlex.split(line)
        if args[0] == "electramed":
            command = group.get_command(ctx, args[1])
            assert command is not None and not command.hidden, line
            known = {opt for p in command.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
            passthrough = (command.context_settings or {}).get("ignore_unknown_options")
            for a in args[2:]:
                if a.startswith("--"):
                    assert a.split("=")[0] in known or passthrough, f"{line}: {a}"
            checked += 1
        elif args[:5] == ["python", "-m", "spacy", "project", "assets"]:
            assert project["assets"], line
            checked += 1
        elif args[:5] == ["python", "-m", "spacy", "project", "run"]:
            assert args[5] in runnable, line
            assert args[6:7] == ["."] or not args[6:] or args[6].startswith("--"), line
            for a in args[7:]:
                if a.startswith("--vars."):
                    assert a[len("--vars."):] in project["vars"], f"{line}: {a}"
            checked += 1
    assert checked >= 20


def test_the_cheap_shell_lines_run(tmp_path):
    """Conversion of the committed sample, as the README shows it for a user's own files."""
    sample = ROOT / "assets" / "sample" / "sample_train.PubTator.txt"
    out = tmp_path / "my_train.spacy"
    result = subprocess.run(["electramed", "convert", str(sample), str(out), "--format", "pubtator"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and out.exists(), result.stdout + result.stderr


def test_every_relative_link_leads_to_a_file():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("*/README.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf8")):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"
