"""``python -m sneakernet.cli``: the same as the ``sneakernet`` command."""

from .app import main

main()
