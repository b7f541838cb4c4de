"""The numpy backend: the fallback when ISA-L is not installed (``pip install 'sneakernet[parity-numpy]'``).

Bit-identical to ISA-L (the same field, the same matrices) but about fifty times slower (issue 15 measured 0.28 GB/s
of data per core encoding 10 + 3): each coefficient times a block is a lookup of every byte in that coefficient's
row of the 256 x 256 multiplication table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .isal import Block, Output
from .matrix import EXP, LOG, Matrix


def _product_table() -> npt.NDArray[np.uint8]:
    table = np.zeros((256, 256), dtype=np.uint8)
    logs = np.array(LOG, dtype=np.int64)
    exp = np.array(EXP, dtype=np.uint8)
    for a in range(1, 256):
        table[a, 1:] = exp[LOG[a] + logs[1:]]
    return table


class NumpyBackend:
    """Matrix times blocks with numpy's table lookups."""

    name = "numpy"

    def __init__(self) -> None:
        self._products = _product_table()

    @staticmethod
    def _array(block: Block | Output, size: int | None = None) -> npt.NDArray[np.uint8]:
        array = np.frombuffer(block, dtype=np.uint8)
        if size is not None and array.size != size:
            raise ValueError(f"every block must have the same size: {array.size} bytes, not {size}")
        return array

    def _add_product(
        self,
        coefficient: int,
        source: npt.NDArray[np.uint8],
        target: npt.NDArray[np.uint8],
        scratch: npt.NDArray[np.uint8],
    ) -> None:
        if coefficient == 1:
            np.bitwise_xor(target, source, out=target)
        elif coefficient:
            np.take(self._products[coefficient], source, out=scratch)
            np.bitwise_xor(target, scratch, out=target)

    def multiply(self, coefficients: Matrix, inputs: Sequence[Block], outputs: Sequence[Output]) -> None:
        """outputs[i] = the sum over j of coefficients[i][j] · inputs[j], byte by byte (outputs overwritten)."""
        if not outputs:
            return
        targets = [self._array(output) for output in outputs]
        size = targets[0].size
        sources = [self._array(block, size) for block in inputs]
        scratch = np.empty(size, dtype=np.uint8)
        for row, target in zip(coefficients, targets, strict=True):
            if target.size != size:
                raise ValueError(f"every block must have the same size: {target.size} bytes, not {size}")
            target[:] = 0
            for coefficient, source in zip(row, sources, strict=True):
                self._add_product(coefficient, source, target, scratch)

    def multiply_add(self, coefficients: tuple[int, ...], block: Block, outputs: Sequence[Output]) -> None:
        """outputs[i] ^= coefficients[i] · block, byte by byte (one input added into each output)."""
        if not outputs:
            return
        targets = [self._array(output) for output in outputs]
        size = targets[0].size
        source = self._array(block, size)
        scratch = np.empty(size, dtype=np.uint8)
        for coefficient, target in zip(coefficients, targets, strict=True):
            if target.size != size:
                raise ValueError(f"every block must have the same size: {target.size} bytes, not {size}")
            self._add_product(coefficient, source, target, scratch)
