"""ConfusionMatrix and format_table against hand-computed examples and a plain numpy count."""

import json
import math
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dgcn.datasets.labels import CLASS_NAMES
from dgcn.evaluation import ConfusionMatrix, format_table
from dgcn.evaluation.metrics import scaled_label, scaled_miou

# a 2x3 example with K = 4; the two 255 pixels carry predictions that must not be counted
PREDS = torch.tensor([[0, 1, 2], [1, 1, 0]])
TARGET = torch.tensor([[0, 1, 255], [1, 2, 255]])
# counted pixels (target, pred): (0,0) (1,1) (1,1) (2,1); class 3 appears nowhere
EXPECTED = torch.tensor([[1, 0, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
# IoU = TP / (row + col - TP): class 0: 1/1, class 1: 2/(2+3-2), class 2: 0/(1+0-0), class 3: NaN
EXPECTED_IOU = [1.0, 2 / 3, 0.0, math.nan]
EXPECTED_MIOU = (1.0 + 2 / 3 + 0.0) / 3  # 5/9, class 3 left out
EXPECTED_PIXEL_ACC = 3 / 4


def numpy_confusion(preds: np.ndarray, target: np.ndarray, k: int, ignore: int = 255):
    m = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(target.ravel(), preds.ravel(), strict=True):
        if t != ignore:
            m[t, p] += 1
    return m


def test_hand_computed_example():
    cm = ConfusionMatrix(num_classes=4)
    cm.update(PREDS, TARGET)
    assert cm.matrix.dtype == torch.int64
    assert torch.equal(cm.matrix, EXPECTED)
    iou = cm.iou()
    assert iou.dtype == torch.float64
    assert torch.allclose(iou[:3], torch.tensor(EXPECTED_IOU[:3], dtype=torch.float64))
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx(EXPECTED_MIOU)
    assert cm.pixel_accuracy() == pytest.approx(EXPECTED_PIXEL_ACC)
    # recall: class 0 1/1, class 1 2/2, class 2 0/1, class 3 absent
    acc = cm.class_accuracy()
    assert acc[:3].tolist() == [1.0, 1.0, 0.0] and math.isnan(acc[3])


def test_update_accumulates_and_reset_clears():
    cm = ConfusionMatrix(num_classes=4)
    cm.update(PREDS, TARGET)
    cm.update(PREDS.flatten(), TARGET.flatten())  # any shape
    assert torch.equal(cm.matrix, 2 * EXPECTED)
    cm.reset()
    assert cm.matrix.sum() == 0 and math.isnan(cm.miou())


def test_random_batches_match_a_plain_count():
    gen = torch.Generator().manual_seed(1)
    preds = torch.randint(0, 19, (3, 17, 23), generator=gen)
    target = torch.randint(0, 19, (3, 17, 23), generator=gen)
    target[torch.rand(target.shape, generator=gen) < 0.2] = 255
    cm = ConfusionMatrix()
    for p, t in zip(preds, target, strict=True):
        cm.update(p, t)
    expected = numpy_confusion(preds.numpy(), target.numpy(), 19)
    assert np.array_equal(cm.matrix.numpy(), expected)
    tp = np.diag(expected)
    union = expected.sum(0) + expected.sum(1) - tp
    assert cm.miou() == pytest.approx(np.mean(tp / union))


def test_summary_is_json_ready_with_none_for_absent_classes():
    cm = ConfusionMatrix(num_classes=4).update(PREDS, TARGET)
    s = cm.summary(class_names=["a", "b", "c", "d"])
    json.dumps(s, allow_nan=False)
    assert s["per_class"]["a"] == 1.0 and s["per_class"]["d"] is None
    assert s["miou"] == pytest.approx(EXPECTED_MIOU)
    assert s["pixel_accuracy"] == pytest.approx(0.75)
    assert s["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert s["pixels"] == 4
    full = ConfusionMatrix().summary()
    assert list(full["per_class"]) == list(CLASS_NAMES) and full["miou"] is None


def test_out_of_range_values_raise():
    cm = ConfusionMatrix(num_classes=4)
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 7]))  # a label id, not a train id
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([4, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="same shape"):
        cm.update(torch.tensor([0, 1]), torch.tensor([[0, 1]]))
    assert cm.matrix.sum() == 0


def test_update_under_inference_mode_then_outside():
    cm = ConfusionMatrix(num_classes=4)
    with torch.inference_mode():
        cm.update(PREDS, TARGET)
    cm.update(PREDS, TARGET)
    cm.all_reduce()
    assert torch.equal(cm.matrix, 2 * EXPECTED)


def test_state_dict_round_trip():
    cm = ConfusionMatrix(num_classes=4).update(PREDS, TARGET)
    other = ConfusionMatrix(num_classes=4)
    other.load_state_dict(cm.state_dict())
    assert torch.equal(other.matrix, EXPECTED)
    with pytest.raises(ValueError):
        ConfusionMatrix(num_classes=3).load_state_dict(cm.state_dict())


def test_all_reduce_without_process_group_is_a_no_op():
    cm = ConfusionMatrix(num_classes=4).update(PREDS, TARGET)
    assert cm.all_reduce() is cm
    assert torch.equal(cm.matrix, EXPECTED)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _all_reduce_worker(rank: int, port: int, preds, target, out_path: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        half = preds.shape[0] // 2
        part = slice(0, half) if rank == 0 else slice(half, None)
        cm = ConfusionMatrix(num_classes=5).update(preds[part], target[part])
        cm.all_reduce()
        if rank == 0:
            torch.save(cm.matrix, out_path)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two fresh interpreters import torch: about 10 s on 2 cores
def test_all_reduce_sums_over_two_gloo_processes(tmp_path):
    gen = torch.Generator().manual_seed(2)
    preds = torch.randint(0, 5, (4, 9, 11), generator=gen)
    target = torch.randint(0, 5, (4, 9, 11), generator=gen)
    target[torch.rand(target.shape, generator=gen) < 0.3] = 255
    out_path = tmp_path / "matrix.pt"
    mp.spawn(
        _all_reduce_worker, args=(_free_port(), preds, target, str(out_path)), nprocs=2, join=True
    )
    reduced = torch.load(out_path, weights_only=True)
    expected = numpy_confusion(preds.numpy(), target.numpy(), 5)
    assert np.array_equal(reduced.numpy(), expected)
    # each half alone is not the whole (the data really was split)
    assert not np.array_equal(
        ConfusionMatrix(num_classes=5).update(preds[:2], target[:2]).matrix.numpy(), expected
    )


def test_format_table_rows_and_reference():
    s = ConfusionMatrix(num_classes=4).update(PREDS, TARGET).summary(["a", "b", "c", "d"])
    table = format_table(s)
    lines = table.splitlines()
    assert lines[0].split() == ["class", "IoU", "%"]
    assert lines[1].split() == ["a", "100.00"]
    assert lines[2].split() == ["b", "66.67"]
    assert lines[4].split() == ["d", "n/a"]
    assert lines[-1].split() == ["mIoU", "55.56"]
    ref = format_table(s, reference={"a": 90.0, "b": 70.0, "c": 10.0, "d": 50.0})
    assert ref.splitlines()[1].split() == ["a", "100.00", "90.00", "+10.00"]
    # mIoU reference = mean of the classes given: (90 + 70 + 10 + 50) / 4 = 55.0
    assert ref.splitlines()[-1].split() == ["mIoU", "55.56", "55.00", "+0.56"]
    with_miou = format_table(s, reference={"a": 90.0, "miou": 80.5})
    assert with_miou.splitlines()[-1].split() == ["mIoU", "55.56", "80.50", "-24.94"]


def test_scaled_miou_is_the_plain_rescaling():
    # the reference's arithmetic check: 52.6 x 59/60 = 51.7 (EncNet's "60-class" figure)
    assert round(scaled_miou(52.6), 1) == 51.7
    assert scaled_miou(52.6) == pytest.approx(52.6 * 59 / 60)
    assert scaled_miou(0.526, 59, 60) == pytest.approx(0.526 * 59 / 60)  # fractions as well
    assert scaled_miou(0.8, 19, 19) == pytest.approx(0.8)
    assert scaled_miou(None) is None and scaled_miou(math.nan) is None
    with pytest.raises(ValueError, match="evaluated <= reported"):
        scaled_miou(0.5, 60, 59)
    assert scaled_label(59, 60) == "mIoU x 59/60 (EncNet-style 60)"


def test_summary_reports_the_scaled_miou_labelled_beside_the_evaluated_one():
    # 59 classes: class k predicted right on k + 1 pixels, wrong (as k + 1) on one pixel more
    k = 59
    target = torch.cat([torch.full((c + 2,), c) for c in range(k)])
    preds = torch.cat([torch.tensor([c] * (c + 1) + [(c + 1) % k]) for c in range(k)])
    names = [f"c{i}" for i in range(k)]
    cm = ConfusionMatrix(num_classes=k).update(preds, target)
    plain = cm.summary(names)
    assert "miou_scaled" not in plain and "scaled" not in plain
    s = cm.summary(names, report_scaled=60)
    # a plain re-computation: the IoU of every class from the numpy count, then the two means
    m = numpy_confusion(preds.numpy(), target.numpy(), k)
    iou = np.diag(m) / (m.sum(0) + m.sum(1) - np.diag(m))
    assert s["miou"] == pytest.approx(iou.mean())
    assert s["miou_scaled"] == pytest.approx(iou.sum() / 60)  # background as a 60th class, IoU 0
    assert s["scaled"] == {"evaluated": 59, "reported": 60, "label": scaled_label(59, 60)}
    json.dumps(s)  # JSON-ready
    lines = format_table(s).splitlines()
    assert lines[-2].split()[:4] == ["mIoU", "(59", "classes)", f"{100 * iou.mean():.2f}"]
    assert lines[-1].startswith("mIoU x 59/60 (EncNet-style 60)")
    assert lines[-1].split()[-1] == f"{100 * iou.sum() / 60:.2f}"
    with pytest.raises(ValueError, match="evaluated <= reported"):
        cm.summary(names, report_scaled=58)
    # without the option the table is unchanged: its last row is the plain mIoU
    assert format_table(plain).splitlines()[-1].split()[0] == "mIoU"


def test_evaluate_cli_reports_the_scaled_miou_when_asked(minicity, tmp_path, capsys):
    from dgcn.cli import main

    output = tmp_path / "eval.json"
    argv = [
        "evaluate",
        "--checkpoint",
        "experiments/checkpoints/minicity-dgcnet-paper.pt",
        "--data-root",
        str(minicity),
        "--mode",
        "whole",
        "--workers",
        "0",
        "--quiet",
        "--report-scaled",
        "--output",
        str(output),
        "--opt",
        "data.minicity_train=8",
        "data.minicity_val=3",
        "data.minicity_size=[64,128]",
    ]
    assert main(argv) == 0
    result = json.loads(output.read_text())
    assert result["dataset"] == "minicity"
    assert result["miou_scaled"] == pytest.approx(result["miou"] * 19 / 20)
    assert result["scaled"]["label"] == "mIoU x 19/20 (EncNet-style 20)"
    printed = capsys.readouterr().out
    assert "mIoU (19 classes)" in printed and "mIoU x 19/20 (EncNet-style 20)" in printed


def test_scaled_classes_follows_the_config():
    from dgcn.config import Config
    from dgcn.errors import ConfigError
    from dgcn.evaluation.loop import scaled_classes

    cfg = Config()
    assert scaled_classes(cfg) is None
    cfg.eval.report_scaled = True
    assert scaled_classes(cfg) == 20
    cfg.model.num_classes = 59  # PASCAL Context, background ignored: the EncNet-style 60
    assert scaled_classes(cfg) == 60
    cfg.data.dataset = "pascal-context-60"  # background scored: nothing to rescale
    cfg.model.num_classes = 60
    with pytest.raises(ConfigError, match="drop eval.report_scaled"):
        scaled_classes(cfg)


def test_export_is_refused_for_a_dataset_without_labelids(tmp_path):
    import torch

    from dgcn.config import load_config
    from dgcn.errors import ConfigError
    from dgcn.evaluation.loop import evaluate_run

    cfg = load_config("pascal-context-official")
    with pytest.raises(ConfigError, match="Cityscapes labelIds"):
        evaluate_run(torch.nn.Identity(), cfg, tmp_path / "x.pt", export_dir=tmp_path / "e")
    assert not (tmp_path / "e").exists()
