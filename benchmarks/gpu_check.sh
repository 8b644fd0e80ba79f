#!/usr/bin/env bash
# GPU readiness in one run (issue 13, item 4): what only a GPU shows, sized for ~10 minutes of a lent
# H100/H200 (the `device` tool gives 15 minutes in all: run this once, then give the machine back).
#   1. pre-training throughput and model FLOPs utilisation, ELECTRA-small and ELECTRA-base shapes, bf16,
#      `electramed pretrain` itself (tokens/s from its log.jsonl; MFU = 6 x parameters x tokens/s / peak);
#   2. a short pre-training run that checkpoints, is killed with SIGKILL, resumes, and ends on the same
#      loss row as an uninterrupted run with the same settings.
# Usage (repository root):  bash benchmarks/gpu_check.sh OUT_DIR
#   CORPUS  text files to pre-train on (default: ../shared/data/pretrain/*.txt, else the committed sample)
#   VOCAB   WordPiece vocab.txt (default: ELECTRAMed's SciVocab in ../shared/data/vocab, else trained)
#   STEPS   timed steps per shape (default 60); PEAK_TFLOPS dense bf16 peak of the card (default 989:
#           H100/H200 SXM); SMOKE=1 runs the tiny shapes on CPU in a minute (to test this script).
# The device machine has no network: the Python environment (requirements.txt) must already be there.
set -euo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
STEPS=${STEPS:-60}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
CORPUS=${CORPUS:-$(ls ../shared/data/pretrain/*.txt >/dev/null 2>&1 && echo '../shared/data/pretrain/*.txt' || echo assets/sample/pretrain.txt)}
VOCAB=${VOCAB:-$( [ -f ../shared/data/vocab/electramed_scivocab_uncased.txt ] && echo ../shared/data/vocab/electramed_scivocab_uncased.txt || echo null)}
LOG_EVERY=10
if [ "${SMOKE:-0}" = 1 ]; then CFG=configs/pretrain_tiny.cfg; STEPS=12; LOG_EVERY=2; else CFG=configs/pretrain_small.cfg; fi
COMMON=(--paths.corpus "$CORPUS" --paths.vocab "$VOCAB" --training.log_every $LOG_EVERY --training.progress_bar false
        --training.warmup_steps 10 --training.precision bf16)
python - <<'EOF' | tee "$OUT/device.txt"
import platform, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or platform.machine())
EOF

# 1. throughput + MFU per shape (base = ELECTRA-base: 12 x 768, generator 1/3)
declare -A SHAPES=(
  [small]=""
  [base]="--model.embedding_size 768 --model.hidden_size 768 --model.num_attention_heads 12 --model.intermediate_size 3072 --model.generator_size 0.333"
)
[ "${SMOKE:-0}" = 1 ] && SHAPES=([tiny]="")
for shape in "${!SHAPES[@]}"; do
  # shellcheck disable=SC2086
  electramed pretrain "$CFG" "${COMMON[@]}" ${SHAPES[$shape]} --paths.output "$OUT/$shape" --overwrite \
    --training.max_steps "$STEPS" --training.checkpoint_every 100000 > "$OUT/$shape.log" 2>&1
  python - "$CFG" "$OUT/$shape" "$PEAK_TFLOPS" ${SHAPES[$shape]} <<'EOF' | tee -a "$OUT/throughput.txt"
import json, statistics, sys
from pathlib import Path
from electramed_spacy.pretraining.config import load_config, parse_overrides
from electramed_spacy.pretraining.model import build_pretrainer, count_params
from electramed_spacy.pretraining.prepare import vocab_size
cfg_path, run, peak = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
cfg = load_config(cfg_path, parse_overrides(sys.argv[4:]))
rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
rates = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]  # the first window holds start-up
tok_s = statistics.median(rates) if rates else float("nan")
n = count_params(build_pretrainer(cfg, vocab_size=vocab_size(run / "vocab"), pad_token_id=0))
mfu = 6 * n * tok_s / (peak * 1e12)
print(json.dumps({"shape": run.name, "params_gen_plus_disc": n, "tokens_per_s_median": round(tok_s, 1),
                  "windows": len(rates), "mfu": round(mfu, 4), "peak_tflops": peak}))
EOF
done

# 2. checkpoint, SIGKILL, resume: the resumed run ends on the uninterrupted run's last loss row
KILL=(--training.max_steps 40 --training.checkpoint_every 10 --training.log_every 10)
[ "${SMOKE:-0}" = 1 ] && KILL=(--training.max_steps 20 --training.checkpoint_every 5 --training.log_every 5)
electramed pretrain "$CFG" "${COMMON[@]}" "${KILL[@]}" --paths.output "$OUT/straight" --overwrite > "$OUT/straight.log" 2>&1
electramed pretrain "$CFG" "${COMMON[@]}" "${KILL[@]}" --paths.output "$OUT/killed" --overwrite > "$OUT/killed.log" 2>&1 &
PID=$!
until [ "$(ls "$OUT/killed/checkpoints" 2>/dev/null | wc -l)" -ge 2 ]; do sleep 1; kill -0 $PID 2>/dev/null || break; done
kill -9 $PID 2>/dev/null || true
wait $PID 2>/dev/null || true
electramed pretrain "$CFG" "${COMMON[@]}" "${KILL[@]}" --paths.output "$OUT/killed" --resume >> "$OUT/killed.log" 2>&1
python - "$OUT" <<'EOF' | tee "$OUT/resume.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
last = lambda run: [json.loads(l) for l in (out / run / "log.jsonl").read_text().splitlines() if l.strip()][-1]
a, b = last("straight"), last("killed")
keys = [k for k in ("step", "gen_loss", "disc_loss", "tokens") if k in a]
same = all(abs(a[k] - b[k]) <= 1e-3 * max(1.0, abs(a[k])) for k in keys)
print(json.dumps({"uninterrupted": {k: a[k] for k in keys}, "killed_and_resumed": {k: b[k] for k in keys}, "same": same}))
sys.exit(0 if same else 1)
EOF
echo "gpu_check: wrote $OUT/{device,throughput,resume}.txt"
