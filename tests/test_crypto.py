"""crypto/: the chunk transform of docs/format.md 19.8.2 (seal, open, what binds a chunk to its place, nonces that
cannot repeat) and the shipment identity's wrapped copies of 19.8.1 (age files, by pyrage and by the `age` CLI)."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.crypto import aead
from sneakernet.crypto.aead import KeyDrawer, SegmentKey, SegmentOpener, SegmentPlace
from sneakernet.errors import AuthenticationFailed, CryptoError, ExitCode, FormatError

SHIPMENT = "0123456789abcdef0123456789abcdef"
OTHER_SHIPMENT = "fedcba9876543210fedcba9876543210"
PLACE = SegmentPlace(SHIPMENT, drive=1, segment=1)


def sealed_segment(frames: list[bytes], place: SegmentPlace = PLACE, first_id: int = 0):
    """Seal ``frames`` as one segment's chunks, back to back: (sealer, [(chunk_id, offset, raw_size, stored)])."""
    sealer = KeyDrawer().new_segment(place)
    chunks = []
    offset = 0
    for n, frame in enumerate(frames):
        stored = sealer.seal(frame, chunk_id=first_id + n, offset=offset, raw_size=len(frame) * 3)
        chunks.append((first_id + n, offset, len(frame) * 3, stored))
        offset += len(stored)
    return sealer, chunks


def test_associated_data_is_63_bytes_laid_out_as_documented() -> None:
    ad = aead.associated_data(SHIPMENT, 2, 7, 0x0102030405060708, 0x1122334455667788, 0xAABBCCDD)
    assert len(ad) == aead.AD_SIZE == 63
    assert ad == (
        b"sneakernet-chunk-v2"
        + bytes.fromhex(SHIPMENT)
        + (2).to_bytes(4, "little")
        + (7).to_bytes(4, "little")
        + bytes.fromhex("0807060504030201")
        + bytes.fromhex("8877665544332211")
        + bytes.fromhex("ddccbbaa")
    )
    assert aead.nonce(0) == bytes(12)
    assert aead.nonce(1) == b"\x01" + bytes(11)
    assert aead.nonce(258) == b"\x02\x01" + bytes(10)


@pytest.mark.parametrize(
    ("field", "args"),
    [
        ("shipment id", ("0123", 1, 1, 0, 0, 0)),
        ("shipment id", (SHIPMENT.upper(), 1, 1, 0, 0, 0)),
        ("drive", (SHIPMENT, 1 << 32, 1, 0, 0, 0)),
        ("segment", (SHIPMENT, 1, -1, 0, 0, 0)),
        ("chunk id", (SHIPMENT, 1, 1, 1 << 64, 0, 0)),
        ("offset", (SHIPMENT, 1, 1, 0, 1 << 64, 0)),
        ("raw_size", (SHIPMENT, 1, 1, 0, 0, 1 << 32)),
    ],
)
def test_associated_data_refuses_a_value_out_of_its_field(
    field: str, args: tuple[str, int, int, int, int, int]
) -> None:
    with pytest.raises(FormatError, match=field):
        aead.associated_data(*args)


@settings(max_examples=40, deadline=None)
@given(frames=st.lists(st.binary(max_size=300), min_size=1, max_size=6), drive=st.integers(0, 2**32 - 1))
def test_seal_then_open_gives_each_frame_back(frames: list[bytes], drive: int) -> None:
    place = SegmentPlace(SHIPMENT, drive=drive, segment=3)
    sealer, chunks = sealed_segment(frames, place, first_id=10)
    assert sealer.sealed == len(frames)
    opener = SegmentOpener(SegmentKey.from_hex(sealer.key.hex()), place)
    for index, ((chunk_id, offset, raw_size, stored), frame) in enumerate(zip(chunks, frames, strict=True)):
        assert len(stored) == len(frame) + aead.TAG_SIZE
        assert opener.open(stored, index=index, chunk_id=chunk_id, offset=offset, raw_size=raw_size) == frame
    # in any order, from a memoryview too
    chunk_id, offset, raw_size, stored = chunks[-1]
    got = opener.open(memoryview(stored), index=len(chunks) - 1, chunk_id=chunk_id, offset=offset, raw_size=raw_size)
    assert got == frames[-1]


def test_every_flipped_byte_fails_authentication() -> None:
    sealer, [(chunk_id, offset, raw_size, stored)] = sealed_segment([b"a frame of some bytes"])
    opener = SegmentOpener(sealer.key, PLACE)
    for position, bit in itertools.product(range(len(stored)), (0x01, 0x80)):
        damaged = bytearray(stored)
        damaged[position] ^= bit
        with pytest.raises(AuthenticationFailed, match=f"chunk {chunk_id} .*authentication failed"):
            opener.open(bytes(damaged), index=0, chunk_id=chunk_id, offset=offset, raw_size=raw_size)
    for cut in (stored[:-1], stored[1:], stored[:15], b""):
        with pytest.raises(AuthenticationFailed):
            opener.open(cut, index=0, chunk_id=chunk_id, offset=offset, raw_size=raw_size)


def test_a_chunk_anywhere_but_its_place_fails_authentication() -> None:
    """Swapped chunks of equal size, a chunk moved to another index, offset, segment, drive or shipment, another
    chunk id, a raw_size the index lies about, another segment's key: each changes the key, nonce or associated
    data."""
    sealer, chunks = sealed_segment([b"first frame!", b"other frame!"])  # equal sizes
    (id0, off0, raw0, stored0), (id1, off1, raw1, stored1) = chunks
    opener = SegmentOpener(sealer.key, PLACE)
    assert opener.open(stored1, index=1, chunk_id=id1, offset=off1, raw_size=raw1) == b"other frame!"
    wrong = [
        (opener, stored1, {"index": 0, "chunk_id": id0, "offset": off0, "raw_size": raw0}),  # swapped into 0's place
        (opener, stored0, {"index": 1, "chunk_id": id1, "offset": off1, "raw_size": raw1}),  # and 0 into 1's
        (opener, stored0, {"index": 1, "chunk_id": id0, "offset": off0, "raw_size": raw0}),  # other index
        (opener, stored0, {"index": 0, "chunk_id": id0, "offset": off0 + 1, "raw_size": raw0}),  # other offset
        (opener, stored0, {"index": 0, "chunk_id": id0 + 5, "offset": off0, "raw_size": raw0}),  # other chunk id
        (opener, stored0, {"index": 0, "chunk_id": id0, "offset": off0, "raw_size": raw0 + 1}),  # lying raw_size
    ]
    for place in (
        SegmentPlace(SHIPMENT, drive=1, segment=2),  # another segment
        SegmentPlace(SHIPMENT, drive=2, segment=1),  # another drive
        SegmentPlace(OTHER_SHIPMENT, drive=1, segment=1),  # another shipment
    ):
        wrong.append(
            (SegmentOpener(sealer.key, place), stored0, {"index": 0, "chunk_id": id0, "offset": off0, "raw_size": raw0})
        )
    other_key = KeyDrawer().new_segment(PLACE).key  # same place, another segment file's key
    wrong.append(
        (SegmentOpener(other_key, PLACE), stored0, {"index": 0, "chunk_id": id0, "offset": off0, "raw_size": raw0})
    )
    for case, (any_opener, stored, where) in enumerate(wrong):
        with pytest.raises(AuthenticationFailed):
            any_opener.open(stored, **where)
            pytest.fail(f"case {case} opened")


def test_a_sealer_numbers_its_chunks_and_refuses_to_go_back() -> None:
    sealer = KeyDrawer().new_segment(PLACE)
    first = sealer.seal(b"x" * 10, chunk_id=0, offset=0, raw_size=10)
    with pytest.raises(ValueError, match="overlaps or precedes"):
        sealer.seal(b"y" * 10, chunk_id=1, offset=len(first) - 1, raw_size=10)
    assert sealer.sealed == 1
    second = sealer.seal(b"x" * 10, chunk_id=0, offset=len(first) + 100, raw_size=10)
    assert second != first  # the same frame at the next index: another nonce, other bytes
    opener = SegmentOpener(sealer.key, PLACE)
    assert opener.open(second, index=1, chunk_id=0, offset=len(first) + 100, raw_size=10) == b"x" * 10


def test_the_drawer_never_hands_out_one_key_twice() -> None:
    keys = [KeyDrawer().new_segment(PLACE).key for _ in range(3)]
    assert len({key.secret for key in keys}) == 3
    draws = iter([b"A" * 32, b"A" * 32, b"B" * 32, b"A" * 32, b"A" * 32, b"A" * 32])
    drawer = KeyDrawer(random=lambda n: next(draws))
    assert drawer.new_segment(PLACE).key.secret == b"A" * 32
    assert drawer.new_segment(PLACE).key.secret == b"B" * 32  # the repeated A was drawn again
    with pytest.raises(CryptoError, match="gave before, 3 times: it is broken"):
        drawer.new_segment(PLACE)
    with pytest.raises(CryptoError, match="gave 31 bytes"):
        KeyDrawer(random=lambda n: bytes(31)).new_segment(PLACE)


def test_no_key_in_any_repr_str_or_error() -> None:
    sealer, [(chunk_id, offset, raw_size, stored)] = sealed_segment([b"frame"])
    secret = sealer.key.hex()
    opener = SegmentOpener(sealer.key, PLACE)
    texts = [repr(sealer), repr(sealer.key), str(sealer.key), repr(opener), repr(KeyDrawer())]
    for call in (
        lambda: opener.open(stored[:-1] + b"!", index=0, chunk_id=chunk_id, offset=offset, raw_size=raw_size),
        lambda: SegmentKey.from_hex(secret[:-1] + "g"),
        lambda: SegmentKey.from_hex(secret.upper()),
        lambda: SegmentKey(sealer.key.secret[:-1]),
    ):
        with pytest.raises((FormatError, CryptoError)) as caught:
            call()
        texts += [str(caught.value), repr(caught.value)]
    for text in texts:
        assert secret not in text.lower()
        assert secret[:16] not in text.lower()
        assert repr(sealer.key.secret) not in text


def test_errors_are_the_projects_with_their_exit_codes() -> None:
    assert AuthenticationFailed("x").exit_code == ExitCode.PROBLEMS  # damaged bytes: a data problem
    assert CryptoError("x").exit_code == ExitCode.USAGE  # a wrong key, a weak file: one line, exit 2
    assert issubclass(AuthenticationFailed, FormatError)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed (Debian package openssl)")
def test_openssl_decrypts_a_sealed_chunk_by_hand_as_documented(tmp_path) -> None:
    """docs/format.md 19.8.6: drop the tag, `openssl enc -d -chacha20` with the IV = block counter 1 (`01000000`)
    then the nonce (the chunk's index in its segment, little endian) gives the frame back."""
    frames = [b"the first frame " * 7, b"the second frame, which we recover by hand " * 5]
    sealer, chunks = sealed_segment(frames)
    for index, (_, _, _, stored) in enumerate(chunks):
        iv = "01000000" + aead.nonce(index).hex()
        (tmp_path / "chunk.enc").write_bytes(stored)
        run = subprocess.run(
            f"head -c -16 chunk.enc | openssl enc -d -chacha20 -K {sealer.key.hex()} -iv {iv}",
            shell=True,
            cwd=tmp_path,
            capture_output=True,
            check=True,
        )
        assert run.stdout == frames[index]
