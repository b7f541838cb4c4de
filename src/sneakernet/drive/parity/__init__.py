"""The drive layer's parity side (docs/format.md 19.7): the files of a parity drive and the drives parity gives back.

``writer.py`` writes a parity drive (its segments of parity rows, manifest, covered copies, catalog, B3SUMS,
drive.json), ``reader.py`` reads one, ``accumulator.py`` adds a data drive's stored bytes into parity rows as they are
written (pack --parity's same pass), ``chunkindex.py`` says which chunks lie over a range of a drive's stored stream,
``rebuilder.py`` rebuilds a lost drive's chunks from the others and parity, each checked before use, ``lost.py``
reads a lost drive through its parity group, ``rebuild.py`` and ``reparity.py`` write a data or a parity drive back,
and ``recover.py`` is what ``sneakernet rebuild`` and ``repair`` call. The math is in ``sneakernet.parity`` (no I/O).

Nothing is imported here: reading a plain drive, or a parity drive, loads only the modules it uses.
"""
