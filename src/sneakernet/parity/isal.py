"""The ISA-L backend: Intel's Intelligent Storage Acceleration Library's erasure code (``ec_init_tables``,
``ec_encode_data``, ``ec_encode_data_update``), called through ctypes on the caller's buffers, with no copy.

ISA-L multiplies a matrix of GF(2^8) coefficients by a list of equal-size blocks with SIMD code chosen for the
processor at run time (about 14 GB/s of data per core for 10 data and 3 parity blocks on the machine issue 15 was
measured on), in the field of docs/format.md 19.7.3, so any matrix this package works out (the encode rows, a decode
matrix) runs through it unchanged. The library comes from the system (Debian and Ubuntu: ``libisal2``) or, with
``pip install 'sneakernet[parity]'``, from the copy that pyeclib's Linux wheels carry (``pyeclib.libs/``); the
system's copy is preferred when both are there. ctypes releases the GIL for each call, so threads encode in parallel.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from .matrix import Matrix

#: A block the backends read: any contiguous buffer (bytes, bytearray, memoryview, mmap).
Block = bytes | bytearray | memoryview
#: A block the backends write into: a writable contiguous buffer of the blocks' size.
Output = bytearray | memoryview

_PyBUF_SIMPLE = 0
_PyBUF_WRITABLE = 1


class _PyBuffer(ctypes.Structure):
    """CPython's Py_buffer, to reach a buffer's bytes without copying them (ctypes' from_buffer wants a writable
    one). ``obj`` is kept as a plain pointer: PyObject_GetBuffer takes the reference and PyBuffer_Release drops it."""

    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = (ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int)
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = (ctypes.POINTER(_PyBuffer),)
_release_buffer.restype = None


@contextmanager
def _address(block: Any, writable: bool) -> Iterator[tuple[int, int]]:
    """The address and length of a contiguous buffer's bytes, held (not movable, not resizable) until exit."""
    view = _PyBuffer()
    _get_buffer(block, ctypes.byref(view), _PyBUF_WRITABLE if writable else _PyBUF_SIMPLE)
    try:
        yield view.buf or 0, view.len
    finally:
        _release_buffer(ctypes.byref(view))


def _pointers(stack: ExitStack, blocks: Sequence[Any], writable: bool, size: int) -> Any:
    array = (ctypes.c_void_p * max(len(blocks), 1))()
    for i, block in enumerate(blocks):
        address, length = stack.enter_context(_address(block, writable))
        if length != size:
            raise ValueError(f"every block must have the same size: {length} bytes, not {size}")
        array[i] = address
    return array


def library_candidates() -> list[str]:
    """The ISA-L libraries this machine has, best first: the system's, then the one pyeclib's wheel carries."""
    # Imported here, when parity is computed: ctypes.util loads subprocess and importlib.metadata the packaging
    # machinery (email, zipfile, sockets), a fifth of restore's start-up otherwise.
    import ctypes.util
    import importlib.metadata

    found: list[str] = []
    system = ctypes.util.find_library("isal")
    found.append(system or "libisal.so.2")
    try:
        files = importlib.metadata.distribution("pyeclib").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        name = file.name
        if file.parent.name == "pyeclib.libs" and name.startswith("libisal") and ".so" in name:
            found.append(str(file.locate()))
    return found


class IsalBackend:
    """Matrix times blocks with ISA-L. Built from a loadable library (``library_candidates()``); OSError or
    AttributeError if it is not there or lacks the erasure code."""

    def __init__(self, library: str) -> None:
        lib = ctypes.CDLL(library)
        self.library = library
        self.name = f"isa-l ({library})"
        self._init_tables = lib.ec_init_tables
        self._init_tables.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
        self._init_tables.restype = None
        self._encode = lib.ec_encode_data  # (len, k, rows, tables, data**, coding**)
        self._encode.argtypes = (ctypes.c_int,) * 3 + (ctypes.c_void_p,) * 3
        self._encode.restype = None
        self._update = lib.ec_encode_data_update  # (len, k, rows, vec_i, tables, data*, coding**)
        self._update.argtypes = (ctypes.c_int,) * 4 + (ctypes.c_void_p,) * 3
        self._update.restype = None
        self._tables: dict[Matrix, Any] = {}

    def _tables_for(self, coefficients: Matrix) -> Any:
        """ISA-L's expanded tables (32 bytes a coefficient) for a rows x inputs matrix, made once per matrix."""
        tables = self._tables.get(coefficients)
        if tables is None:
            rows, inputs = len(coefficients), len(coefficients[0])
            tables = ctypes.create_string_buffer(32 * rows * inputs)
            flat = bytes(value for row in coefficients for value in row)
            self._init_tables(inputs, rows, flat, tables)
            if len(self._tables) >= 256:
                self._tables.clear()
            self._tables[coefficients] = tables
        return tables

    def multiply(self, coefficients: Matrix, inputs: Sequence[Block], outputs: Sequence[Output]) -> None:
        """outputs[i] = the sum over j of coefficients[i][j] · inputs[j], byte by byte (outputs overwritten)."""
        if not outputs:
            return
        size = len(memoryview(outputs[0]).cast("B"))
        tables = self._tables_for(coefficients)
        with ExitStack() as stack:
            sources = _pointers(stack, inputs, False, size)
            targets = _pointers(stack, outputs, True, size)
            if size:
                self._encode(size, len(inputs), len(outputs), tables, sources, targets)

    def multiply_add(self, coefficients: tuple[int, ...], block: Block, outputs: Sequence[Output]) -> None:
        """outputs[i] ^= coefficients[i] · block, byte by byte (one input added into each output)."""
        if not outputs:
            return
        size = len(memoryview(outputs[0]).cast("B"))
        tables = self._tables_for(tuple((value,) for value in coefficients))
        with ExitStack() as stack:
            (address, length) = stack.enter_context(_address(block, False))
            if length != size:
                raise ValueError(f"every block must have the same size: {length} bytes, not {size}")
            targets = _pointers(stack, outputs, True, size)
            if size:
                self._update(size, 1, len(outputs), 0, tables, address, targets)
