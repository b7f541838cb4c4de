"""``python -m sneakernet``: the same as the ``sneakernet`` command."""

from .cli import main

main()
