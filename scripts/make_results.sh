#!/usr/bin/env bash
# Regenerate docs/results/*.md: the original query, blind pseudo-relevance feedback (the top 3 results' opening
# words appended), the untrained embedded SmolLM2 (no reasoning, prompted as the quickstart trains it, in expand
# mode) and a trained checkpoint, on the demo's held-out queries and on SciFact test, each table with
# paired-randomisation significance marks against the original query. Every Markdown file carries the
# exact `deepretrieval eval` command that produced it.
#
#   scripts/make_results.sh [CHECKPOINT]      (default: runs/quickstart/run/final, from `make quickstart`)
#
# Outputs (results.json, per-query files, resumable generation logs) stay under runs/results/; an
# interrupted run, started again, resumes where it stopped. Needs ../shared/data/scifact (or DEEPRETRIEVAL_DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKPOINT=${1:-runs/quickstart/run/final}
DATA=${DEEPRETRIEVAL_DATA:-../shared/data}
DR=${DR:-deepretrieval}
[ -d "$CHECKPOINT" ] || { echo "no checkpoint at $CHECKPOINT: run make quickstart first or pass a folder" >&2; exit 2; }
# The quickstart's prompt: the top 3 results of the query, 8 words each (its policy card says so too).
FEEDBACK=(--set prompting.feedback=3 --set prompting.feedback_words=8)
# 32 new tokens: the quickstart policy answers in at most 16 (2 CPU cores; reasoning rows need GPUs)
run() {  # the baselines, then the models in expand mode (the quickstart's), one table
  local name=$1; shift
  $DR eval "$@" "${FEEDBACK[@]}" --policy original,feedback --out "runs/results/$name-baselines"
  $DR eval "$@" "${FEEDBACK[@]}" --policy "original,untrained@no-reasoning,$CHECKPOINT" --query-mode expand \
    --max-new-tokens 32 --out "runs/results/$name"
}
run demo --task demo
run scifact --task beir --data "$DATA/scifact" --split test

mkdir -p docs/results
for name in demo scifact; do
  # the plots stay beside their runs (their links are relative to runs/results/...), not in docs/
  cat "runs/results/$name-baselines/results.md" <(echo) "runs/results/$name/results.md" \
    | awk '/^## Plots/ { skip = 1; next } /^# / { skip = 0 } !skip' > "docs/results/$name.md"
done
echo "wrote docs/results/demo.md and docs/results/scifact.md"
