#!/usr/bin/env bash
# The GPU check, as one command on a lent GPU machine (the `device` tool), in under 8 minutes on one GPU:
# the production-size stand-in's training step at the notebook's batch in bf16 and fp16 (+ GradScaler)
# against the notebook's form, tokens/s, peak GPU memory, FLOP/s against the measured bf16 matmul rate,
# and encoding documents/s (benchmarks/gpu.py).
#
#   bash benchmarks/gpu_check.sh --prepare       # here, once: the wheels the GPU image lacks, into .whl/ (ignored)
#   device run: command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540
#   python -m benchmarks record <files_at>/gpu_check.jsonl   # here: add its figures to results/ and the README
#
# The GPU image has torch, transformers and sentence-transformers of its own; the carried wheels give the
# versions ko-sparse needs (sentence-transformers 6.2) and what the image lacks (opensearch-py).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(sentence-transformers==6.2.0 opensearch-py==3.2.0 opensearch-protobufs==1.2.0 Events==0.5)

if [ "${1:-}" = --prepare ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
  exit 0
fi

OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu_machine.txt"
timeout 480 python3 -m benchmarks gpu --repeat 5 2>"$OUT/gpu_check.log" | tee "$OUT/gpu_check.jsonl"
