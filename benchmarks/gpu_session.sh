#!/usr/bin/env bash
# One prepared run for a lent GPU machine: the CUDA tests, then the CUDA benchmarks, with every
# result copied to $OUT (or benchmarks/results/ when OUT is unset). Sized to end within about
# 9 minutes on one H100 (each step has its own time limit, so one slow step cannot eat the
# others' time); uses the machine's own python3/torch with this checkout on PYTHONPATH.
#
#     bash benchmarks/gpu_session.sh
#
# Afterwards, here: copy the *_cuda.json / *_cuda.png files into benchmarks/results/ and run
# `python benchmarks/report.py --out benchmarks/results/README.md`.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
log="$out/gpu_session.log"

step() {  # step SECONDS COMMAND...: run with a time limit, log it, go on whatever happens
    local limit=$1
    shift
    echo "== $* (limit ${limit} s)" | tee -a "$log"
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    echo "== exit ${PIPESTATUS[0]}" | tee -a "$log"
}

step 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step 20 python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)"
step 150 python3 -m pytest -q -rs -m cuda tests
step 90 python3 benchmarks/modules.py
step 240 python3 benchmarks/train_step.py --iterations 10 --warmup 3
step 120 python3 benchmarks/evaluation.py --images 4
for f in benchmarks/results/*_cuda.json benchmarks/results/*_cuda.png; do
    [ -e "$f" ] && [ "$out" != benchmarks/results ] && cp "$f" "$out"/
done
step 20 python3 benchmarks/report.py --out "$out/README.md"
