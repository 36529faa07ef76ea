#!/usr/bin/env bash
# One prepared run for a lent GPU machine: the CUDA tests, then the CUDA benchmarks, every result
# written into $OUT as it is measured (or into benchmarks/results/ when OUT is unset).
#
#     bash benchmarks/gpu_session.sh            # PYTHON=/path/to/python to choose the interpreter
#
# What it needs: a python3 with torch and torchvision (a CUDA build for the GPU parts). The
# package is used from this checkout through PYTHONPATH (nothing is built or installed for it);
# the core dependencies that may be missing (numpy, pillow, pyyaml, tqdm, pytest) are installed
# with pip when they are, and the notebook extras (jupytext, matplotlib, nbval) are not needed:
# the test files that use them skip themselves. Without a CUDA GPU the tests run (the CUDA ones
# are skipped) and the benchmarks are left out, so the committed CPU results stay as they are.
#
# Time: the whole script ends within GPU_SESSION_SECONDS (default 540 s, inside a 10-minute
# limit, install included). Each step has its own limit, cut further so that no step runs past
# the deadline (the last 20 s are kept for the report):
#
#     environment 20 s | install, only if something is missing, 90 s | CUDA tests 150 s
#     train_step.py 180 s (no variant starts after 120 s) | evaluation.py 90 s
#     modules.py 90 s | report 20 s
#
# Every benchmark rewrites its JSON after each part ("complete": false until its end), so a step
# stopped at its limit still leaves what it measured. Afterwards, here: copy the *_cuda.json and
# *_cuda.png files into benchmarks/results/ and run
# `python benchmarks/report.py --out benchmarks/results/README.md`.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
budget=${GPU_SESSION_SECONDS:-540}
python=${PYTHON:-python3}
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 DGCN_BENCH_RESULTS="$out"
log="$out/gpu_session.log"
failed=()
reserve=20 # seconds kept for the report at the end

step() { # step SECONDS COMMAND...: run with a time limit within the deadline, log, go on
    local limit=$1
    shift
    local left=$((budget - reserve - (SECONDS - start)))
    ((limit > left)) && limit=$left
    if ((limit < 5)); then
        echo "== skipped (the ${budget} s budget is spent): $*" | tee -a "$log"
        failed+=("$* (no time left)")
        return
    fi
    echo "== $* (limit ${limit} s, at $((SECONDS - start)) s)" | tee -a "$log"
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$log"
    local status=${PIPESTATUS[0]}
    echo "== exit ${status}$( ((status == 124)) && echo ' (time limit)')" | tee -a "$log"
    ((status == 0)) || failed+=("$* (exit $status)")
}

step 20 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true"
step 20 "$python" -c "import sys, torch, torchvision as tv; print(sys.version.split()[0],
torch.__version__, tv.__version__, 'CUDA', torch.version.cuda, torch.cuda.is_available())"

missing=$("$python" - <<'EOF'
import importlib.util
modules = {"numpy": "numpy", "PIL": "pillow", "yaml": "pyyaml", "tqdm": "tqdm", "pytest": "pytest"}
print(" ".join(pip for module, pip in modules.items() if importlib.util.find_spec(module) is None))
EOF
)
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086  # one word per package
    step 90 "$python" -m pip install --quiet $missing
fi

step 150 "$python" -m pytest -q -rs -p no:cacheprovider -m cuda tests
if "$python" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    step 180 "$python" benchmarks/train_step.py --iterations 10 --warmup 3 --budget 120
    step 90 "$python" benchmarks/evaluation.py --images 4
    step 90 "$python" benchmarks/modules.py --repeats 2 --rounds 3
else
    echo "== no CUDA GPU: the benchmarks are left out (the CPU results are made with make bench)" |
        tee -a "$log"
fi
reserve=0
step 20 "$python" benchmarks/report.py --results "$out" --out "$out/README.md"

echo "== done in $((SECONDS - start)) s; files in $out" | tee -a "$log"
if ((${#failed[@]})); then
    printf '== failed: %s\n' "${failed[@]}" | tee -a "$log"
    exit 1
fi
