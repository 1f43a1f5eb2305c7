#!/usr/bin/env bash
# The router evaluation figures of bench/RESULTS-routing.md: `architect router eval` on the shared data
# (../shared/data/routing), one JSON per run in OUT (default bench/out-routing). Single-threaded numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data/routing}
OUT=${1:-bench/out-routing}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
A=(python -m architect router eval)
start=$(date +%s)
EX=(--exclude "$D/routellm_mmlu_contaminated_prompts.jsonl")
PAIR=(--weak mistralai/mixtral-8x7b-chat --strong gpt-4-1106-preview)

# 1. MMLU replay after 500 warm-up outcomes, text only and with the subject as a tag, 5 shuffles
for s in 0 1 2 3 4; do
  "${A[@]}" --data "$D/routellm_mmlu.csv" "${EX[@]}" --replay --warmup 500 --seed "$s" \
    --router text --router text+tag --bootstrap 1000 --json > "$OUT/mmlu_replay_s$s.json"
done
# 2. RouterBench ARC-Challenge: fitted on train, knob chosen on train (5-fold out-of-fold), test once
for s in 0 1 2; do
  "${A[@]}" --data "$D/routerbench_arc_challenge_test.csv" --train "$D/routerbench_arc_challenge_train.csv" \
    --seed "$s" --router text --router text-pooled --bootstrap 1000 --json > "$OUT/arc_s$s.json"
done
# 3. Cross-file, Mixtral vs GPT-4 on both: MMLU → ARC test, ARC train → MMLU
"${A[@]}" --data "$D/routerbench_arc_challenge_test.csv" --train "$D/routellm_mmlu.csv" "${EX[@]}" "${PAIR[@]}" \
  --router text --router tfidf-lr --bootstrap 1000 --json > "$OUT/mmlu_to_arc.json"
"${A[@]}" --data "$D/routellm_mmlu.csv" --train "$D/routerbench_arc_challenge_train.csv" "${EX[@]}" "${PAIR[@]}" \
  --router text --router tfidf-lr --bootstrap 1000 --json > "$OUT/arc_to_mmlu.json"
# 4. the same pair within ARC (train → test), for reference
"${A[@]}" --data "$D/routerbench_arc_challenge_test.csv" --train "$D/routerbench_arc_challenge_train.csv" "${PAIR[@]}" \
  --router text --router tfidf-lr --bootstrap 1000 --json > "$OUT/arc_pair.json"
# 5. with the semantic extra: the static embedding added to the text features
if python -c "import static_model" 2>/dev/null; then
  "${A[@]}" --data "$D/routellm_mmlu.csv" "${EX[@]}" --replay --warmup 500 --seed 0 \
    --router embed --router embed+tag --bootstrap 1000 --json > "$OUT/mmlu_replay_embed_s0.json"
fi
echo "done in $(( $(date +%s) - start )) s"
