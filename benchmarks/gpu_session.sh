#!/usr/bin/env bash
# The one prepared run for a lent GPU machine: benchmarks/session.py runs its steps in order of
# value, each with its own time limit inside one budget, every result written as it is measured.
#
#     OUT=DIR DGCN_AUTHORS_DIR=build/authors-dgcnet bash benchmarks/gpu_session.sh
#
# Steps and default limits (seconds), cut to what is left of GPU_SESSION_SECONDS (default 480,
# inside a 10-minute command with slack for a slow machine start; the last 10 s are kept for
# the report):
#
#     environment 20 | training, eager variants 100 (TF32 eager, bf16, bf16 + channels_last,
#     fp32 with TF32 off; no variant starts after 65) | evaluation 75 | the authors' network,
#     training 90 and evaluation 45 | end to end, 30 iterations of dgcn train 80 | modules 40 |
#     CUDA tests 60 | torch.compile 90 (skipped with under 45 left) | report 10
#
# What it needs: a python3 with torch and torchvision (a CUDA build for the GPU steps; PYTHON
# chooses it). Nothing is installed: the package is used from this checkout through
# PYTHONPATH, and a missing package (numpy, pillow, pyyaml, tqdm, pytest) is reported in one
# line by the environment step and the steps that need it are skipped. The authors' side by
# side needs a copy of their repository (git clone https://github.com/lxtGH/GALD-DGCNet) in
# the folder DGCN_AUTHORS_DIR names, e.g. build/authors-dgcnet (ignored by git; on a lent
# machine, carry it). Without a CUDA GPU only the environment and the report run, every other
# step skipped in one line.
#
# Results go to $OUT (default build/gpu-session): *_cuda.json (environment and session included),
# gpu_session.log and README.md. Afterwards, here: copy the *_cuda.json files into
# benchmarks/results/ and run `python benchmarks/report.py --out benchmarks/results/README.md`.
set -uo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/session.py --budget "${GPU_SESSION_SECONDS:-480}" \
    ${OUT:+--out "$OUT"}
