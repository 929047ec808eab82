#!/usr/bin/env bash
# The GPU check, as one command on a lent GPU machine (the `device` tool), in under 8 minutes on one GPU:
# the production-size stand-in trained through `ko-sparse train` at the notebook's and the realistic
# retrieval shape, eager and compiled (steps/s, tokens/s, peak memory, share of the measured bf16 matmul
# rate), and encoding documents/s against SparseEncoder.encode with the vectors on the host (benchmarks/gpu.py).
#
#   bash benchmarks/gpu_check.sh --prepare       # here, once: the wheels the GPU image lacks, into .whl/ (ignored)
#   device run: command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540
#   (bash benchmarks/gpu_check.sh --profile: a profile of two compiled training steps instead, 2 minutes)
#   python -m benchmarks record <files_at>/gpu_check.jsonl   # here: add its figures to results/ and docs/speed.md
#
# The GPU image has torch, transformers and sentence-transformers of its own; the carried wheels give the
# versions ko-sparse needs (sentence-transformers >= 6.2, which imports datasets) and what the image lacks:
# datasets with dill and multiprocess, ir-measures with pytrec-eval-terrier (the trainer's evaluators),
# opensearch-py (imported by the benchmarks' shared options).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(sentence-transformers==6.2.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 ir-measures==0.4.3
  pytrec-eval-terrier==0.5.11 opensearch-py==3.2.0 opensearch-protobufs==1.2.0 Events==0.5)

if [ "${1:-}" = --prepare ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}"
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
python3 -c "import torch, transformers, sentence_transformers, datasets, pyarrow; print('torch', torch.__version__, \
  'transformers', transformers.__version__, 'sentence-transformers', sentence_transformers.__version__, \
  'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)" | tee -a "$OUT/gpu_machine.txt"
if [ "${1:-}" = --profile ]; then  # where a compiled training step's time goes (benchmarks/gpu_profile.py)
  timeout 300 python3 -m benchmarks gpu_profile 2>"$OUT/gpu_profile.log" | tee "$OUT/gpu_profile.txt"
  exit 0
fi
timeout 400 python3 -m benchmarks gpu --repeat 5 2>"$OUT/gpu_check.log" | tee "$OUT/gpu_check.jsonl"
