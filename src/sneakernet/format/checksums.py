"""B3SUMS, the file ``b3sum --check`` reads on each drive: ``<64 hex digits>  <name>`` per line (docs/format.md
section 8), rendered and parsed here, the one place that knows its syntax."""

from __future__ import annotations

from dataclasses import dataclass, field

from .names import CHECKSUMS_NAME, HEX64


def checksum_lines(entries: list[tuple[str, str]]) -> bytes:
    """B3SUMS text: ``<hex>  <name>`` per line, the format ``b3sum --check`` reads."""
    return "".join(f"{digest}  {name}\n" for name, digest in entries).encode("ascii")


@dataclass(frozen=True)
class Checksums:
    """What a B3SUMS file says: its ``(name, digest)`` lines in order, up to the first damaged one."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    #: The number (from 1) of the first line that is not ``<64 hex digits>  <name>``: it and what follows are
    #: left out of :attr:`entries`.
    damaged_line: int | None = None
    #: The file does not end with a newline: its last line, cut, is left out of :attr:`entries`.
    cut_short: bool = False

    @property
    def problem(self) -> str | None:
        """Why the file is not a whole B3SUMS (a damaged line before a cut end), or None."""
        if self.damaged_line is not None:
            return f"{CHECKSUMS_NAME} line {self.damaged_line} is damaged"
        return f"{CHECKSUMS_NAME} is cut short" if self.cut_short else None

    def digests(self) -> dict[str, str]:
        """Each name's digest (a name given twice: its last line)."""
        return dict(self.entries)


def parse_checksums(data: bytes) -> Checksums:
    """The lines of a B3SUMS file's bytes; never raises (a byte outside ASCII damages its line)."""
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(data.decode("ascii", "replace").split("\n")[:-1], 1):
        digest, sep, name = line.partition("  ")
        if not sep or not HEX64.fullmatch(digest):
            return Checksums(entries, damaged_line=number, cut_short=not data.endswith(b"\n"))
        entries.append((name, digest))
    return Checksums(entries, cut_short=not data.endswith(b"\n"))
