"""Re-exports that are imported on first use (PEP 562), so that importing a package stays light.

``import dgcn`` must not import torch or matplotlib (the CLI's ``--help`` and the notebooks'
setup cell rely on it), yet ``dgcn.fit`` should work without a deep import. A package lists its
re-exports as ``{name: module}`` and gets a module ``__getattr__`` and ``__dir__`` from here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``package.name`` imports ``exports[name]``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the module that defines it; a name whose module is
            ``package + "." + name`` is a submodule and resolves to the module itself.
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        value = module if exports[name] == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
