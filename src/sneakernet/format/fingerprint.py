"""The fingerprint: the one hash that names a shipment, over its drives' manifest hashes (docs/format.md
section 10); in version 2 over the catalog's body (section 19.6)."""

from __future__ import annotations

from collections.abc import Iterable

import blake3

from .catalog import CatalogDrive
from .headers import CatalogHeader
from .names import SHORT_FINGERPRINT_DIGITS


def fingerprint(manifest_hashes: Iterable[str]) -> str:
    """BLAKE3 over the manifests' BLAKE3 hex digests, one per line in drive order.

    By hand: ``for d in drive-*; do b3sum --no-names $d/manifest.jsonl.zst; done | b3sum --no-names``.
    """
    hasher = blake3.blake3()
    for digest in manifest_hashes:
        hasher.update(digest.encode("ascii") + b"\n")
    return hasher.hexdigest()


#: How a version 2 catalog's parity records begin (``type`` comes first in every record, section 5): the lines the
#: fingerprint leaves out, so that parity added later keeps it (docs/format.md 19.6).
PARITY_LINE_START = b'{"type":"parity"'
#: How the end record begins: left out too, since its count counts the parity records.
END_LINE_START = b'{"type":"end"'


class CatalogBodyHasher:
    """Version 2's fingerprint, streaming (docs/format.md 19.6): fed the catalog's decompressed lines after the
    header, each with its ``\\n``, in file order, it hashes all but the ``parity`` records and the end record. The
    writer feeds it the body as it spools it; a reader feeds it every line it reads after the header, then compares
    :meth:`hexdigest` with the header's fingerprint. By hand: ``zstd -dc catalog.jsonl.zst | tail -n +2 |
    head -n -1 | grep -v '^{"type":"parity"' | b3sum --no-names``."""

    def __init__(self) -> None:
        self._hasher = blake3.blake3()

    def update(self, line: bytes) -> None:
        if not line.startswith((PARITY_LINE_START, END_LINE_START)):
            self._hasher.update(line)

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


def body_fingerprint(lines: Iterable[bytes]) -> str:
    """The version 2 fingerprint of a catalog body's lines (each ending in ``\\n``): :class:`CatalogBodyHasher`."""
    hasher = CatalogBodyHasher()
    for line in lines:
        hasher.update(line)
    return hasher.hexdigest()


def shipment_fingerprint(header: CatalogHeader, drives: list[CatalogDrive]) -> str:
    """The fingerprint a catalog's records give: version 1's over its drives' manifest hashes; version 2's is over
    its body, which the catalog reader checks as it reads it (it refuses a body that does not give the header's),
    so for a catalog read whole it is the header's."""
    if header.version >= 2:
        return header.fingerprint
    return fingerprint(d.manifest_blake3 for d in drives)


def catalog_is_consistent(header: CatalogHeader, drives: list[CatalogDrive]) -> bool:
    """Whether a catalog read whole lists drives 1..N and gives its fingerprint (:func:`shipment_fingerprint`)."""
    # Counted first: a header claiming 10^12 drives must not make a list of them.
    numbered = len(drives) == header.drives and all(d.drive == n for n, d in enumerate(drives, 1))
    return numbered and shipment_fingerprint(header, drives) == header.fingerprint


def short_fingerprint(full: str) -> str:
    """The first 80 bits in groups of four hex digits: ``3f9a-12bc-77d0-e145-9abc``."""
    digits = full[:SHORT_FINGERPRINT_DIGITS]
    return "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))
