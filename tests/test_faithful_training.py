"""The training recipe against the authors' run (docs/reference/official_dgcnet.md, "Training
and evaluation"): the loss of B images in one process equals B one-image processes, gradient
accumulation gives the mean over the global batch, and the official preset's length."""

import contextlib
import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgcn.config import load_config
from dgcn.distributed import DistInfo
from dgcn.training.interrupt import StopRequest
from dgcn.training.loop import train_step
from dgcn.training.losses import SegmentationLoss

IGNORE = 255


def authors_ohem_ce(logits, target, thresh, min_kept):
    """OHEM cross-entropy of ONE image as one of the authors' processes computes it, written
    out: the true class's probability at every labelled pixel (1 elsewhere), sorted; the
    threshold is ``thresh``, or the ``min_kept``-th smallest probability when that is larger;
    the mean cross-entropy over the labelled pixels at or below it. With fewer than
    ``min_kept`` labelled pixels, all of them.

    Shape:
        logits: [K, H, W], target: [H, W] -> scalar
    """
    k = logits.shape[0]
    scores = logits.reshape(k, -1).T  # [N, K]
    labels = target.reshape(-1)
    valid = labels != IGNORE
    kept = valid.clone()
    if int(valid.sum()) >= min_kept:
        prob = torch.ones(labels.shape, dtype=scores.dtype)
        prob[valid] = scores[valid].softmax(1).gather(1, labels[valid, None])[:, 0]
        ordered = prob.detach().sort().values
        threshold = max(thresh, float(ordered[min_kept - 1]))
        kept = valid & (prob.detach() <= threshold)
    picked = scores[kept]
    log_p = picked - picked.logsumexp(1, keepdim=True)
    return -log_p.gather(1, labels[kept, None]).mean()


def authors_ce(logits, target):
    """Plain cross-entropy of ONE image: the mean over its labelled pixels."""
    return F.cross_entropy(logits[None], target[None], ignore_index=IGNORE)


def uneven_batch(seed=0, k=5, size=(16, 20)):
    """Three images whose labelled pixels number 320, 200 and 40, with confident and unsure
    pixels, so per-image and per-pixel means differ."""
    gen = torch.Generator().manual_seed(seed)
    out = 3 * torch.randn(3, k, *size, generator=gen)
    aux = torch.randn(3, k, *size, generator=gen)
    target = torch.randint(0, k, (3, *size), generator=gen)
    target[1, :6] = IGNORE
    target[2, 2:] = IGNORE
    return out, aux, target


def gradients(loss_fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    loss = loss_fn(*leaves)
    loss.backward()
    return loss.detach(), [t.grad for t in leaves]


def test_ohem_per_image_equals_one_process_per_image():
    """One process with B images == B processes with one image each (DDP averages them): the
    loss and its gradients, OHEM main + 0.4 x aux CE, against the authors' definition."""
    out, aux, target = uneven_batch()
    criterion = SegmentationLoss("ohem", aux_weight=0.4, ohem_thresh=0.7, ohem_min_kept=60)

    def ours(o, a):
        return criterion({"out": o, "aux": a}, target)[0]

    def authors(o, a):
        per_image = [
            authors_ohem_ce(o[b], target[b], 0.7, 60) + 0.4 * authors_ce(a[b], target[b])
            for b in range(len(target))
        ]
        return torch.stack(per_image).mean()

    loss, grads = gradients(ours, out, aux)
    expected, expected_grads = gradients(authors, out, aux)
    torch.testing.assert_close(loss, expected)
    for grad, twin in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, twin)
    # the batch's pixel mean weighs the images by their kept pixels: other gradients here
    pixel = SegmentationLoss("ohem", 0.4, 0.7, 60, reduction="pixel")
    _, pixel_grads = gradients(lambda o, a: pixel({"out": o, "aux": a}, target)[0], out, aux)
    change = (pixel_grads[0] - grads[0]).norm() / grads[0].norm()
    assert change > 0.2, change


def test_ce_per_image_equals_one_process_per_image():
    out, aux, target = uneven_batch(1)
    criterion = SegmentationLoss("ce", aux_weight=0.4)
    loss, parts = criterion({"out": out, "aux": aux}, target)
    main = torch.stack([authors_ce(out[b], target[b]) for b in range(3)]).mean()
    aux_loss = torch.stack([authors_ce(aux[b], target[b]) for b in range(3)]).mean()
    torch.testing.assert_close(parts["loss_main"], main)
    torch.testing.assert_close(parts["loss_aux"], aux_loss)
    torch.testing.assert_close(loss, main + 0.4 * aux_loss)
    # reduction="pixel" is F.cross_entropy's own mean over the batch, bit for bit
    pixel = SegmentationLoss("ce", aux_weight=0.0, reduction="pixel")({"out": out}, target)[0]
    assert torch.equal(pixel, F.cross_entropy(out, target, ignore_index=IGNORE))


def test_an_image_without_labels_counts_as_zero_of_b():
    out, _, target = uneven_batch(2)
    target[0] = IGNORE
    loss = SegmentationLoss("ce", aux_weight=0.0)({"out": out}, target)[0]
    expected = (authors_ce(out[1], target[1]) + authors_ce(out[2], target[2])) / 3
    torch.testing.assert_close(loss, expected)


def test_reduction_is_checked():
    with pytest.raises(ValueError, match="reduction must be 'image' or 'pixel'"):
        SegmentationLoss("ce", reduction="mean")


class TwoHeads(nn.Module):
    """A small network without BatchNorm (so images do not interact within a batch) with a
    main and an auxiliary output, like the segmentation models."""

    def __init__(self, k: int = 5):
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.out = nn.Conv2d(8, k, 3, padding=1)
        self.aux = nn.Conv2d(8, k, 1)

    def forward(self, x):
        f = torch.relu(self.body(x))
        return {"out": 2 * self.out(f), "aux": self.aux(f)}


def step_gradients(model, images, masks, micro, criterion):
    """The gradients of one :func:`train_step` over ``images`` in micro-batches of ``micro``
    (accumulation = len(images) / micro), one process on the CPU."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    accumulation = len(images) // micro
    run = SimpleNamespace(
        info=DistInfo(),
        cfg=load_config("minicity-cpu"),
        run_dir=None,
        accumulation=accumulation,
        trained=model,
        model=model,
        optimizer=optimizer,
        criterion=criterion,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0),
        autocast=contextlib.nullcontext,
    )
    batches = iter([(images[i : i + micro], masks[i : i + micro]) for i in range(0, 4, micro)])
    parts = train_step(run, batches, 0)
    return [p.grad.clone() for p in model.parameters()], parts


def test_accumulation_gives_the_mean_over_the_global_batch():
    """4 images as 1 x 4, 2 x 2 or 4 x 1 (micro-batch x accumulation steps): each gives the
    gradient of the mean over the 4 images of one-image losses, the authors' 4 processes x 1
    image under DDP."""
    torch.manual_seed(0)
    model = TwoHeads()
    images = torch.randn(4, 3, 12, 16)
    masks = torch.randint(0, 5, (4, 12, 16))
    masks[1, :8] = IGNORE
    masks[3, :, 3:] = IGNORE
    criterion = SegmentationLoss("ohem", aux_weight=0.4, ohem_thresh=0.7, ohem_min_kept=40)
    per_image = []
    for i in range(4):
        single = copy.deepcopy(model)
        outputs = single(images[i : i + 1])
        loss = authors_ohem_ce(outputs["out"][0], masks[i], 0.7, 40) + 0.4 * authors_ce(
            outputs["aux"][0], masks[i]
        )
        loss.backward()
        per_image.append([p.grad for p in single.parameters()])
    expected = [torch.stack(g).mean(0) for g in zip(*per_image, strict=True)]
    for micro in (4, 2, 1):
        grads, parts = step_gradients(model, images, masks, micro, criterion)
        for grad, twin in zip(grads, expected, strict=True):
            torch.testing.assert_close(grad, twin, rtol=1e-5, atol=1e-6, msg=f"micro {micro}")
        assert math.isfinite(parts["loss"])


def test_the_official_preset_runs_the_authors_iterations():
    """The released script, asked for 60,000 steps on 8 GPUs x 1 image, repeats the 2,975
    training images ceil(60,000 x 8 / 8 / 2,975) times and runs one iteration per entry."""
    samples_per_process = 60_000 * (8 * 1) / 8
    entries = math.ceil(samples_per_process / 2_975) * 2_975
    assert entries == 62_475
    for preset in ("cityscapes-official", "cityscapes-colab-t4"):
        cfg = load_config(preset)
        assert cfg.train.iterations == entries, preset
        assert cfg.train.batch_size == 8 and cfg.train.poly_power == 0.9


def test_in_training_evaluation_runs_in_the_runs_precision(monkeypatch):
    """``eval.precision=auto`` evaluates in the run's precision; an explicit one is kept."""
    import dgcn.training.steps as steps
    from dgcn.evaluation.metrics import ConfusionMatrix

    seen = []

    def spy(model, loader, config, **kwargs):
        seen.append(config.precision)
        return ConfusionMatrix(19)

    monkeypatch.setattr(steps, "evaluate", spy)
    for eval_precision, expected in (("auto", "bf16"), ("fp32", "fp32")):
        cfg = load_config("minicity-cpu", [f"eval.precision={eval_precision}"])
        run = SimpleNamespace(
            cfg=cfg,
            info=DistInfo(),
            val_set=[],
            model=TwoHeads(),
            progress=False,
            precision=steps.Precision(torch.bfloat16, False),
            log=SimpleNamespace(append=lambda record: None),
            writer=None,
            stop=StopRequest(),
        )
        steps.evaluate_step(run, 1)
        assert seen[-1] == expected
