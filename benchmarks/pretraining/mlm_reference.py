"""Is slow pre-training a defect of our loop or a property of the model size and budget?

Trains a plain Hugging Face `ElectraForMaskedLM` (transformers' own loss over full-vocabulary
logits, 15% of non-special tokens replaced by [MASK], AdamW, linear warm-up/decay, clipping)
on the shards and vocabulary of an `electramed pretrain` run, with the sizes of that run's
generator, and prints loss and masked-token accuracy, to set beside the run's log.jsonl.

    electramed pretrain configs/pretrain_tiny.cfg --paths.corpus SMALL.txt --paths.output RUN \\
        --training.max_steps 600 --objective.disc_weight 0.0 --model.generator_size 1.0
    python benchmarks/pretraining/mlm_reference.py RUN --steps 600 --batch-size 16 --lr 0.002 --warmup 15
"""
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from transformers import BertTokenizerFast, ElectraConfig, ElectraForMaskedLM


def main(
    run: Path, steps: int = 600, batch_size: int = 16, lr: float = 0.002, warmup: int = 15,
    embedding_size: int = 32, hidden_size: int = 64, layers: int = 2, heads: int = 2, intermediate_size: int = 128,
    seed: int = 0, output: Optional[Path] = None,
) -> None:
    torch.manual_seed(seed)
    shards = sorted((run / "shards").glob("shard_*.npy"))
    ids = torch.from_numpy(np.concatenate([np.load(p) for p in shards]).astype(np.int64))
    tok = BertTokenizerFast.from_pretrained(run / "vocab")
    config = ElectraConfig(vocab_size=len(tok), embedding_size=embedding_size, hidden_size=hidden_size,
                           num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate_size)
    model = ElectraForMaskedLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, eps=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    special = torch.tensor([tok.pad_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id])
    g = torch.Generator().manual_seed(seed)
    log = []
    for step in range(1, steps + 1):
        batch = ids[torch.randint(len(ids), (batch_size,), generator=g)]
        selected = (torch.rand(batch.shape, generator=g) < 0.15) & ~torch.isin(batch, special)
        inputs = batch.masked_fill(selected, tok.mask_token_id)
        out = model(input_ids=inputs, attention_mask=(batch != tok.pad_token_id).long(),
                    labels=torch.where(selected, batch, torch.full_like(batch, -100)))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 20 == 0:
            acc = (out.logits.argmax(-1)[selected] == batch[selected]).float().mean().item()
            log.append({"step": step, "gen_loss": round(out.loss.item(), 4), "gen_acc": round(acc, 4)})
    ours = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    tail = lambda rows, k: round(float(np.mean([r[k] for r in rows[-5:]])), 3)  # noqa: E731
    result = {"run": str(run), "sequences": len(ids), "steps": steps,
              "reference_last100_gen_loss": tail(log, "gen_loss"), "reference_last100_gen_acc": tail(log, "gen_acc"),
              "ours_last_logged_gen_loss": tail(ours, "gen_loss"), "ours_last_logged_gen_acc": tail(ours, "gen_acc")}
    print(json.dumps(result, indent=2))
    if output:
        output.write_text(json.dumps({**result, "reference_log": log}, indent=2))


if __name__ == "__main__":
    typer.run(main)
