"""Mending damaged chunks of drives that are present, byte by byte (docs/format.md 19.7.6), the pure part.

A chunk's hash says only that some byte of it is wrong; parity says more. Reed-Solomon works on each byte position
on its own: with one parity row, a column rebuilt from the others as they read differs from the column as it reads
exactly at the positions where some drive of the stripe (this one, another, or the parity row) holds a wrong byte,
and there it gives the byte that would make the stripe right if the wrong one were this column's. So each chunk
(or parity block) that fails its hash is a :class:`Suspect` with, at each such position over it, the byte parity
gives. A position under one suspect only is that suspect's; a position under several is one of theirs. :func:`resolve`
settles the suspects one at a time, the one with the fewest undecided positions first: every choice of its undecided
positions is tried (up to :data:`MAX_UNDECIDED`), the one that gives its recorded hash keeps them, and the other
suspects over them lose them, which decides positions of theirs in turn. Flips in one stripe of several drives are
so mended unless two hit the same byte position (a true overlap, which one parity row cannot tell apart) or too
many are undecided at once; the hash is the only judge, so a wrong byte is never handed out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import blake3

from .isal import Block

#: Most undecided positions of one suspect whose every choice is tried (2^16, depth first over hasher copies: about
#: 2^17 / 16 hashes of a chunk, seconds), spent only where damage of several drives shares a stripe.
MAX_UNDECIDED = 16
#: Bytes compared at a time when looking for the positions where two blocks differ.
WINDOW = 4096

Key = TypeVar("Key", bound=Hashable)


def differences(a: Block, b: Block) -> list[int]:
    """The positions where ``a`` and ``b`` (of one length) differ, in increasing order."""
    left, right = memoryview(a).cast("B"), memoryview(b).cast("B")
    if left.nbytes != right.nbytes:
        raise ValueError(f"blocks of {left.nbytes} and {right.nbytes} bytes are not compared")
    found = []
    for start in range(0, left.nbytes, WINDOW):
        end = min(start + WINDOW, left.nbytes)
        if left[start:end] != right[start:end]:
            found += [i for i in range(start, end) if left[i] != right[i]]
    return found


@dataclass
class Suspect(Generic[Key]):
    """A chunk or parity block that fails its hash: its bytes ``start`` ... ``start + size`` (stream positions),
    and at each position where parity says some drive is wrong, the byte parity gives it there. ``complete``: every
    stripe it overlaps was looked at (else it is never settled, only kept as a possible owner of its positions)."""

    key: Key
    start: int
    size: int
    fixes: dict[int, int]
    complete: bool = True


def search(data: Block, start: int, positions: Sequence[int], fixes: dict[int, int], digest: str) -> bytearray | None:
    """``data`` (a suspect's bytes, stream position ``start`` first) with the choice of ``positions`` (sorted)
    taken from ``fixes`` or left that gives BLAKE3 ``digest``, None when none does. Depth first, each choice of a
    position's byte extending a copy of the hasher over the bytes before it, so the bytes between two positions
    are hashed once per choice of the positions before them, not once per choice of all."""
    view = memoryview(data).cast("B")
    offsets = [p - start for p in positions]
    ends = [*offsets[1:], view.nbytes]
    chosen: list[int] = []

    def walk(depth: int, hasher: blake3.blake3) -> bool:
        if depth == len(offsets):
            return hasher.hexdigest() == digest
        here = offsets[depth]
        for byte in dict.fromkeys((view[here], fixes[positions[depth]])):
            branch = hasher.copy()
            branch.update(bytes([byte]))
            branch.update(view[here + 1 : ends[depth]])
            chosen.append(byte)
            if walk(depth + 1, branch):
                return True
            chosen.pop()
        return False

    first = blake3.blake3()
    first.update(view[: offsets[0] if offsets else view.nbytes])
    if not walk(0, first):
        return None
    found = bytearray(view)
    for offset, byte in zip(offsets, chosen, strict=True):
        found[offset] = byte
    return found


def resolve(
    suspects: Sequence[Suspect[Key]],
    wanted: Key,
    read: Callable[[Suspect[Key]], bytearray],
    digest: Callable[[Suspect[Key]], str | None],
) -> bytes | None:
    """The bytes of suspect ``wanted`` mended (see the module's docstring), None when it cannot be settled.
    ``read`` gives a suspect's bytes as they read, ``digest`` the BLAKE3 they must have (None: unknown, never
    settled)."""
    owners: dict[int, set[Key]] = {}
    for suspect in suspects:
        for position in suspect.fixes:
            owners.setdefault(position, set()).add(suspect.key)
    pending = {s.key: s for s in suspects if s.complete and s.fixes and digest(s) is not None}
    while wanted in pending:
        ranked = sorted(pending.values(), key=lambda s: sum(len(owners[p]) > 1 for p in s.fixes if s.key in owners[p]))
        suspect = ranked[0]
        mine = [p for p in sorted(suspect.fixes) if suspect.key in owners[p]]
        undecided = [p for p in mine if len(owners[p]) > 1]
        if len(undecided) > MAX_UNDECIDED:
            return None
        del pending[suspect.key]
        buffer = read(suspect)
        for position in mine:
            if len(owners[position]) == 1:
                buffer[position - suspect.start] = suspect.fixes[position]
        expected = digest(suspect)
        assert expected is not None
        found = search(buffer, suspect.start, undecided, suspect.fixes, expected)
        if found is None:
            continue  # a true overlap, or damage past what is looked at: its positions stay undecided
        for position in mine:
            if found[position - suspect.start] == suspect.fixes[position]:
                owners[position] = {suspect.key}
            else:
                owners[position].discard(suspect.key)
        if suspect.key == wanted:
            return bytes(found)
    return None
