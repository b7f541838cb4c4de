"""B3SUMS, the file ``b3sum --check`` reads on each drive: ``<64 hex digits>  <name>`` per line (docs/format.md
section 8), rendered here."""

from __future__ import annotations


def checksum_lines(entries: list[tuple[str, str]]) -> bytes:
    """B3SUMS text: ``<hex>  <name>`` per line, the format ``b3sum --check`` reads."""
    return "".join(f"{digest}  {name}\n" for name, digest in entries).encode("ascii")
