"""Selecting paths: restore's ``--include`` patterns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..drive import CatalogReader
from ..errors import UsageError
from ..format import CatalogEntry
from ..patterns import Include

if TYPE_CHECKING:
    from ..crypto.keys import ShipmentIdentity


class Includes:
    """``--include`` patterns, in the dialect :class:`patterns.Include` names. No pattern: everything."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.rules = [Include(p.encode("utf-8", "surrogateescape")) for p in patterns]
        self.patterns = [rule.pattern for rule in self.rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def wants(self, path: bytes) -> bool:
        if not self.rules:
            return True
        return any(rule.matches(path) for rule in self.rules)

    def refuse_unmatched(self, catalog: str, identity: ShipmentIdentity | None = None) -> None:
        """A pattern that matches no path of the shipment is a typo, not a wish to restore nothing (tar says so
        too): refused before anything is written. Reads the catalog until every pattern has matched."""
        unmatched = list(self.rules)
        for record in CatalogReader(catalog, identity=identity).records():
            if isinstance(record, CatalogEntry):
                unmatched = [rule for rule in unmatched if not rule.matches(record.path)]
                if not unmatched:
                    return
        shown = ", ".join(repr(rule.pattern.decode("utf-8", "surrogateescape")) for rule in unmatched)
        raise UsageError(
            f"--include {shown} matches no path of the shipment: check the pattern (sneakernet ls DRIVE lists the "
            "paths)"
        )
