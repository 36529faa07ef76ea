import pytest
import torch

from dgcn.datasets import make_minicity


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def minicity(tmp_path_factory):
    """A tiny MiniCity (8 train, 3 val images of 64x128) for training and evaluation tests."""
    root = tmp_path_factory.mktemp("mc") / "minicity"
    make_minicity(root, train=8, val=3, height=64, width=128, progress=False)
    return root
