"""What a machine offers the benchmarks: versions, the GPU, its memory, torch's TF32 defaults
and the packages that are missing, printed and written to ``<out>/environment_<cuda|cpu>.json``.

The first step of ``benchmarks/gpu_session.sh``; its JSON tells the session which steps can
run (``cuda``, ``missing``). Nothing is installed: a lent GPU machine has its own torch and
no network, so a missing package is reported in one line and the steps that need it are
skipped. Runs without torch too (then ``torch`` is null and nothing needs CUDA can run).

    python benchmarks/environment.py [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

#: module -> (package, what its absence means)
OPTIONAL = {
    "numpy": ("numpy", "every benchmark step needs it: they are skipped"),
    "PIL": ("pillow", "every benchmark step needs it: they are skipped"),
    "yaml": ("pyyaml", "every benchmark step needs it: they are skipped"),
    "tqdm": ("tqdm", "every benchmark step needs it: they are skipped"),
    "torchvision": ("torchvision", "every benchmark step needs it: they are skipped"),
    "pytest": ("pytest", "the CUDA tests are skipped"),
    "scipy": ("scipy", "optional: a placeholder stands in for it in the authors' eval.py"),
    "cv2": ("opencv-python", "optional: a placeholder stands in for the authors' dataset"),
    "matplotlib": ("matplotlib", "optional: no curves.png in the end-to-end run"),
}


def missing_modules() -> list[str]:
    """The modules of :data:`OPTIONAL` that this interpreter cannot import."""
    return [name for name in OPTIONAL if importlib.util.find_spec(name) is None]


def nvidia_smi() -> str | None:
    """``name, memory.total, driver_version`` of the GPUs as nvidia-smi prints them, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def torch_facts() -> dict:
    """torch's versions, its CUDA and cuDNN, its TF32 defaults and the GPU; ``torch`` None
    when torch cannot be imported."""
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda_available": False}
    facts = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        # read before anything sets them: what a script that does not choose gets
        "tf32_defaults": {
            "matmul": torch.backends.cuda.matmul.allow_tf32,
            "cudnn": torch.backends.cudnn.allow_tf32,
        },
        "threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if importlib.util.find_spec("torchvision") is not None:
        import torchvision

        facts["torchvision"] = torchvision.__version__
    if facts["cuda_available"]:
        properties = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        facts.update(
            {
                "gpu": torch.cuda.get_device_name(0),
                "gpu_count": torch.cuda.device_count(),
                "capability": f"{properties.major}.{properties.minor}",
                "free_gib": free / 2**30,
                "total_gib": total / 2**30,
            }
        )
    return facts


def environment() -> dict:
    """Everything above, with the interpreter and the CPU."""
    return {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        **torch_facts(),
        "nvidia_smi": nvidia_smi(),
        "missing": missing_modules(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write environment_<cuda|cpu>.json here")
    args = parser.parse_args()
    facts = environment()
    for key, value in facts.items():
        if key != "missing":
            print(f"{key}: {value}")
    for name in facts["missing"]:
        package, meaning = OPTIONAL[name]
        print(f"missing: {package}, not installed here ({meaning})")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"environment_{'cuda' if facts['cuda_available'] else 'cpu'}.json"
        path.write_text(json.dumps(facts, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
