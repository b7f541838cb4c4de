"""The chunk transform of an encrypted shipment (docs/format.md 19.8.2): an AEAD per chunk, AES-256-GCM (what pack
writes unless told otherwise) or ChaCha20-Poly1305 (RFC 8439), as the manifest header's ``cipher`` names it.

A chunk's stored bytes are its version 1 frame sealed with the key of its segment, the 16-byte tag appended. The
nonce is the chunk's index among the chunks of its segment; the associated data binds the chunk to its place (the
shipment, drive, segment, chunk id, offset in the segment and raw size), so a chunk moved or swapped anywhere, or
a sealed index that lies about its raw size, fails authentication.

Why a (key, nonce) pair can never repeat, which is what both ciphers' secrecy rests on (a GCM nonce used twice
gives away the authentication key too):

1. A key that seals comes only from :meth:`KeyDrawer.new_segment`: 32 fresh random bytes, and the drawer refuses
   to hand out a key it handed out before (it keeps a digest of each, never the key).
2. That call returns the one :class:`SegmentSealer` for that key: nothing else can seal with it.
3. The sealer numbers the chunks itself: chunk ``n`` of the segment gets nonce ``n``, counted inside the sealer,
   so a writer cannot pass an index at all, nor seal two chunks at one place (offsets must go forward).
4. A key read back from a sealed index (:meth:`SegmentKey.from_hex`) can only open, never seal: a resumed pack
   that writes a segment again opens a new file and draws a new key (19.8.1), so no key outlives its one file.
5. A key serves one cipher: the sealer's, which the drive's manifest header names; an opener uses the header's.

This module is pure: bytes in, bytes out, no file I/O. No exception text or ``repr`` here holds a key.
"""

from __future__ import annotations

import re
import secrets
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import blake3

from ..errors import AuthenticationFailed, CryptoError, FormatError
from ..format import CIPHER_AES_GCM, CIPHER_CHACHA, CIPHERS, DEFAULT_CIPHER
from ..format import sealed as sealed_records

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
except ImportError as error:  # pragma: no cover - only without the extra
    raise CryptoError(
        "encrypted shipments need the 'crypt' extra: pip install 'sneakernet[crypt]' (cryptography, pyrage)"
    ) from error

#: Each ``cipher`` value of a manifest header (format/names.py's CIPHERS) and the AEAD it names: both take a 32-byte
#: key, a 12-byte nonce and append a 16-byte tag, so everything else here is the same for both.
AEAD = AESGCM | ChaCha20Poly1305
_AEADS: dict[str, type[AESGCM] | type[ChaCha20Poly1305]] = {CIPHER_AES_GCM: AESGCM, CIPHER_CHACHA: ChaCha20Poly1305}
assert tuple(sorted(_AEADS)) == tuple(sorted(CIPHERS))
KEY_SIZE = 32
NONCE_SIZE = 12
#: The tag appended to each chunk (GCM's and Poly1305's alike): ``stored_size`` = frame size + TAG_SIZE.
TAG_SIZE = 16
assert TAG_SIZE == sealed_records.TAG_SIZE
#: The first bytes of every chunk's associated data: a version 2 chunk's, of no other use.
AD_LABEL = b"sneakernet-chunk-v2"
#: label, shipment id (16), drive (uint32), segment (uint32), chunk id (uint64), offset (uint64), raw_size (uint32).
_AD_LAYOUT = struct.Struct(f"<{len(AD_LABEL)}s16sIIQQI")
AD_SIZE = _AD_LAYOUT.size
assert AD_SIZE == 63, AD_SIZE  # docs/format.md 19.8.2 pins it
#: How often a drawer tries again when its random source gives a key it gave before (that never happens with a
#: working source: two 256-bit draws agree with probability 2^-256); past it the source is broken.
_DRAW_ATTEMPTS = 3

_SHIPMENT_ID = re.compile(r"[0-9a-f]{32}")
_KEY_HEX = re.compile(r"[0-9a-f]{64}")


def associated_data(shipment: str, drive: int, segment: int, chunk_id: int, offset: int, raw_size: int) -> bytes:
    """The 63 bytes that bind a chunk to its place (docs/format.md 19.8.2). Raises :class:`FormatError` for a
    value out of its field's range (a hostile or damaged index), naming the field."""
    if not _SHIPMENT_ID.fullmatch(shipment):
        raise FormatError("shipment id is not 32 lowercase hex digits")
    for name, value, bits in (
        ("drive", drive, 32),
        ("segment", segment, 32),
        ("chunk id", chunk_id, 64),
        ("offset", offset, 64),
        ("raw_size", raw_size, 32),
    ):
        if not 0 <= value < 1 << bits:
            raise FormatError(f"chunk {chunk_id}: {name} {value} does not fit the associated data's {bits} bits")
    return _AD_LAYOUT.pack(AD_LABEL, bytes.fromhex(shipment), drive, segment, chunk_id, offset, raw_size)


def nonce(index: int) -> bytes:
    """The nonce of the chunk ``index`` (from 0) of a segment: the index as a 96-bit little-endian integer."""
    if not 0 <= index < 1 << (8 * NONCE_SIZE):
        raise FormatError(f"chunk index {index} does not fit a {NONCE_SIZE}-byte nonce")
    return index.to_bytes(NONCE_SIZE, "little")


def _aead(cipher: str, key: SegmentKey) -> AEAD:
    """The AEAD object of ``cipher`` (a manifest header's ``cipher`` value) keyed with ``key``."""
    kind = _AEADS.get(cipher)
    if kind is None:
        raise FormatError(f"cipher {str(cipher)[:40]!r} is not one of {', '.join(CIPHERS)}, the ones sneakernet reads")
    return kind(key.secret)


@dataclass(frozen=True)
class SegmentKey:
    """The 32-byte key of one segment file. Its ``repr`` and ``str`` hide the key; :meth:`hex` is what the sealed
    index records (``segment_key`` records), :meth:`from_hex` reads it back, for opening only."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_SIZE:
            raise CryptoError(f"a segment key is {KEY_SIZE} bytes, not {len(self.secret)}")

    def __str__(self) -> str:
        return "SegmentKey(<secret>)"

    def hex(self) -> str:
        return self.secret.hex()

    @classmethod
    def from_hex(cls, text: str) -> SegmentKey:
        """A key as the sealed index holds it: 64 lowercase hex digits (the value is never echoed back)."""
        if not _KEY_HEX.fullmatch(text):
            raise FormatError(f"a segment key is {2 * KEY_SIZE} lowercase hex digits; this one is not")
        return cls(bytes.fromhex(text))


@dataclass(frozen=True)
class SegmentPlace:
    """Where a segment sits: its shipment (32 hex digits), drive number and segment number."""

    shipment: str
    drive: int
    segment: int

    def chunk_ad(self, chunk_id: int, offset: int, raw_size: int) -> bytes:
        return associated_data(self.shipment, self.drive, self.segment, chunk_id, offset, raw_size)


class SegmentSealer:
    """Seals the chunks of one segment file with ``cipher``, in the order they are written to it. Made only by
    :meth:`KeyDrawer.new_segment`, one per key; it counts the chunks itself, so each gets its own nonce.

    Not for two threads at once: a segment file is written by one writer, in order (a lock makes a misuse safe,
    not useful)."""

    def __init__(self, key: SegmentKey, place: SegmentPlace, cipher: str) -> None:
        self.key = key
        self.place = place
        self.cipher = cipher
        self._aead = _aead(cipher, key)
        self._count = 0
        self._next_offset = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SegmentSealer({self.place!r}, sealed={self._count})"

    @property
    def sealed(self) -> int:
        """How many chunks this sealer sealed: the next chunk's index (its nonce)."""
        return self._count

    def seal(self, frame: bytes | memoryview, *, chunk_id: int, offset: int, raw_size: int) -> bytes:
        """The stored bytes of the next chunk of the segment: ``frame`` encrypted, the tag appended
        (``len(frame) + TAG_SIZE`` bytes). ``offset`` is where those bytes start in the segment file: at or past
        the end of the chunk sealed before (chunks do not overlap and go forward)."""
        with self._lock:
            chunk_nonce, ad = self._next(chunk_id, offset, raw_size, len(frame) + TAG_SIZE)
            return self._aead.encrypt(chunk_nonce, frame, ad)

    def seal_into(
        self, frame: bytes | memoryview, out: bytearray | memoryview, *, chunk_id: int, offset: int, raw_size: int
    ) -> int:
        """:meth:`seal` into the start of ``out`` (at least ``len(frame) + TAG_SIZE`` bytes), a buffer a writer
        keeps from chunk to chunk: a fresh 4 MiB object per chunk costs more than the cipher (bench/crypto.py).
        Returns how many bytes it wrote."""
        size = len(frame) + TAG_SIZE
        if len(out) < size:
            raise ValueError(f"a buffer of {len(out)} bytes cannot hold a sealed chunk of {size}")
        with self._lock:
            chunk_nonce, ad = self._next(chunk_id, offset, raw_size, size)
            _encrypt_into(self._aead, chunk_nonce, frame, ad, memoryview(out)[:size])
            return size

    def _next(self, chunk_id: int, offset: int, raw_size: int, size: int) -> tuple[bytes, bytes]:
        """The nonce and associated data of the next chunk, counted as sealed (called under the lock)."""
        if offset < self._next_offset:
            raise ValueError(
                f"chunk {chunk_id} at offset {offset} of segment {self.place.segment} overlaps or precedes the "
                f"chunk sealed before it (which ends at {self._next_offset})"
            )
        ad = self.place.chunk_ad(chunk_id, offset, raw_size)
        chunk_nonce = nonce(self._count)
        self._count += 1
        self._next_offset = offset + size
        return chunk_nonce, ad


class SegmentOpener:
    """Opens the chunks of one segment with its key (read from the sealed index) and the ``cipher`` its drive's
    manifest header names: any chunk, in any order."""

    def __init__(self, key: SegmentKey, place: SegmentPlace, cipher: str) -> None:
        self.place = place
        self.cipher = cipher
        self._aead = _aead(cipher, key)

    def __repr__(self) -> str:
        return f"SegmentOpener({self.place!r})"

    def open(self, stored: bytes | memoryview, *, index: int, chunk_id: int, offset: int, raw_size: int) -> bytes:
        """The frame of the chunk whose stored bytes are ``stored``, the ``index``-th chunk of the segment (its
        place among the segment's chunk records, from 0). Raises :class:`AuthenticationFailed` when the tag does
        not match: damaged bytes, a chunk from elsewhere, or a wrong index, ``raw_size`` or key."""
        where = f"chunk {chunk_id} (segment {self.place.segment}, drive {self.place.drive})"
        if len(stored) < TAG_SIZE:
            raise AuthenticationFailed(f"{where}: {len(stored)} stored bytes cannot hold its {TAG_SIZE}-byte tag")
        ad = self.place.chunk_ad(chunk_id, offset, raw_size)
        try:
            return self._aead.decrypt(nonce(index), stored, ad)
        except InvalidTag:
            raise AuthenticationFailed(
                f"{where}: authentication failed: the bytes are damaged, come from another chunk, segment, drive or "
                "shipment, or the index describing them is wrong"
            ) from None


def _encrypt_into(aead: AEAD, nonce: bytes, frame: bytes | memoryview, ad: bytes, out: memoryview) -> None:
    if hasattr(aead, "encrypt_into"):  # cryptography 45 and later
        aead.encrypt_into(nonce, frame, ad, out)
    else:  # pragma: no cover - older cryptography
        out[:] = aead.encrypt(nonce, frame, ad)


class KeyDrawer:
    """Draws the segment keys of a pack: each :meth:`new_segment` call returns a sealer of ``cipher`` with a fresh
    key, never one handed out before by this drawer (it keeps a BLAKE3 digest of each key, not the key). Safe for
    several drive writers at once. ``random`` (n -> n random bytes) is the seam tests use; it is
    ``secrets.token_bytes``."""

    def __init__(self, random: Callable[[int], bytes] = secrets.token_bytes, cipher: str = DEFAULT_CIPHER) -> None:
        if cipher not in CIPHERS:
            raise CryptoError(f"cipher {str(cipher)[:40]!r} is not one of {', '.join(CIPHERS)}")
        self.cipher = cipher
        self._random = random
        self._drawn: set[bytes] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyDrawer(drawn={len(self._drawn)})"

    def new_segment(self, place: SegmentPlace) -> SegmentSealer:
        """The sealer of a segment file opened for writing at ``place``, with a key drawn for it alone."""
        with self._lock:
            for _ in range(_DRAW_ATTEMPTS):
                secret = self._random(KEY_SIZE)
                if len(secret) != KEY_SIZE:
                    raise CryptoError(f"the random source gave {len(secret)} bytes for a {KEY_SIZE}-byte key")
                digest = blake3.blake3(secret).digest()
                if digest not in self._drawn:
                    self._drawn.add(digest)
                    return SegmentSealer(SegmentKey(secret), place, self.cipher)
            raise CryptoError(
                f"the random source gave a segment key it gave before, {_DRAW_ATTEMPTS} times: it is broken; "
                "refusing to seal with it"
            )


class SegmentKeys:
    """The segment keys of one drive, read from its sealed index, by segment number: what opens its chunks with the
    cipher its manifest header names (:meth:`opener`). Its ``repr`` counts the keys and shows none."""

    def __init__(self, shipment: str, drive: int) -> None:
        self.shipment = shipment
        self.drive = drive
        self._keys: dict[int, SegmentKey] = {}
        self._openers: dict[int, SegmentOpener] = {}

    def __repr__(self) -> str:
        return f"SegmentKeys(drive={self.drive}, keys={len(self._openers)})"

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, segment: int, key: SegmentKey) -> None:
        """Record segment ``segment``'s key; a second key for one segment is a FormatError (a damaged index)."""
        if segment in self._keys:
            raise FormatError(f"the sealed index gives segment {segment} two keys")
        self._keys[segment] = key

    def opener(self, segment: int, cipher: str) -> SegmentOpener:
        """The opener of segment ``segment``'s chunks with ``cipher`` (the manifest header's), made once."""
        opener = self._openers.get(segment)
        if opener is not None and opener.cipher == cipher:
            return opener
        key = self._keys.get(segment)
        if key is None:
            raise FormatError(f"the sealed index gives no key for segment {segment}")
        opener = self._openers[segment] = SegmentOpener(key, SegmentPlace(self.shipment, self.drive, segment), cipher)
        return opener
