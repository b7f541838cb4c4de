"""The fingerprint: the one hash that names a shipment, over its drives' manifest hashes (docs/format.md
section 10)."""

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


def catalog_is_consistent(header: CatalogHeader, drives: list[CatalogDrive]) -> bool:
    """Whether a catalog lists drives 1..N and its drives' manifest hashes give its fingerprint."""
    # Counted first: a header claiming 10^12 drives must not make a list of them.
    numbered = len(drives) == header.drives and all(d.drive == n for n, d in enumerate(drives, 1))
    return numbered and fingerprint(d.manifest_blake3 for d in drives) == header.fingerprint


def short_fingerprint(full: str) -> str:
    """The first 80 bits in groups of four hex digits: ``3f9a-12bc-77d0-e145-9abc``."""
    digits = full[:SHORT_FINGERPRINT_DIGITS]
    return "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))
