"""The one GPU session (benchmarks/gpu_session.sh, benchmarks/session.py) on a machine without
a GPU: the order of its steps, their limits within the budget, the one-line skips, a step
stopped at its limit; what it records (environment, end to end) and how it is reported; the
plan's measured utilisation; a training run without matplotlib."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dgcn

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import end_to_end  # noqa: E402
import environment  # noqa: E402
import report  # noqa: E402
import session  # noqa: E402

from dgcn.training import plan  # noqa: E402
from dgcn.training.rundir import plot_curves  # noqa: E402

REPO = BENCHMARKS.parent
CUDA_FACTS = {"torch": "2.11.0", "cuda_available": True, "missing": []}


def test_the_steps_come_in_order_of_value_and_compile_last():
    steps = session.steps(Path("out"), "authors")
    assert [s.name for s in steps] == [
        "environment",
        "training, eager variants",
        "evaluation",
        "authors' network, training",
        "authors' network, evaluation",
        "end to end, dgcn train",
        "modules",
        "CUDA tests",
        "torch.compile",
        "report",
    ]
    for step in steps:  # every script it names is in benchmarks/
        script = next(a for a in step.command if a.endswith(".py") or a == "tests")
        assert (REPO / script).exists(), step.name
    compile_step = steps[-2]
    assert "--compile" in compile_step.command and compile_step.minimum >= 30
    assert "--compile" not in steps[1].command  # the eager run leaves compile to its own step
    assert [s.name for s in steps if not s.cuda] == ["environment", "report"]
    assert [s.name for s in steps if s.authors] == [steps[3].name, steps[4].name]
    assert session.BUDGET <= 500  # a slow machine start still leaves a run in 10 minutes


def test_a_limit_is_cut_to_the_budget_and_a_step_without_time_is_skipped():
    step = session.Step("x", limit=100, command=(), minimum=30)
    assert session.time_limit(step, elapsed=0, budget=480, reserve=10) == 100
    assert session.time_limit(step, elapsed=400, budget=480, reserve=10) == 70
    assert session.time_limit(step, elapsed=445, budget=480, reserve=10) is None


def test_skip_reasons_name_what_is_missing(tmp_path):
    steps = {s.name: s for s in session.steps(tmp_path, None)}
    reason = session.skip_reason
    cpu = {"torch": "2.11.0", "cuda_available": False, "missing": []}
    assert reason(steps["environment"], {}, None) is None
    assert reason(steps["report"], cpu, None) is None
    assert reason(steps["modules"], {}, None) == "the environment step wrote nothing"
    assert reason(steps["modules"], cpu, None) == "needs a CUDA GPU"
    assert reason(steps["modules"], CUDA_FACTS, None) is None
    no_pytest = dict(CUDA_FACTS, missing=["pytest"])
    assert reason(steps["CUDA tests"], no_pytest, None) == "needs pytest, not installed here"
    assert reason(steps["modules"], dict(CUDA_FACTS, torch=None), None).startswith("torch")
    authors = steps["authors' network, training"]
    assert reason(authors, CUDA_FACTS, None).startswith("no authors' folder: set DGCN_AUTHORS")
    assert "not the authors' repository" in reason(authors, CUDA_FACTS, str(tmp_path))
    (tmp_path / "libs/models").mkdir(parents=True)
    (tmp_path / "libs/models/DualGCNNet.py").write_text("")
    assert reason(authors, CUDA_FACTS, str(tmp_path)) is None


def test_a_step_past_its_limit_is_stopped_with_its_children(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "environment_cpu.json").write_text(json.dumps({"cuda_available": False}))
    run = session.Session(out, budget=60)
    run.wall_start = 0  # the environment file above counts as this session's
    child = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(child)!r}, 'w').write(str(p.pid)); print('started', flush=True); "
        "time.sleep(60)"
    )
    step = session.Step("sleeper", 2, ("-c", script), cuda=False, needs=(), minimum=1)
    start = time.monotonic()
    run.run(step, reserve=0)
    assert time.monotonic() - start < 20
    entry = json.loads((out / "session_cpu.json").read_text())["steps"][0]
    assert entry["status"] == "time limit" and entry["limit_s"] == 2
    log = (out / "gpu_session.log").read_text()
    assert "started" in log and "== sleeper: time limit" in log
    grandchild = int(child.read_text())
    for _ in range(50):  # the whole process group was signalled
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the step's child process outlived its limit")


def test_gpu_session_on_a_cpu_skips_in_one_line_each_and_finishes_in_its_budget(tmp_path):
    results = {p: p.read_bytes() for p in (BENCHMARKS / "results").iterdir()}
    env = dict(os.environ, OUT=str(tmp_path), GPU_SESSION_SECONDS="60", PYTHON=sys.executable)
    env.pop("DGCN_AUTHORS_DIR", None)
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_session.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - start < 60
    lines = done.stdout.splitlines()
    cuda_steps = [s.name for s in session.steps(tmp_path, None) if s.cuda]
    for name in cuda_steps:
        assert lines.count(f"== skipped: {name} (needs a CUDA GPU)") == 1, name
    record = json.loads((tmp_path / "session_cpu.json").read_text())
    statuses = {e["name"]: e["status"] for e in record["steps"]}
    assert statuses["environment"] == statuses["report"] == "ok"
    assert record["elapsed_s"] < 60
    assert json.loads((tmp_path / "environment_cpu.json").read_text())["cuda_available"] is False
    assert "#### GPU session" in (tmp_path / "README.md").read_text()
    assert {p: p.read_bytes() for p in (BENCHMARKS / "results").iterdir()} == results


def test_environment_reports_a_missing_package_and_installs_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pytest_missing_probe", None)
    monkeypatch.setattr(environment, "OPTIONAL", {"pytest_missing_probe": ("probe", "a note")})
    monkeypatch.setattr(sys, "argv", ["environment.py", "--out", str(tmp_path)])
    environment.main()
    out = capsys.readouterr().out
    assert "missing: probe, not installed here (a note)" in out
    facts = json.loads(next(tmp_path.glob("environment_*.json")).read_text())
    assert facts["missing"] == ["pytest_missing_probe"] and facts["tf32_defaults"]["cudnn"]


def test_end_to_end_builds_the_official_preset_command_and_reads_its_log(tmp_path):
    args = end_to_end.argparse.Namespace(
        size=(1024, 2048), images=16, workers=8, iterations=30, log_every=10, opt=None
    )
    generate, train = end_to_end.commands(args, tmp_path / "d", tmp_path / "r")
    assert generate[3:] == [
        *("make-minicity", "--out", str(tmp_path / "d"), "--train", "16", "--val", "1"),
        *("--size", "1024", "2048"),
    ]
    assert train[3:7] == ["train", "--config", "cityscapes-official", "--run-dir"]
    for override in ("data.workers=8", "train.iterations=30", "model.overrides.pretrained=null"):
        assert override in train
    assert "data.minicity_size=[1024,2048]" in train
    records = [
        {"iteration": 10, "seconds_per_iter": 2.0},
        {"iteration": 20, "seconds_per_iter": 0.5},
        {"iteration": 20, "miou": 0.1},
        {"iteration": 30, "seconds_per_iter": 0.3, "gpu_mem_gib": 30.0},
    ]
    figures = end_to_end.per_iteration(records)
    assert figures["first_window"] == {"iterations": 10, "seconds": 2.0}
    assert figures["seconds_per_iter"] == pytest.approx(0.4)
    assert figures["measured_iterations"] == 20 and figures["gpu_mem_gib"] == 30.0
    assert end_to_end.per_iteration([])["seconds_per_iter"] is None


def test_end_to_end_dry_run_and_bad_input():
    script = [sys.executable, str(BENCHMARKS / "end_to_end.py")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([*script, "--dry-run"], capture_output=True, text=True, env=env)
    assert done.returncode == 0
    assert done.stdout.splitlines()[1].startswith(
        "python -m dgcn train --config cityscapes-official --run-dir '<run>' --quiet --opt"
    )
    bad = subprocess.run([*script, "--log-every", "30"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--log-every must be below --iterations" in bad.stderr


@pytest.mark.slow  # make-minicity and dgcn train in subprocesses: about 30 s on 2 busy cores
def test_end_to_end_runs_dgcn_train_at_a_tiny_size(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), DGCN_BENCH_RESULTS=str(tmp_path))
    command = [sys.executable, str(BENCHMARKS / "end_to_end.py"), "--iterations", "3"]
    command += ["--log-every", "1", "--images", "2", "--size", "128", "256", "--workers", "0"]
    command += ["--opt", "model.name=dgcnet_official_micro", "data.crop_size=[128,128]"]
    command += ["train.batch_size=2", "eval.tile=128"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "end_to_end_cpu.json").read_text())
    assert record["complete"] and record["measured_iterations"] == 2
    assert len(record["windows"]) == 3 and record["seconds_per_iter"] > 0
    assert record["commands"][1].startswith("python -m dgcn train --config cityscapes-official")
    assert "<data>" in record["commands"][1] and str(tmp_path) not in json.dumps(record)


def cuda_variant(name, seconds, **fields):
    row = {"name": name, "seconds_per_iter": seconds, "images_per_s": 8 / seconds}
    row.update(first_iteration_s=4.5, peak_gib=30.25, peak_reserved_gib=34.5, mfu=0.31)
    row.update(mfu_matmul=0.39, channels_last="channels_last" in name, compile=False)
    row["dtype"] = "bfloat16" if "bf16" in name else "fp32"
    return {**row, **fields}


def cuda_record(**fields):
    machine = {"gpu": "NVIDIA H100 80GB HBM3", "torch": "2.11.0", "cpu": "x", "cores": 16}
    record = {"machine": machine, "date": "2027-01-01T00:00:00", "command": "python x"}
    return {**record, "complete": True, **fields}


def test_report_renders_the_new_cuda_fields():
    variants = [cuda_variant("TF32 eager", 0.8), cuda_variant("bf16 + channels_last", 0.25)]
    variants.append(cuda_variant("fp32 eager, TF32 off", 1.6))
    record = cuda_record(
        model="dgcnet_official_r101",
        size=[832, 832],
        batch=8,
        forward_gflops_per_image=1000.0,
        peak_tflops=989.0,
        peak_source="datasheet",
        matmul_tflops_measured=790.0,
        variants=variants,
        speedup_fastest_vs_fp32=6.4,
        speedup_fastest_vs_tf32=3.2,
        numerical_check=None,
    )
    text = report.train_step(record)
    assert "| bf16 + channels_last | 0.250 | 32.0 | 4.50 | 30.2 | 34.5 | 31 % | 39 % |" in text
    assert "Fastest (bf16 + channels_last) vs fp32 with TF32 off: 6.40x." in text
    assert "vs TF32 eager: 3.20x." in text and "989 TFLOP/s" in text and "790 TFLOP/s" in text
    ours, theirs = cuda_variant("TF32 eager", 0.9), cuda_variant("TF32 eager", 1.0)
    authors = cuda_record(
        model="DualSeg_res101",
        size=[832, 832],
        batch=8,
        criterion="theirs",
        first_step_losses={"ours": 3.0, "authors": 3.0000003, "relative_difference": 1e-7},
        rows=[{"name": "TF32 eager", "ours": ours, "authors": theirs, "ours_over_authors": 0.9}],
    )
    assert "| TF32 eager | 0.900 | 1.000 | 0.900 | 30.2 | 30.2 |" in report.authors_train_step(
        authors
    )
    e2e = cuda_record(
        config="cityscapes-official",
        size=[1024, 2048],
        images=16,
        workers=8,
        iterations=30,
        precision="bf16",
        micro_batch=8,
        accumulation=1,
        seconds_per_iter=0.4321,
        measured_iterations=20,
        first_window={"iterations": 10, "seconds": 3.0},
        mfu=0.22,
        gpu_mem_gib=31.0,
        train_wall_seconds=70.0,
        generate_seconds=9.0,
    )
    assert "**0.432 s/iteration** over 20 iterations" in report.end_to_end(e2e)
    compiled = cuda_record(model="m", size=[832, 832], batch=8, variants=[])
    compiled["first_iteration_s"] = {"bf16 + channels_last + compile": 95.04}
    text = report.train_step_compile(compiled)
    assert "bf16 + channels_last + compile: stopped after its first iteration, 95.0 s." in text
    steps = [{"name": "modules", "status": "skipped: needs a CUDA GPU", "seconds": 0.0}]
    text = report.session({"budget_s": 480, "elapsed_s": 6, "steps": steps})
    assert "| modules | skipped: needs a CUDA GPU | - | 0 |" in text


def test_plan_uses_the_measured_utilisation_once_a_gpu_run_exists(tmp_path):
    assumed = plan.planned_utilisation(tmp_path)
    assert (assumed.low, assumed.high, assumed.source) == (*plan.UTILISATION, "assumed")
    fast = cuda_variant("bf16 + channels_last", 0.25, mfu=0.3)
    record = cuda_record(variants=[cuda_variant("TF32 eager", 0.8, mfu=0.1), fast])
    (tmp_path / "train_step_cuda.json").write_text(json.dumps(record))
    measured = plan.planned_utilisation(tmp_path)
    assert (measured.low, measured.high) == (0.3, 0.3)
    assert measured.source == (
        "measured on NVIDIA H100 80GB HBM3 (benchmarks/results/train_step_cuda.json)"
    )
    (tmp_path / "end_to_end_cuda.json").write_text(json.dumps(cuda_record(mfu=0.2)))
    both = plan.planned_utilisation(tmp_path)
    assert (both.low, both.high) == (0.2, 0.3) and "end_to_end_cuda.json" in both.source
    cfg = dgcn.load_config("minicity-cpu", ["train.precision=auto"])
    configs = {"official": cfg}
    gpu = [plan.GPUS["H100 SXM"]]
    by_measure = plan.plan_table(configs, gpu, both)[0]
    expected = plan.estimate_hours(cfg, gpu[0], (0.2, 0.3))
    assert (by_measure["hours_low"], by_measure["hours_high"]) == expected
    text = plan.plan_markdown(configs, gpu, both)
    assert "30 % (fewer hours) to 20 % (more), the utilisation measured on NVIDIA H100" in text
    assert "Hours of training only: evaluation" in text
    assert "an assumed 40 %" in plan.plan_markdown(configs, gpu, assumed)


def test_a_run_without_matplotlib_writes_no_curves_and_goes_on(monkeypatch, tmp_path):
    records = [{"iteration": 1, "loss": 1.0, "lr": 0.01, "seconds_per_iter": 0.1}]
    plot_curves(records, tmp_path / "with.png")
    assert (tmp_path / "with.png").exists() == (importlib.util.find_spec("matplotlib") is not None)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    plot_curves(records, tmp_path / "without.png")
    assert not (tmp_path / "without.png").exists()
