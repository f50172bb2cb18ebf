#!/usr/bin/env bash
# Regenerate docs/results/*.md: the original query, the untrained embedded SmolLM2 (no reasoning, as the
# quickstart trains it) and a trained checkpoint, on the demo's held-out queries and on SciFact test, each table with
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
POLICIES="original,untrained@no-reasoning,$CHECKPOINT"
# 32 new tokens: the quickstart policy answers in at most 16 (2 CPU cores; reasoning rows need GPUs)

$DR eval --task demo --policy "$POLICIES" --max-new-tokens 32 --out runs/results/demo
$DR eval --task beir --data "$DATA/scifact" --split test --policy "$POLICIES" --max-new-tokens 32 \
    --out runs/results/scifact

mkdir -p docs/results
cp runs/results/demo/results.md docs/results/demo.md
cp runs/results/scifact/results.md docs/results/scifact.md
echo "wrote docs/results/demo.md and docs/results/scifact.md"
