"""pack --parity onto data drives written at once: the parity drives written while the data drives are.

Parity block *s* of a row is final once every data drive of the group has added its bytes past that block into the
rows (a drive shorter than the block counts as zeros there). With lanes, each lane's first drive is a column
(drive numbers 1 ... L) and the accumulator's ``fed.pos`` says how far each column is added, so a thread of the
packing process (:class:`ParityAhead`) writes the blocks below the slowest lane's count to the parity drives as the
lanes go on, instead of all of them once the data drives are done: the parity drive, written at the speed of a
drive, no longer follows the data drives' writing (what bench/pack_parity.py --rate measures).

Nothing here is trusted: a drive opened later (a lane's second drive, column L + 1 ...) adds from its stream's start
into blocks already written. The thread stops writing as soon as it sees one, and once every data drive is finished
and the rows sealed, each block written ahead is checked against its sealed digest
(:meth:`~sneakernet.drive.parity.writer.ParityDriveWriter.begin`); a parity drive with one that differs is written
again from the start (packer/parity.py's group pass), so the result is always the drive ``sneakernet parity``
writes.
"""

from __future__ import annotations

import logging
import os
import threading

from ..drive.parity.accumulator import AHEAD_NAME, FINISHED, ParityAccumulator
from ..drive.parity.writer import ParityDriveWriter
from ..format import parity_label
from .same_pass import SamePassParity

log = logging.getLogger(__name__)

#: Seconds between two looks at how far the lanes are: a 4 MiB block at a drive's 40-250 MB/s takes 16-100 ms.
POLL = 0.05


class ParityAhead:
    """The parity drives of ``parity`` written ahead, block after block, while ``lanes`` lanes write their first
    drives (:meth:`start` once the lanes are started, then :meth:`stop`)."""

    def __init__(self, parity: SamePassParity, lanes: int) -> None:
        self.parity = parity
        self.lanes = lanes
        self.writers: list[ParityDriveWriter] = []
        self._failed: BaseException | None = None
        self._given_up = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def fits(parity: SamePassParity, lanes: int) -> bool:
        """Whether ``parity`` can be written ahead: added up by ``lanes`` (> 1) lanes in one group, and not a
        resumed pack's (computed from the drives at the end) nor a swapped one's (one dock: no parity drive in)."""
        return lanes > 1 and not parity.recompute and not parity.swap

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sneakernet-parity-ahead", daemon=True)
        self._thread.start()

    def stop(self) -> list[ParityDriveWriter] | None:
        """Stop writing ahead; the writers to go on with, by row (None: the parity drives are written from the
        start, as without this: the lanes' drives outgrew their first ones, or writing ahead failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._failed is None and not self._given_up and len(self.writers) == self.parity.spec.rows:
            log.info("parity written ahead: %d blocks per parity drive", self.writers[0].stripes)
            return self.writers
        if self._failed is not None:  # written again from the start at the end, where its error is told
            log.info("writing the parity ahead stopped: %s", self._failed)
        self.abort()
        return None

    def abort(self) -> None:
        """Stop and leave the parity drives unfinished (the pack stopped)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        for writer in self.writers:
            writer.abort()
        self.writers = []

    def _run(self) -> None:
        spec = self.parity.spec
        accumulator = ParityAccumulator(spec, adding=False)
        try:
            for row, target in enumerate(self.parity.targets):
                scratch = os.path.join(spec.path, AHEAD_NAME.format(row=row))
                segment_size = self.parity.options.segment_size
                self.writers.append(
                    ParityDriveWriter.ahead(target, parity_label(row + 1), spec.block_size, segment_size, scratch)
                )
            buffer = memoryview(bytearray(spec.block_size))
            written = 0
            while not self._stop.wait(POLL):
                fed = accumulator.fed()
                if any(fed[self.lanes :]):  # a drive past the lanes' first: it adds into the blocks written
                    log.info("parity not written ahead past block %d: a lane went on to another drive", written)
                    self._given_up = True
                    return
                writing = [count for count in fed[: self.lanes] if count != FINISHED]
                final = min(writing) // spec.block_size if writing else written
                while written < final and not self._stop.is_set():
                    for row, writer in enumerate(self.writers):
                        writer.write(accumulator.block(row, written, buffer))
                    written += 1
        except BaseException as exc:  # told by stop(); the parity drives are then written at the end
            self._failed = exc
        finally:
            accumulator.close()


__all__ = ["ParityAhead"]
