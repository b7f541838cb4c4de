"""Test-only (tests/test_encrypt_resume.py puts this directory on PYTHONPATH): when SNEAKERNET_NONCE_LOG names a
file, every (segment key, nonce) pair any process of a pack seals a chunk with is appended there as a line, the
key's BLAKE3 and the nonce. A lane's process starts from a fork server, which imports this at its start-up too, so
the record covers every lane, and a pack killed mid-way leaves every pair it used (each line one O_APPEND write)."""

import os

_LOG = os.environ.get("SNEAKERNET_NONCE_LOG")

if _LOG:
    import blake3

    from sneakernet.crypto import aead

    _sealed_next = aead.SegmentSealer._next

    def _logged_next(self, chunk_id, offset, raw_size, size):  # type: ignore[no-untyped-def]
        nonce, ad = _sealed_next(self, chunk_id, offset, raw_size, size)
        line = f"{blake3.blake3(self.key.secret).hexdigest()} {int.from_bytes(nonce, 'little')}\n"
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
        return nonce, ad

    aead.SegmentSealer._next = _logged_next
