"""A wing's public face: the names its ``__init__`` exports, each imported from its own module on first use.

A front end writes ``from core.runs import Run, list_runs``, never ``from core.runs.folder import ...``: the wing's
``__init__`` says which names are meant for outside use, and a module can move inside its wing without touching
a front end. The import is lazy (PEP 562's module ``__getattr__``), so ``import core.data`` loads no module of the
wing and a name loads only its own module: asking ``core.search`` for ``cosine_topk`` does not pull torch in.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Mapping


def public_face(package: str, exports: Mapping[str, tuple[str, ...]]
                ) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` of a package whose names live in its modules.

    Parameters
    ----------
    package : str
        The package's dotted name (its ``__name__``).
    exports : mapping of str -> tuple of str
        Module (relative to the package, e.g. ``"folder"``) -> the names it exports; ``"public=own"`` exports the
        module's ``own`` as ``public`` where two modules of a wing use one name (``"CLUSTER_METHODS=METHODS"``).

    Returns
    -------
    __all__ : list of str
    __getattr__ : callable
        Imports the name's module on first use and keeps the value in the package (the next use is a plain
        attribute); :class:`AttributeError` for any other name, so ``from package import submodule`` still
        finds a module.
    __dir__ : callable
    """
    where: dict[str, tuple[str, str]] = {}
    for module, names in exports.items():
        for name in names:
            public, _, own = name.partition("=")
            if public in where:
                raise ValueError(f"{package} exports {public!r} twice ({where[public][0]} and {module})")
            where[public] = (f"{package}.{module}", own or public)

    def __getattr__(name: str):
        try:
            module, own = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), own)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return sorted(where), __getattr__, __dir__
