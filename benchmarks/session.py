"""The one GPU session (``benchmarks/gpu_session.sh``): its steps in order of value, each with
its own time limit inside one total budget, every result written as it is measured.

A lent GPU gives about 15 minutes of device time, the machine's start included, so the run
gets one attempt. The steps (:func:`steps`) come in the order of what matters most: the eager
training variants, evaluation, the side-by-side with the authors' network (training, then
evaluation), one end-to-end ``dgcn train``, the graph modules, the CUDA tests and
``torch.compile`` last, alone, with a limit of its own. Each step's limit is cut to what is
left of the budget (the last seconds are kept for the report); a step with fewer seconds
left than its minimum, one that needs a CUDA GPU on a machine without one, one that needs a
package that is not installed (nothing is installed: the machine has its own torch and no
network) or the authors' folder when none is named is skipped, in one line. A step stopped
at its limit loses only what it had not yet written: every benchmark rewrites its JSON after
each part.

The session writes into ``out``: ``environment_<cuda|cpu>.json`` (the first step), the
benchmarks' JSON, ``session_<cuda|cpu>.json`` (each step's status, seconds and limit,
rewritten after every step),
``gpu_session.log`` and ``README.md`` (``benchmarks/report.py``). This file imports no torch,
so that a broken torch still leaves the session's record.

    python benchmarks/session.py [--budget 480] [--out DIR] [--authors DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the default total budget, seconds: inside a 10-minute command, with slack for a slow start
BUDGET = 480
#: seconds kept for the report at the end
RESERVE = 10
#: the modules every step that imports the package needs
CORE = ("numpy", "PIL", "yaml", "tqdm", "torchvision")


@dataclass(frozen=True)
class Step:
    """One step of the session.

    Attributes:
        name: a short name (the log, the session's JSON).
        limit: seconds it may take at most.
        command: the arguments after the interpreter (``benchmarks/...``).
        cuda: whether it needs a CUDA GPU.
        needs: modules it imports.
        authors: whether it needs the authors' folder.
        minimum: it is skipped when fewer seconds than this are left.
    """

    name: str
    limit: int
    command: tuple[str, ...]
    cuda: bool = True
    needs: tuple[str, ...] = CORE
    authors: bool = False
    minimum: int = 10


def steps(out: Path, authors: str | None) -> list[Step]:
    """The session's steps in the order they run (see the module's docstring)."""
    folder = authors or "<authors>"
    return [
        Step("environment", 20, ("benchmarks/environment.py", "--out", str(out)), False, ()),
        Step(
            "training, eager variants",
            100,
            ("benchmarks/train_step.py", "--iterations", "8", "--warmup", "2", "--budget", "65"),
            minimum=30,
        ),
        Step("evaluation", 75, ("benchmarks/evaluation.py", "--images", "2"), minimum=20),
        Step(
            "authors' network, training",
            90,
            ("benchmarks/train_step.py", "--authors", folder, "--iterations", "5", "--warmup")
            + ("2", "--budget", "60"),
            authors=True,
            minimum=30,
        ),
        Step(
            "authors' network, evaluation",
            45,
            ("benchmarks/evaluation.py", "--authors", folder, "--images", "2"),
            authors=True,
            minimum=20,
        ),
        Step(
            "end to end, dgcn train",
            80,
            ("benchmarks/end_to_end.py", "--iterations", "30", "--workers", "8", "--images")
            + ("16", "--limit", "60"),
            minimum=45,
        ),
        Step("modules", 40, ("benchmarks/modules.py", "--repeats", "2", "--rounds", "3")),
        Step(
            "CUDA tests",
            60,
            ("-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "cuda", "tests"),
            needs=(*CORE, "pytest"),
        ),
        Step(
            "torch.compile",
            90,
            ("benchmarks/train_step.py", "--compile", "--iterations", "5", "--warmup", "3"),
            minimum=45,
        ),
        Step(
            "report",
            10,
            ("benchmarks/report.py", "--results", str(out), "--out", str(out / "README.md")),
            False,
            ("numpy", "yaml"),
            minimum=3,
        ),
    ]


def skip_reason(step: Step, facts: dict, authors: str | None) -> str | None:
    """Why ``step`` cannot run on this machine (None if it can): ``facts`` is the environment
    step's JSON (empty when it wrote none)."""
    if step.name == "environment":
        return None
    if not facts:
        return "the environment step wrote nothing"
    if step.cuda and not facts.get("cuda_available"):
        return "needs a CUDA GPU"
    if step.needs and facts.get("torch") is None:
        return "torch cannot be imported"
    absent = [m for m in step.needs if m in facts.get("missing", [])]
    if absent:
        return f"needs {', '.join(absent)}, not installed here"
    if step.authors and authors is None:
        return (
            "no authors' folder: set DGCN_AUTHORS_DIR to a copy of "
            "https://github.com/lxtGH/GALD-DGCNet"
        )
    if step.authors and not (Path(authors) / "libs/models/DualGCNNet.py").is_file():
        return f"{authors} has no libs/models/DualGCNNet.py (not the authors' repository)"
    return None


def time_limit(step: Step, elapsed: float, budget: float, reserve: float) -> int | None:
    """The seconds ``step`` may run after ``elapsed`` of ``budget`` (``reserve`` kept for the
    end): its limit, cut to what is left; None when that is under its minimum."""
    left = int(budget - reserve - elapsed)
    limit = min(step.limit, left)
    return limit if limit >= step.minimum else None


@dataclass
class Session:
    """A session's state: where it writes, its clock and the record of its steps."""

    out: Path
    budget: float
    python: str = sys.executable
    authors: str | None = None
    started: float = field(default_factory=time.monotonic)
    wall_start: float = field(default_factory=lambda: time.time() - 1)
    date: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    record: list[dict] = field(default_factory=list)

    def log(self, line: str) -> None:
        print(line, flush=True)
        with open(self.out / "gpu_session.log", "a") as handle:
            handle.write(line + "\n")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def save(self) -> None:
        """``session_<cuda|cpu>.json``, replaced atomically."""
        kind = "cuda" if self.facts().get("cuda_available") else "cpu"
        path = self.out / f"session_{kind}.json"
        temporary = path.with_suffix(".json.tmp")
        payload = {
            "benchmark": f"session_{kind}",
            "date": self.date,
            "command": f"bash benchmarks/gpu_session.sh  # budget {self.budget:.0f} s",
            "budget_s": self.budget,
            "elapsed_s": self.elapsed(),
            "steps": self.record,
        }
        temporary.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(temporary, path)

    def facts(self) -> dict:
        """The environment step's JSON of this session (None of an earlier one)."""
        for kind in ("cuda", "cpu"):
            path = self.out / f"environment_{kind}.json"
            try:
                if path.stat().st_mtime >= self.wall_start:
                    return json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return {}

    def run(self, step: Step, reserve: float) -> None:
        """Run, or skip in one line, one step; its entry goes into the session's JSON."""
        entry = {"name": step.name, "limit_s": None, "seconds": 0.0, "at_s": self.elapsed()}
        reason = skip_reason(step, self.facts(), self.authors)
        limit = None if reason else time_limit(step, self.elapsed(), self.budget, reserve)
        if reason is None and limit is None:
            reason = (
                f"{int(self.budget - reserve - self.elapsed())} s left, it needs {step.minimum}"
            )
        if reason:
            self.log(f"== skipped: {step.name} ({reason})")
            entry["status"] = f"skipped: {reason}"
        else:
            command = [self.python, *step.command]
            self.log(f"== {step.name} (limit {limit} s, at {self.elapsed():.0f} s)")
            start = time.monotonic()
            status, timed_out = self.execute(command, limit)
            entry.update(limit_s=limit, seconds=time.monotonic() - start)
            entry["status"] = (
                "time limit" if timed_out else ("ok" if status == 0 else f"exit {status}")
            )
            self.log(f"== {step.name}: {entry['status']} in {entry['seconds']:.0f} s")
        self.record.append(entry)
        self.save()

    def execute(self, command: list[str], limit: float) -> tuple[int, bool]:
        """Run ``command`` in its own process group, its output copied to the log; at the
        limit, SIGTERM to the group, SIGKILL 5 s later. Returns (exit status, timed out)."""
        environment = dict(os.environ, PYTHONUNBUFFERED="1", DGCN_BENCH_RESULTS=str(self.out))
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
        )
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        copier = threading.Thread(target=self.copy_output, args=(process,), daemon=True)
        copier.start()
        timed_out = False
        try:
            status = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            status = stop_group(process)
        copier.join(timeout=10)
        return status, timed_out

    def copy_output(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.log(line.rstrip("\n"))


def stop_group(process: subprocess.Popen) -> int:
    """SIGTERM to the process's group (a training run stops after its iteration), SIGKILL
    when it is still there 5 s later; the exit status."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            return process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds in all")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "gpu-session")
    parser.add_argument("--authors", help="the authors' repository (default $DGCN_AUTHORS_DIR)")
    args = parser.parse_args(argv)
    if args.budget < 2 * RESERVE:
        print(f"error: --budget must be at least {2 * RESERVE} s", file=sys.stderr)
        return 2
    authors = args.authors or os.environ.get("DGCN_AUTHORS_DIR") or None
    if authors:  # relative to the checkout (the steps run there), as the user wrote it
        authors = str(Path(os.path.relpath(Path(authors).resolve(), REPO)))
        if authors.startswith(".."):
            authors = str(Path(args.authors or os.environ["DGCN_AUTHORS_DIR"]).resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    session = Session(args.out.resolve(), args.budget, authors=authors)
    session.log(f"== GPU session: budget {args.budget:.0f} s, results in {session.out}")
    plan = steps(session.out, authors)
    for step in plan:
        session.run(step, 0 if step is plan[-1] else RESERVE)
    failed = [e for e in session.record if not e["status"].startswith(("ok", "skipped"))]
    session.log(
        f"== done in {session.elapsed():.0f} s of {args.budget:.0f}; files in {session.out}"
    )
    for entry in failed:
        session.log(f"== failed: {entry['name']} ({entry['status']})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
