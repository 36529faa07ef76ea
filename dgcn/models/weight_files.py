"""Weights files: reading a file of weights and fetching one that is not there yet.

* :func:`read_state_dict`: a file of pretrained weights as a state dict, in one line when it
  cannot be read;
* :func:`download_file`: the one download path of the package (a temporary file, a progress
  bar, the sha256 of what arrived, a checksum prefix when one is published), used for
  torchvision's ImageNet weights (:func:`load_imagenet_state_dict`, into
  ``$TORCH_HOME/hub/checkpoints``) and MIT CSAIL's deep-stem ResNet-101
  (:func:`fetch_deep_stem_imagenet`).

What the weights are for (conversions, shape checks, loading) is :mod:`dgcn.models.weights`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from urllib.request import urlopen

import torch
import torchvision

from dgcn.errors import CheckpointError
from dgcn.fileio import atomic_path
from dgcn.progress import progress_bar

#: MIT CSAIL's ImageNet deep-stem ResNet-101 (the ``resnet101`` of their
#: semantic-segmentation-pytorch): the backbone weights of the authors' recipe, fetched by
#: :func:`fetch_deep_stem_imagenet`. No checksum is published for it.
DEEP_STEM_IMAGENET_URL = (
    "http://sceneparsing.csail.mit.edu/model/pretrained_resnet/resnet101-imagenet.pth"
)

#: a deep-stem weights path that does not exist is downloaded from
#: :data:`DEEP_STEM_IMAGENET_URL` only when its file name is this one (the address's own)
DEEP_STEM_IMAGENET_NAME = "resnet101-imagenet.pth"


def torch_home_checkpoints() -> str:
    """The folder where torchvision looks for downloaded weights ($TORCH_HOME/hub/checkpoints)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def load_imagenet_state_dict(weights: torchvision.models.WeightsEnum) -> dict:
    """torchvision's ImageNet weights, from $TORCH_HOME/hub/checkpoints or downloaded there.

    A download is checked against the sha256 prefix in the file's name (``63fe2227`` in
    ``resnet101-63fe2227.pth``), as torchvision does; a file already in place is read as it is.

    Raises:
        CheckpointError: when the file is absent and cannot be downloaded (no internet, or
            bytes that fail the checksum), naming the file and where to put it.
    """
    url = weights.url
    folder = torch_home_checkpoints()
    path = os.path.join(folder, os.path.basename(url))
    if not os.path.exists(path):
        digest = torch.hub.HASH_REGEX.search(os.path.basename(url))
        try:
            download_file(url, path, sha256_prefix=digest.group(1) if digest else None)
        except (OSError, HTTPException) as err:  # offline, proxy, disk: "place it by hand"
            raise CheckpointError(
                f"ImageNet weights {os.path.basename(url)} are not in {folder} and could not be "
                f"downloaded from {url} ({type(err).__name__}: {err}); download that file on a "
                f"machine with internet and place it at {path} ($TORCH_HOME moves the folder)"
            ) from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read ImageNet weights {path} ({err}); delete it and download it again"
        ) from err


def read_state_dict(path: str) -> dict:
    """A state dict from a file of pretrained weights (a ``{"state_dict": ...}`` wrapper is
    opened).

    Raises:
        CheckpointError: the file is missing or unreadable, naming it.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"pretrained weights {path} not found; check the path")
    return _load_weights(path)


def _load_weights(path: str | os.PathLike) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read pretrained weights {path}: {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def download_file(
    url: str,
    path: str | os.PathLike,
    check: Callable[[Path], None] | None = None,
    progress: bool = True,
    timeout: float = 20.0,
    sha256_prefix: str | None = None,
) -> str:
    """Download ``url`` to ``path``, whole or not at all; returns the sha256 of the bytes.

    The bytes go to a temporary file next to ``path`` (:func:`dgcn.fileio.atomic_path`), which
    replaces ``path`` in one step once the transfer is complete (all of ``Content-Length``, when
    the server sends one) and ``check`` accepted it; on any failure it is deleted, so ``path``
    is left as it was. Missing folders of ``path`` are created, and removed again on a failure.

    Args:
        url: the address.
        path: the file to write.
        check: called with the temporary file before it takes ``path``'s place; what it raises
            stops the download.
        progress: show a tqdm bar (bytes).
        timeout: seconds to wait for the server at the connection and at each read.
        sha256_prefix: the start of the file's sha256 when it is published (torchvision puts
            it in the file name); bytes that do not match are refused like a broken transfer.

    Raises:
        OSError: no connection, an HTTP error (``urllib.error.URLError`` is an OSError), a
            transfer that stops short, or the disk.
        http.client.HTTPException: a broken HTTP response.
    """
    path = Path(path)
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _download(url, path, check, progress, timeout, sha256_prefix)
    except BaseException:
        for folder in created:  # deepest first; only what this call made, and only if empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _download(
    url: str,
    path: Path,
    check: Callable[[Path], None] | None,
    progress: bool,
    timeout: float,
    sha256_prefix: str | None,
) -> str:
    digest = hashlib.sha256()
    with atomic_path(path) as tmp:
        with urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            size = int(response.headers.get("Content-Length") or 0)
            with progress_bar(
                total=size or None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=path.name,
                disable=not progress,
            ) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            received = out.tell()
        if size and received != size:
            raise OSError(f"the transfer stopped after {received} of {size} bytes")
        if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
            raise OSError(f"the bytes' sha256 {digest.hexdigest()} is not {sha256_prefix}...")
        if check is not None:
            check(tmp)
    return digest.hexdigest()


def fetch_deep_stem_imagenet(
    path: str | os.PathLike,
    accept: Callable[[dict], object] | None = None,
    progress: bool = True,
) -> dict:
    """Download MIT CSAIL's ImageNet deep-stem ResNet-101 to ``path``; returns its state dict.

    The file is :data:`DEEP_STEM_IMAGENET_URL`. No checksum is published for it (neither next
    to the file nor in the loader of the repository that publishes it), so none is verified:
    the file is accepted when it reads as a state dict and ``accept`` returns without raising,
    and the sha256 of what arrived is printed (stderr) with its path, so that two machines can
    compare. Only a complete, accepted file takes ``path``'s place (:func:`download_file`).

    Under ``torchrun`` every process that finds the file absent downloads its own copy into its
    own temporary file; the copies are identical and the last one to arrive stays. To download
    it once, build the model once in one process first (``build_model("dgcnet_official_r101",
    pretrained=path)``).

    Args:
        path: where the file goes (the ``pretrained`` path of the model's config).
        accept: called with the file's state dict (e.g. the conversion and shape check of
            :func:`load_pretrained_backbone`).
        progress: show a download progress bar.

    Raises:
        CheckpointError: offline or any other failed transfer (naming the file, the address and
            where to put the file by hand), or a downloaded file that is not the expected
            weights (nothing is written).
    """
    loaded: dict[str, dict] = {}

    def check(tmp: Path) -> None:
        loaded["state"] = _load_weights(tmp)
        if accept is not None:
            accept(loaded["state"])

    try:
        sha256 = download_file(DEEP_STEM_IMAGENET_URL, path, check, progress)
    except CheckpointError as err:
        raise CheckpointError(
            f"the file downloaded from {DEEP_STEM_IMAGENET_URL} was refused ({err}); nothing was "
            f"written to {path}"
        ) from err
    except (OSError, HTTPException) as err:
        raise CheckpointError(
            f"deep-stem ImageNet weights {path} are absent and could not be downloaded from "
            f"{DEEP_STEM_IMAGENET_URL} ({type(err).__name__}: {err}); download that file on a "
            f"machine with internet and place it at {path}"
        ) from err
    mib = os.path.getsize(path) / 2**20
    print(
        f"dgcn: downloaded {DEEP_STEM_IMAGENET_URL} to {path} ({mib:.1f} MiB, sha256 {sha256}; "
        "no checksum is published for this file)",
        file=sys.stderr,
    )
    return loaded["state"]
