"""Encrypted shipments' pure layer (issue 16, docs/format.md 19.8): the chunk transform and its keys (aead.py),
the shipment identity and its wrapped copies in the age format (keys.py). Bytes in, bytes out: no file I/O here;
the drive writer and readers own the files. Needs the ``crypt`` extra (cryptography, pyrage)."""
