"""``python -m sneakernet``: the same as the ``sneakernet`` command."""

from .cli.app import main

main()
