"""The package's three test modes against the authors' released evaluation, re-computed step by
step in ``dgcn.evaluation.authors`` (whole image, sliding window, multi-scale + flip)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgcn.evaluation import authors, predict, sliding_windows
from dgcn.models import build_model
from dgcn.models.common import resize

# (image size, tile): the tile inside the image, and larger than it in height only
CASES = [((48, 80), 32), ((48, 80), 64)]
SCALES = (0.5, 0.75, 1.0, 1.5)
#: the largest difference allowed between the package's probabilities and the reference's
#: (measured: at most 2e-7, float32 against float64; before the package resized the logits of
#: a multi-scale view once and padded a large tile: 5e-4 multi-scale, 0.08 to 0.13 sliding)
ATOL = 1e-6


@pytest.fixture(scope="module", params=["fcn_micro", "dgcnet_paper_micro"])
def model(request):
    """Random weights, the classifier scaled so that the logits spread as a trained model's
    (standard deviation about 2, against 0.1 at initialisation)."""
    torch.manual_seed(0)
    net = build_model(request.param, num_classes=5).eval()
    with torch.no_grad():
        net.head.classifier[-1].weight.mul_(20)
        net.head.classifier[-1].bias.mul_(20)
    return net


def _image(size):
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(sum(size)))


def _gap(probs: torch.Tensor, mean_logits: np.ndarray) -> float:
    return float(np.abs(probs[0].double().numpy() - authors.softmax(mean_logits)).max())


@pytest.mark.parametrize("size,tile", CASES)
def test_the_three_modes_are_the_authors(model, size, tile):
    net, image = authors.stride_logits(model), _image(size)
    whole = predict(model, image, mode="whole")
    assert _gap(whole, authors.authors_whole(net, image)) < ATOL
    slide = predict(model, image, mode="slide", tile=tile)
    assert _gap(slide, authors.authors_sliding(net, image, tile)) < ATOL
    multi = predict(model, image, mode="multiscale", scales=SCALES, flip=True)
    assert _gap(multi, authors.authors_multiscale(net, image, SCALES, flip=True)) < ATOL
    # the modes really differ here, so a mode that fell back to another would be caught
    assert (slide - whole).abs().max() > 1e-3 and (multi - whole).abs().max() > 1e-3


def test_a_tile_larger_than_the_image_is_padded_not_whole(model):
    size, tile = CASES[1]
    image = _image(size)
    whole = predict(model, image, mode="whole")
    assert (predict(model, image, mode="slide", tile=tile) - whole).abs().max() > 1e-3
    # a tile of the image's own size is the image: exactly the whole-image prediction
    assert torch.equal(predict(model, image, mode="slide", tile=size), whole)


@pytest.mark.parametrize("size", [(48, 80), (70, 95), (64, 64), (40, 100), (1024, 2048)])
@pytest.mark.parametrize("tile", [32, 64, 832])
def test_the_windows_are_the_scripts(size, tile):
    if min(size) <= tile - np.ceil(tile * 2 / 3):  # the script finds no window there
        with pytest.raises(ValueError, match="no window"):
            authors.authors_windows(size, tile)
        return
    assert sliding_windows(size, tile=tile, overlap=1 / 3) == authors.authors_windows(size, tile)


def test_zoom_is_align_corners_bilinear_at_pythons_rounding():
    """``scipy.ndimage.zoom(order=1, prefilter=False)``, the script's resize, is
    ``F.interpolate(mode="bilinear", align_corners=True)`` at ``round(side x scale)``."""
    ndimage = pytest.importorskip("scipy.ndimage")
    image = torch.randn(1, 3, 45, 70, generator=torch.Generator().manual_seed(1))
    for scale in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75):
        size = authors.zoom_size((45, 70), scale)
        for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 5e-5)):
            x = image.to(dtype)
            zoomed = ndimage.zoom(x.numpy(), (1.0, 1.0, scale, scale), order=1, prefilter=False)
            assert zoomed.shape[-2:] == size, scale
            ours = F.interpolate(x, size=size, mode="bilinear", align_corners=True).numpy()
            # float32: torch's coordinates and weights in float32, scipy's in float64
            np.testing.assert_allclose(ours, zoomed, rtol=tolerance, atol=tolerance)
    assert authors.zoom_size((45, 70), 0.5) == (22, 35)  # 22.5 -> 22: halves to even


def test_dgcnet_returns_its_logits_at_a_requested_size(model):
    image = _image((40, 56))
    with torch.no_grad():
        stride8 = authors.stride_logits(model)(image)
        assert tuple(stride8.shape[-2:]) == (5, 7)
        assert torch.equal(model(image)["out"], resize(stride8, (40, 56)))
        assert torch.equal(model(image, size=(97, 131))["out"], resize(stride8, (97, 131)))
