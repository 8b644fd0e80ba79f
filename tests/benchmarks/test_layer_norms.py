"""benchmarks/pretraining/layer_norms.py: one mean norm per layer (embeddings included) over real tokens only, and a
model whose last layer is scaled up reads as larger there and nowhere else."""
import json

import pytest
import typer
from conftest import load_benchmark, save_tiny_bert

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "aspirin", "causes", "ulcers", "in", "rats", "."]


def test_scaled_last_layer_reads_larger(tmp_path):
    import torch
    from transformers import BertModel

    script = load_benchmark("layer_norms")
    base = save_tiny_bert(tmp_path / "base", VOCAB)
    model = BertModel.from_pretrained(base)
    with torch.no_grad():  # the last LayerNorm's gain and bias x 3: the last layer's states x 3
        model.encoder.layer[-1].output.LayerNorm.weight.mul_(3)
        model.encoder.layer[-1].output.LayerNorm.bias.mul_(3)
    model.save_pretrained(tmp_path / "base")  # overwrite weights only ...
    save_tiny_bert(tmp_path / "plain", VOCAB)  # ... and a fresh copy of the original
    (tmp_path / "text.txt").write_text("aspirin causes ulcers .\nrats .\n\n", encoding="utf8")
    script.main([f"plain={tmp_path / 'plain'}", f"scaled={tmp_path / 'base'}"], text=tmp_path / "text.txt",
                sentences=200, output=tmp_path / "out.json", rescale=None, to=None, save=None)
    table = json.loads((tmp_path / "out.json").read_text())
    assert table["sentences"] == 2
    plain, scaled = table["encoders"]["plain"], table["encoders"]["scaled"]
    assert len(plain["mean_norm"]) == 3  # embeddings + 2 layers
    assert plain["tokens"] == 10  # 4 + 2 tokens and [CLS]/[SEP] twice; the short one's 2 pads not counted
    assert plain["mean_norm"][:2] == scaled["mean_norm"][:2]
    assert scaled["mean_norm"][2] == pytest.approx(3 * plain["mean_norm"][2], rel=1e-3)


def test_empty_text_is_an_error(tmp_path):
    (tmp_path / "text.txt").write_text("\n\n", encoding="utf8")
    with pytest.raises(typer.BadParameter, match="no sentences"):
        load_benchmark("layer_norms").main(["a=b"], text=tmp_path / "text.txt", sentences=5, output=None,
                                           rescale=None, to=None, save=None)


def test_rescale_matches_the_reference_last_layer_only(tmp_path):
    """The lever's copy: the last layer's mean norm becomes the reference's, earlier layers are unchanged, and
    the copy loads with its tokenizer."""
    import torch
    from transformers import AutoModel, AutoTokenizer, BertModel

    script = load_benchmark("layer_norms")
    save_tiny_bert(tmp_path / "ref", VOCAB)
    big = BertModel.from_pretrained(save_tiny_bert(tmp_path / "big", VOCAB))
    with torch.no_grad():
        big.encoder.layer[-1].output.LayerNorm.weight.mul_(2.5)
        big.encoder.layer[-1].output.LayerNorm.bias.mul_(2.5)
    big.save_pretrained(tmp_path / "big")
    (tmp_path / "text.txt").write_text("aspirin causes ulcers .\nrats in rats .\n", encoding="utf8")
    script.main([f"ref={tmp_path / 'ref'}", f"big={tmp_path / 'big'}"], text=tmp_path / "text.txt", sentences=200,
                output=tmp_path / "out.json", rescale="big", to="ref", save=tmp_path / "fixed")
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["rescaled"]["factor"] == pytest.approx(1 / 2.5, rel=1e-3)
    assert AutoTokenizer.from_pretrained(tmp_path / "fixed").tokenize("aspirin rats") == ["aspirin", "rats"]
    assert AutoModel.from_pretrained(tmp_path / "fixed") is not None
    fixed = script.layer_norms(str(tmp_path / "fixed"), ["aspirin causes ulcers .", "rats in rats ."])
    assert fixed["mean_norm"] == pytest.approx(out["encoders"]["ref"]["mean_norm"], rel=1e-3)


def test_rescale_options_go_together_and_never_overwrite(tmp_path):
    script = load_benchmark("layer_norms")
    (tmp_path / "text.txt").write_text("rats .\n", encoding="utf8")
    with pytest.raises(typer.BadParameter, match="go together"):
        script.main(["a=b"], text=tmp_path / "text.txt", sentences=5, output=None, rescale="a", to=None, save=None)
    with pytest.raises(typer.BadParameter, match="exists"):
        script.main(["a=b"], text=tmp_path / "text.txt", sentences=5, output=None, rescale="a", to="a",
                    save=tmp_path)
    with pytest.raises(typer.BadParameter, match="name two of"):
        script.main(["a=b"], text=tmp_path / "text.txt", sentences=5, output=None, rescale="a", to="c",
                    save=tmp_path / "new")
