"""Everything is found through entry points, without importing electramed_spacy."""
import subprocess
import sys


def _run(code: str) -> str:
    # A fresh interpreter, so nothing this test session imported can help.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_architectures_resolve_without_import():
    out = _run(
        "import sys, spacy\n"
        "from spacy.util import registry\n"
        "assert 'electramed_spacy' not in sys.modules\n"
        "f = registry.architectures.get('electramed.Transformer.v1')\n"
        "g = registry.misc.get('electramed.strided_spans.v1')\n"
        "print(f.__module__, g.__module__)\n"
    )
    assert out.split() == ["electramed_spacy.ml.transformer", "electramed_spacy.ml.transformer"]


def test_transformer_config_builds_from_add_pipe_without_import():
    out = _run(
        "import spacy\n"
        "nlp = spacy.blank('en')\n"
        "trf = nlp.add_pipe('transformer', config={'model': {'@architectures': 'electramed.Transformer.v1', 'name': 'some/dir'}})\n"
        "print(trf.model.attrs['name'], trf.model._init_tokenizer_config['do_lower_case'])\n"
    )
    assert out.split() == ["some/dir", "True"]
