"""The parity code's operations on equal-size blocks (docs/format.md 19.7.3 and 19.7.6), for one parity group.

:class:`ParityCode` is what pack, verify, restore and rebuild use: ``encode`` (the k data blocks of a stripe ->
its m parity blocks), ``accumulate`` (P_j ^= A[j][c]·D_c: one data drive at a time, the one-dock case, or a row or a
column added later) and ``reconstruct`` (up to m lost data blocks of a stripe from the surviving data blocks and
parity blocks). Every operation is one matrix times a list of blocks, done by a backend with a well-kept library
behind it, never by Python arithmetic per byte: ISA-L (:mod:`.isal`), or numpy's tables (:mod:`.tables`) as the
slower fallback. A data drive shorter than the stripe counts as zeros: the caller hands a zero-filled block.

Nothing here checks a rebuilt block: the caller MUST compare every chunk it takes from one with the chunk's
recorded BLAKE3 before using it (19.7.6), so that a damaged or hostile parity drive can make a rebuild fail but
never make a reader accept a wrong byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ..errors import ExitCode, SneakernetError
from .isal import Block, IsalBackend, Output, library_candidates
from .matrix import MATRIX, Matrix, check_shape, decode_matrix, encode_matrix

#: What to install for the fast engine, and for the fallback, as the error names them.
INSTALL_HINT = (
    "install sneakernet's parity extra (pip install '.[parity]' in its clone: pyeclib's Linux wheel carries ISA-L) "
    "or the system's ISA-L (Debian, Ubuntu: apt install libisal2); or, slower, the parity-numpy extra"
)


class ParityEngineMissing(SneakernetError):
    """No library to compute parity with is installed (or the one asked for is not)."""

    exit_code = ExitCode.USAGE


class NotRecoverable(SneakernetError):
    """More blocks of a stripe are lost than the surviving parity rows can rebuild."""

    exit_code = ExitCode.PROBLEMS


class Backend(Protocol):
    """Matrix times blocks over GF(2^8): the per-byte work, done by a library."""

    name: str

    def multiply(self, coefficients: Matrix, inputs: Sequence[Block], outputs: Sequence[Output]) -> None:
        """outputs[i] = the sum over j of coefficients[i][j] · inputs[j], byte by byte (outputs overwritten)."""

    def multiply_add(self, coefficients: tuple[int, ...], block: Block, outputs: Sequence[Output]) -> None:
        """outputs[i] ^= coefficients[i] · block, byte by byte."""


def _isal() -> Backend | None:
    for library in library_candidates():
        try:
            return IsalBackend(library)
        except (OSError, AttributeError):
            continue
    return None


def _numpy() -> Backend | None:
    try:
        from .tables import NumpyBackend
    except ImportError:
        return None
    return NumpyBackend()


_LOADERS = {"isa-l": _isal, "numpy": _numpy}
_loaded: dict[str, Backend | None] = {}


def load_backend(name: str | None = None) -> Backend:
    """The backend called ``name`` ("isa-l" or "numpy"), or the best one installed (ISA-L, else numpy);
    ParityEngineMissing in one line naming what to install when there is none."""
    names = [name] if name else list(_LOADERS)
    for candidate in names:
        if candidate not in _LOADERS:
            raise ValueError(f"no parity engine called {candidate!r}: {', '.join(_LOADERS)}")
        if candidate not in _loaded:
            _loaded[candidate] = _LOADERS[candidate]()
        backend = _loaded[candidate]
        if backend is not None:
            return backend
    what = f"the {name} parity engine is not installed" if name else "parity needs ISA-L, which is not installed"
    raise ParityEngineMissing(f"{what}: {INSTALL_HINT}")


def installed_backends() -> list[Backend]:
    """Every backend this machine has, best first: each ISA-L library found, then numpy (for tests and benches:
    each must give the same bytes)."""
    found: list[Backend] = []
    for library in library_candidates():
        try:
            found.append(IsalBackend(library))
        except (OSError, AttributeError):
            continue
    numpy = _numpy()
    if numpy is not None:
        found.append(numpy)
    return found


class ParityCode:
    """The code of one parity group: ``k`` data columns (1 ... 251) and ``m`` parity rows (0 ... 6).

    Blocks are equal-size buffers (bytes, bytearray, memoryview); the blocks given are only read, the blocks
    returned are new bytearrays, and ``accumulate`` writes into the parity blocks it is handed."""

    def __init__(self, k: int, m: int, backend: Backend | None = None) -> None:
        check_shape(k, m)
        self.k = k
        self.m = m
        self.backend = backend if backend is not None else load_backend()

    def _rows(self, rows: Sequence[int] | None) -> tuple[int, ...]:
        chosen = tuple(range(self.m)) if rows is None else tuple(rows)
        if len(set(chosen)) != len(chosen) or any(not 0 <= row < self.m for row in chosen):
            raise ValueError(f"parity rows {list(chosen)} are not distinct rows of 0 ... {self.m - 1}")
        return chosen

    @staticmethod
    def _size(blocks: Sequence[Block]) -> int:
        sizes = {memoryview(block).nbytes for block in blocks}
        if len(sizes) > 1:
            raise ValueError(f"every block must have the same size, not {sorted(sizes)}")
        return sizes.pop() if sizes else 0

    def encode(self, data: Sequence[Block], rows: Sequence[int] | None = None) -> list[bytearray]:
        """The parity blocks of ``rows`` (default: all m, in order) over the k data blocks of one stripe."""
        outputs = [bytearray(self._size(data)) for _ in self._rows(rows)]
        self.encode_into(data, outputs, rows)
        return outputs

    def encode_into(self, data: Sequence[Block], out: Sequence[Output], rows: Sequence[int] | None = None) -> None:
        """``encode`` into blocks the caller keeps (one per row, the data blocks' size, overwritten): a writer
        reusing its buffers stripe after stripe saves allocating and zeroing fresh memory for every stripe."""
        if len(data) != self.k:
            raise ValueError(f"a stripe of this group has {self.k} data blocks, not {len(data)}")
        chosen = self._rows(rows)
        if len(out) != len(chosen):
            raise ValueError(f"{len(chosen)} parity rows need as many output blocks, not {len(out)}")
        self._size([*data, *out])
        if chosen:
            self.backend.multiply(encode_matrix(self.k, chosen), data, out)

    def accumulate(
        self, parity: Sequence[Output], column: int, block: Block, rows: Sequence[int] | None = None
    ) -> None:
        """Add data column ``column``'s block into the parity blocks of ``rows`` (default: all m, in order):
        P_j ^= A[j][column]·block. Starting from zero blocks and adding every column once gives ``encode``'s
        parity, in any order; adding a column twice takes it out again."""
        if not 0 <= column < self.k:
            raise ValueError(f"data column {column} is outside 0 ... {self.k - 1}")
        chosen = self._rows(rows)
        if len(parity) != len(chosen):
            raise ValueError(f"{len(chosen)} parity rows need as many parity blocks, not {len(parity)}")
        self._size([*parity, block])
        self.backend.multiply_add(tuple(MATRIX[row][column] for row in chosen), block, parity)

    def lost(self, columns: Iterable[int]) -> tuple[int, ...]:
        """The columns of 0 ... k-1 not among ``columns`` (the surviving ones), in increasing order."""
        surviving = set(columns)
        for column in surviving:
            if not 0 <= column < self.k:
                raise ValueError(f"data column {column} is outside 0 ... {self.k - 1}")
        return tuple(c for c in range(self.k) if c not in surviving)

    def reconstruct(self, columns: Mapping[int, Block], rows: Mapping[int, Block]) -> dict[int, bytearray]:
        """The lost data blocks of one stripe: every column of 0 ... k-1 not in ``columns``, solved from the
        surviving data blocks ``columns`` and the surviving parity blocks ``rows`` (both by column or row number),
        using the lowest surviving rows. NotRecoverable when fewer rows survive than columns were lost."""
        size = self._size([*columns.values(), *rows.values()])
        out = {column: bytearray(size) for column in self.lost(columns)}
        self.reconstruct_into(columns, rows, out)
        return out

    def reconstruct_into(
        self, columns: Mapping[int, Block], rows: Mapping[int, Block], out: Mapping[int, Output]
    ) -> None:
        """``reconstruct`` into blocks the caller keeps: ``out`` has one block for each lost column (``lost``)."""
        self._rows(list(rows))
        lost = self.lost(columns)
        if sorted(out) != list(lost):
            raise ValueError(f"the lost columns are {list(lost)}, not the output blocks' {sorted(out)}")
        if not lost:
            return
        if len(lost) > len(rows):
            raise NotRecoverable(
                f"{len(lost)} data blocks of the stripe are lost and only {len(rows)} parity blocks survive: "
                f"columns {', '.join(str(c) for c in lost)} cannot be rebuilt"
            )
        chosen = tuple(sorted(rows)[: len(lost)])
        inputs, coefficients = decode_matrix(self.k, lost, chosen)
        blocks = [columns[i] if i < self.k else rows[i - self.k] for i in inputs]
        outputs = [out[column] for column in lost]
        self._size([*blocks, *outputs])
        self.backend.multiply(coefficients, blocks, outputs)
