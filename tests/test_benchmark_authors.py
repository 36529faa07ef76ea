"""The authors' whole network beside ours (benchmarks/authors_network.py, train_step.py and
evaluation.py --authors) and the training step's variants, on the CPU at a small size.

The side-by-side tests need a copy of the authors' repository (lxtGH/GALD-DGCNet, which has
no licence file, so it is not part of this one): set DGCN_AUTHORS_DIR to its folder; without
it they are skipped."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import authors_network as authors  # noqa: E402
import common  # noqa: E402
import evaluation  # noqa: E402
import train_step  # noqa: E402

REPO = BENCHMARKS.parent
FOLDER = authors.authors_folder()
needs_authors = pytest.mark.skipif(
    FOLDER is None, reason=f"set {authors.ENV} to a copy of the authors' repository"
)
SMALL = (1, 1, 1, 1)
#: the deprecations their 2019 code meets in today's torch (theirs to fix, not ours)
pytestmark = [
    pytest.mark.filterwarnings("ignore:`nn.functional.upsample` is deprecated"),
    pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated"),
    pytest.mark.filterwarnings("ignore:reduction='elementwise_mean' is deprecated"),
]


@pytest.fixture(scope="module")
def code():
    return authors.load_authors(FOLDER, with_eval=True)


def batch(size=64, images=2):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(images, 3, size, size, generator=generator)
    y = torch.randint(0, 19, (images, size, size), generator=generator)
    y[0, :4] = 255  # a few ignored pixels
    return x, y


@needs_authors
@pytest.mark.parametrize("thresh, min_kept", [(0.7, 100_000), (0.06, 1000)])
def test_first_step_losses_of_both_networks_are_equal(code, thresh, min_kept):
    """Their network and criterion, ours with their weights through the converter: the same
    loss (OHEM all-kept, and OHEM dropping pixels); ours with other weights: another one."""
    torch.manual_seed(0)
    theirs = authors.authors_network(code, SMALL)
    ours = authors.converted_copy(theirs, SMALL)
    their_loss = authors.authors_criterion(code, thresh, min_kept)
    our_loss = authors.our_criterion(thresh, min_kept)
    x, y = batch()
    losses = authors.first_step_losses(ours, theirs, our_loss, their_loss, x, y)
    assert losses["relative_difference"] < 1e-5, losses
    other = authors.converted_copy(authors.authors_network(code, SMALL), SMALL)
    different = authors.first_step_losses(other, theirs, our_loss, their_loss, x, y)
    assert different["relative_difference"] > 1e-4, different


@needs_authors
def test_their_eval_imports_with_placeholders_for_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # as on a GPU machine without OpenCV
    monkeypatch.setitem(sys.modules, "scipy", None)
    loaded = authors.load_authors(FOLDER, with_eval=True)
    assert loaded.placeholders == ["libs.datasets.cityscapes", "scipy", "scipy.ndimage"]
    assert callable(loaded.eval.predict_sliding) and callable(loaded.eval.get_confusion_matrix)
    assert sys.modules["scipy"] is None  # the placeholders were removed again


@needs_authors
@pytest.mark.slow  # both networks, built and timed: 20-30 s on 2 busy cores
def test_train_step_side_by_side_reports_ours_over_authors(monkeypatch):
    written = []
    monkeypatch.setattr(train_step, "write_result", lambda n, p, **k: written.append((n, p, k)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train_step.py", "--authors", str(FOLDER), "--depths", "1", "1", "1", "1"]
    argv += ["--size", "64", "--batch", "2", "--iterations", "1", "--warmup", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--min-kept", "1000"])
    train_step.main()
    name, payload, options = written[-1]
    assert name == "authors_train_step_cpu" and options == {"complete": True}
    assert payload["first_step_losses"]["relative_difference"] < 1e-5
    assert [r["name"] for r in payload["rows"]] == ["fp32 eager", "bf16 autocast"]
    for row in payload["rows"]:
        ratio = row["ours"]["seconds_per_iter"] / row["authors"]["seconds_per_iter"]
        assert row["ours_over_authors"] == ratio
        assert row["ours"]["peak_gib"] is None and row["ours"]["first_iteration_s"] > 0
    assert payload["model"] == "ResNet[1, 1, 1, 1]" and payload["depths"] == list(SMALL)


@needs_authors
@pytest.mark.slow  # both networks, built and timed: 20-30 s on 2 busy cores
def test_evaluation_side_by_side_times_their_predict_sliding(monkeypatch, code):
    written = []
    import authors_eval

    monkeypatch.setattr(authors_eval, "write_result", lambda n, p, **k: written.append((n, p)))
    calls = []
    original = code.eval.predict_sliding

    def spy(*args):
        calls.append(args[2])
        return original(*args)

    monkeypatch.setattr(code.eval, "predict_sliding", spy)
    monkeypatch.setattr(authors, "load_authors", lambda *a, **k: code)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cuda_method = torch.Tensor.cuda
    argv = ["evaluation.py", "--authors", str(FOLDER), "--depths", "1", "1", "1", "1"]
    monkeypatch.setattr(
        sys, "argv", [*argv, "--size", "96", "192", "--tile", "64", "--images", "1"]
    )
    evaluation.main()
    name, payload = written[-1]
    assert name == "authors_evaluation_cpu" and calls == [(64, 64)] * 2  # warm-up + 1 image
    assert [(r["side"], r["precision"]) for r in payload["rows"]] == [
        ("authors", "fp32"),
        ("ours", "fp32"),
    ]
    ours, theirs = payload["rows"][1], payload["rows"][0]
    assert ours["ours_over_authors"] == ours["seconds_per_image"] / theirs["seconds_per_image"]
    check = payload["confusion_check"]
    assert check["pixels"] == 96 * 192 and check["max_abs_count_difference"] <= 10
    assert torch.Tensor.cuda is cuda_method  # their .cuda() calls ran on the host, then undone


def test_a_wrong_authors_folder_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), DGCN_BENCH_RESULTS=str(tmp_path / "r"))
    for script, extra in (("train_step.py", []), ("evaluation.py", ["--images", "1"])):
        command = [sys.executable, str(BENCHMARKS / script), "--authors", str(tmp_path), *extra]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "git clone https://github.com/lxtGH" in done.stderr
    command = [sys.executable, str(BENCHMARKS / "train_step.py"), "--depths", "1", "1", "1", "1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "give --authors DIR too" in done.stderr
    assert not (tmp_path / "r").exists()  # nothing written


def test_cuda_variants_name_tf32_and_true_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    cuda = torch.device("cuda")
    eager = train_step.variants(cuda)
    assert [v["name"] for v in eager] == [
        "TF32 eager",
        "bf16 autocast",
        "bf16 + channels_last",
        "fp32 eager, TF32 off",
    ]
    assert [v["tf32"] for v in eager] == [True, True, True, False]
    assert not any(v["compile"] for v in eager)
    (compiled,) = train_step.variants(cuda, compiled=True)
    assert compiled["compile"] and compiled["channels_last"] and compiled["tf32"]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert train_step.variants(cuda)[1]["dtype"] is torch.float16


def test_run_variant_runs_under_the_variants_tf32_setting_and_records_its_fields():
    """The settings inside the step are the variant's (the CUDA flags, settable anywhere) and
    are restored afterwards; the memory fields are None on a CPU."""
    seen = []

    def criterion(outputs, masks):
        seen.append(common.tf32_state())
        return outputs["out"].float().mean(), None

    args = train_step.argparse.Namespace(
        batch=2, height=32, width=32, warmup=2, iterations=2, peak_tflops=989.0, matmul_tflops=None
    )
    before = common.tf32_state()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 19, 1)

        def forward(self, x):
            return {"out": self.conv(x)}

    firsts = []
    for setting in (False, True):
        variant = train_step.variant("v", tf32_on=setting)
        result, _ = train_step.run_variant(
            args, torch.device("cpu"), variant, 1e6, Net, criterion, firsts.append
        )
        assert firsts[-1] == result["first_iteration_s"]  # told as soon as it ran
        assert seen[-1] == {"matmul": setting, "cudnn": setting}
        assert common.tf32_state() == before
        assert result["first_iteration_s"] == result["warmup_seconds"][0] > 0
        assert len(result["warmup_seconds"]) == 2 and result["tf32"] is None
        assert all(result[key] is None for key in common.MEMORY_KEYS)
        assert result["mfu"] is None and result["tflops_achieved"] > 0
    assert len(seen) == 2 * (2 + 2)  # warm-up and timed steps, both variants


def test_speedups_name_their_baselines():
    rows = [
        {"name": "TF32 eager", "seconds_per_iter": 0.8},
        {"name": "bf16 + channels_last", "seconds_per_iter": 0.2},
        {"name": "fp32 eager, TF32 off", "seconds_per_iter": 1.6},
    ]
    args = train_step.argparse.Namespace(
        model="m", height=8, width=8, batch=8, device=torch.device("cuda"), peak_tflops=989.0
    )
    args.peak_source, args.matmul_tflops = "datasheet", 790.0
    payload = train_step.result_payload(args, 1e9, rows, None)
    assert payload["fastest"] == "bf16 + channels_last"
    assert payload["speedup_fastest_vs_fp32"] == 8.0 and payload["speedup_fastest_vs_tf32"] == 4.0
    assert payload["peak_tflops"] == 989.0 and payload["matmul_tflops_measured"] == 790.0
    cpu = train_step.result_payload(
        train_step.argparse.Namespace(**{**vars(args), "device": torch.device("cpu")}),
        1e9,
        [{"name": "fp32 eager", "seconds_per_iter": 1.0}, {"name": "b", "seconds_per_iter": 0.5}],
        None,
    )
    assert cpu["speedup_fastest_vs_fp32"] == 2.0 and cpu["speedup_fastest_vs_tf32"] is None
    assert cpu["peak_tflops"] is None


def test_memory_figures_and_the_matmul_rate_are_none_on_a_cpu():
    cpu = torch.device("cpu")
    assert common.cuda_memory(cpu) == dict.fromkeys(common.MEMORY_KEYS)
    assert common.matmul_tflops(cpu) is None
    info = common.machine()
    assert info["cuda"] == torch.version.cuda and "cudnn" in info
