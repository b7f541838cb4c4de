"""The ``sneakernet`` command: click only, over the library.

:mod:`.app` is the group and adds one module per command (``pack_cmd``, ``plan_cmd``, ``verify_cmd``,
``restore_cmd``, ``status_cmd``, ``ls_cmd``, ``info_cmd``); each parses its options, calls one library function
and prints through :mod:`.render` (human output) or the report's JSON. :mod:`.progress` draws progress on stderr,
:mod:`.exits` turns sneakernet's errors, Ctrl-C and SIGTERM into one line and an exit code, :mod:`.command` and
:mod:`.params` hold what several commands share. ``main`` is re-exported here for the console script
(``sneakernet.cli:main``) and ``python -m sneakernet``.
"""

from .app import main

__all__ = ["main"]
