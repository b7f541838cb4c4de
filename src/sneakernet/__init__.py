"""sneakernet: ship datasets too big for the network on drives, checkably and resumably.

The library API (the command line is a thin layer over it)::

    import sneakernet
    summary = sneakernet.pack("dataset/", out="shipment/", drive_size=sneakernet.parse_size("8TB"))
    print(summary.short_fingerprint)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ExitCode, SneakernetError
from .units import format_size, parse_size

if TYPE_CHECKING:
    from .info import info, ls
    from .options import PackOptions
    from .packer import PackSummary, pack
    from .planner import plan
    from .restorer import restore, status
    from .verifier import Mode, verify

#: The names imported on first use, and their modules: a command runs without importing what it does not use
#: (``sneakernet plan`` never loads restore or verify), and each starts sooner for it.
_LAZY = {
    "info": ".info",
    "ls": ".info",
    "PackOptions": ".options",
    "PackSummary": ".packer",
    "pack": ".packer",
    "plan": ".planner",
    "restore": ".restorer",
    "status": ".restorer",
    "Mode": ".verifier",
    "verify": ".verifier",
}


class _Package(types.ModuleType):
    """The package, whose functions ``pack``, ``verify``, ``restore`` and ``info`` share their names with the
    modules that define them. Importing a submodule sets it as an attribute of its package; this keeps the
    function under the name instead, as an eager ``from .pack import pack`` in this file would."""

    def __getattr__(self, name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        super().__setattr__(name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(_LAZY))

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "ExitCode",
    "Mode",
    "PackOptions",
    "PackSummary",
    "SneakernetError",
    "__version__",
    "format_size",
    "info",
    "ls",
    "pack",
    "parse_size",
    "plan",
    "restore",
    "status",
    "verify",
]
