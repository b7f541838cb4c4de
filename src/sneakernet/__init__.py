"""sneakernet: ship datasets too big for the network on drives, checkably and resumably.

The library API (the command line is a thin layer over it)::

    import sneakernet
    summary = sneakernet.pack("dataset/", out="shipment/", drive_size=sneakernet.parse_size("8TB"))
    print(summary.short_fingerprint)
"""

from __future__ import annotations

from ._version import __version__
from .errors import ExitCode, SneakernetError
from .info import info, ls
from .pack import PackOptions, PackSummary, pack
from .restore import restore, status
from .units import format_size, parse_size
from .verify import Mode, verify

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
    "restore",
    "status",
    "verify",
]
