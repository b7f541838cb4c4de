"""Parity over data drives (issue 15, docs/format.md 19.7): the field and matrix (matrix), the code's operations on
equal-size blocks (engine: encode, accumulate one column, reconstruct lost columns), where the blocks lie (layout:
groups, stripes, the zeros past a short drive's end, a parity drive's segments) and the libraries that do the
per-byte work (isal: ISA-L, tables: numpy's fallback). Pure: it computes on byte buffers it is handed and reads or
writes no file.
"""
