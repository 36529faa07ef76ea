"""The public API: what ``dgcn`` exports, ``train_or_load`` and ``read_results``."""

import json
import subprocess
import sys

import pytest
import torch
from helpers import tiny_opts

import dgcn
from dgcn.config import REPO_DIR, load_config
from dgcn.errors import DgcnError, RunDirError
from dgcn.reproduce import results_table


def test_import_dgcn_stays_light():
    code = "import sys, dgcn; dgcn.load_config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", dgcn.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(dgcn, name) is not None
    assert name in dir(dgcn)


def test_the_exports_are_the_package_functions():
    from dgcn.checkpoint import load_for_inference
    from dgcn.training.loop import fit

    assert dgcn.fit is fit and dgcn.training.fit is fit
    assert dgcn.load_for_inference is load_for_inference
    assert dgcn.models.build_model is dgcn.build_model
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        dgcn.fitt  # noqa: B018


def _mtime(path):
    return path.stat().st_mtime_ns


def test_train_or_load_trains_loads_resumes_and_refuses_another_run(minicity, tmp_path):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 2, "train.eval_every": 0})
    model, cfg = dgcn.train_or_load("minicity-cpu", run, overrides=opts, progress=False)
    assert not model.training and cfg.train.iterations == 2
    assert torch.load(run / "last.pt", weights_only=False)["iteration"] == 2

    stamp = _mtime(run / "last.pt")  # finished: loaded, not trained again
    again, _ = dgcn.train_or_load(load_config("minicity-cpu", opts), run, progress=False)
    assert _mtime(run / "last.pt") == stamp
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    longer = [*opts, "train.iterations=3"]  # more iterations: resumed to the new end
    _, cfg3 = dgcn.train_or_load("minicity-cpu", run, overrides=longer, progress=False)
    assert cfg3.train.iterations == 3
    assert torch.load(run / "last.pt", weights_only=False)["iteration"] == 3

    stamp = _mtime(run / "last.pt")
    other = [*longer, "train.lr=0.5"]
    with pytest.raises(RunDirError, match="another config.*train.lr"):
        dgcn.train_or_load("minicity-cpu", run, overrides=other, progress=False)
    assert _mtime(run / "last.pt") == stamp  # the folder's run is untouched


def test_read_results_reads_the_committed_ablation():
    records = dgcn.read_results(REPO_DIR / "experiments" / "results" / "minicity")
    assert {r["row"] for r in records} >= {"baseline", "both"}
    assert {r["seed"] for r in records} == {0, 1, 2}
    assert "both" in results_table(records, {})


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        ("[]", "holds no records"),
        ('[{"row": "both"}]', "lacks seed"),
        (
            json.dumps(
                [
                    {
                        "row": "mystery",
                        "seed": 0,
                        "miou": 0.1,
                        "context_miou": 0.1,
                        "pixel_accuracy": 0.5,
                        "per_class": {},
                        "seconds": 1.0,
                    }
                ]
            ),
            "unknown row 'mystery'",
        ),
    ],
)
def test_read_results_names_what_is_wrong(tmp_path, content, match):
    if content is not None:
        (tmp_path / "results.json").write_text(content)
    with pytest.raises(DgcnError, match=match):
        dgcn.read_results(tmp_path)
