"""Make the optional packages unimportable in this process, as if only the core dependencies
were installed (``dgcn`` without ``[notebooks]``, ``[dev]`` or ``[pascal]``).

Put this folder first on ``PYTHONPATH``: Python imports ``sitecustomize`` at start-up, and
every import finder is then wrapped so that the names in ``DGCN_HIDE_MODULES``
(comma-separated; default :data:`HIDDEN`) and their submodules are not found, as if they were
not installed; nothing is uninstalled. Through the environment the same holds in the
processes a test starts (the DataLoader's workers, ``torchrun``'s ranks). Used by
``tests/test_no_extras.py`` and ``make test-no-extras``.
"""

import os
import sys

#: the packages of the extras that dgcn's own code may import
HIDDEN = (
    "matplotlib",
    "pandas",
    "ipywidgets",
    "IPython",
    "jupytext",
    "jupyterlab",
    "jupyter_server_mathjax",
    "nbformat",
    "nbclient",
    "nbval",
    "ipykernel",
    "scipy",
)


class Hidden:
    """A meta-path finder that answers as if ``names`` (and ``name.sub``) were not installed
    (``None``: ``import`` raises ``ModuleNotFoundError``, ``importlib.util.find_spec`` returns
    ``None``) and passes every other name to the finder it wraps."""

    def __init__(self, finder, names):
        self.finder = finder
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in self.names:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(fullname, path, target) if find else None

    def __getattr__(self, name):  # invalidate_caches, find_distributions, ...
        return getattr(self.finder, name)


_names = os.environ.get("DGCN_HIDE_MODULES")
_hidden = frozenset(_names.split(",") if _names else HIDDEN)
sys.meta_path[:] = [Hidden(finder, _hidden) for finder in sys.meta_path]
