"""An encrypted drive's parts (docs/format.md 19.8): sealed record files (drive/sealed.py), the keys/ files
(drive/keys.py), the drive writer sealing chunks and splitting its records (public manifest, sealed index), and
reading them back merged (drive/index.py) through the codec chain's encryption step (chunks/codec.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import blake3
import pytest

from sneakernet.chunks.codec import ChunkCodec
from sneakernet.chunks.pipeline import encode
from sneakernet.chunks.stream import RawChunk, Slice
from sneakernet.crypto.aead import SegmentKeys
from sneakernet.crypto.keys import ShipmentIdentity, parse_recipient
from sneakernet.drive import DriveReader, DriveWriter
from sneakernet.drive.files import holds_shipment
from sneakernet.drive.index import IndexMerge
from sneakernet.drive.keys import Unlock, unlock, wrap_keys, write_keys
from sneakernet.drive.sealed import SealedReader, SealedWriter, ShipmentSealing, sealed_problems
from sneakernet.errors import (
    AuthenticationFailed,
    CryptoError,
    ExitCode,
    FormatError,
    IntegrityError,
    UnfinishedDrive,
    UsageError,
    WrongKey,
)
from sneakernet.format import (
    CIPHER_CHACHA,
    CIPHERS,
    DEFAULT_CIPHER,
    INDEX_NAME,
    MANIFEST_NAME,
    PASSPHRASE_NAME,
    READERS,
    RECIPIENTS_NAME,
    ChunkRecord,
    DirRecord,
    EndRecord,
    FileRecord,
    ManifestHeader,
    Metadata,
    SealedRecord,
    SegmentRecord,
    manifest_record_from_json,
)
from sneakernet.format.container import read_records
from sneakernet.format.sealed import OpenableChunk, PublicChunk, public_record_from_json
from sneakernet.io.store import LocalStore

SHIPMENT = "0123456789abcdef0123456789abcdef"
META = Metadata(0o644, 1_700_000_000_000_000_000, 1000, 1000)
HAVE_AGE = shutil.which("age") is not None
#: The drive tests that seal and open chunks run with each cipher a manifest header may name (19.8.2).
each_cipher = pytest.mark.parametrize("cipher", CIPHERS)


@pytest.fixture(scope="module")
def receiver() -> ShipmentIdentity:
    """The receiver's own age identity (its public side is what pack's --encrypt-to names)."""
    return ShipmentIdentity.generate()


@pytest.fixture(scope="module")
def keys(receiver: ShipmentIdentity):
    return wrap_keys([parse_recipient(receiver.recipient)], None)


# --- sealed record files ----------------------------------------------------------------------------------------


def records_of(count: int) -> list[dict[str, Any]]:
    return [{"type": "file", "path": f"secret-dir/name-{n:06d}.txt", "n": n} for n in range(count)]


def test_a_sealed_file_round_trips_and_shows_no_plaintext(tmp_path: Path) -> None:
    identity = ShipmentIdentity.generate()
    writer = SealedWriter(LocalStore(tmp_path), INDEX_NAME, identity)
    for record in records_of(30_000):
        writer.write(record)
    bound = writer.size_bound()
    pinned = writer.close()
    data = (tmp_path / INDEX_NAME).read_bytes()
    assert pinned == SealedRecord(INDEX_NAME, len(data), blake3.blake3(data).hexdigest())
    assert len(data) <= bound
    assert b"secret-dir" not in data and b"name-0" not in data
    assert not list(tmp_path.glob("*.partial"))
    reader = SealedReader(LocalStore(tmp_path), INDEX_NAME, identity, INDEX_NAME)
    assert list(reader.records()) == records_of(30_000)
    assert (reader.size, reader.blake3) == (pinned.size, pinned.blake3)


def test_an_interrupted_sealed_file_is_left_partial_and_a_stopped_reader_ends(tmp_path: Path) -> None:
    identity = ShipmentIdentity.generate()
    writer = SealedWriter(LocalStore(tmp_path), INDEX_NAME, identity)
    for record in records_of(1000):
        writer.write(record)
    writer.abort()
    assert not (tmp_path / INDEX_NAME).exists() and (tmp_path / (INDEX_NAME + ".partial")).exists()
    writer = SealedWriter(LocalStore(tmp_path / ".."), tmp_path.name + "-other", identity)
    for record in records_of(100_000):
        writer.write(record)
    path = writer.close()
    records = SealedReader(LocalStore(tmp_path / ".."), path.name, identity, "it").records()
    assert next(records) == records_of(1)[0]
    records.close()  # age's thread, blocked on a full pipe, ends too (else this test hangs)


def test_a_damaged_cut_or_foreign_sealed_file_is_refused(tmp_path: Path) -> None:
    identity = ShipmentIdentity.generate()
    writer = SealedWriter(LocalStore(tmp_path), INDEX_NAME, identity)
    for record in records_of(20_000):
        writer.write(record)
    writer.close()
    good = (tmp_path / INDEX_NAME).read_bytes()
    rng = random.Random(5)
    damaged = [bytearray(good) for _ in range(6)]
    for copy in damaged:
        copy[rng.randrange(len(good))] ^= 1 << rng.randrange(8)
    cuts = [good[:n] for n in (0, 30, len(good) // 2, len(good) - 1)]
    for n, data in enumerate([*map(bytes, damaged), *cuts, good + b"\0"]):
        (tmp_path / f"bad{n}").write_bytes(data)
        with pytest.raises(FormatError):
            list(SealedReader(LocalStore(tmp_path), f"bad{n}", identity, INDEX_NAME).records())
    with pytest.raises(AuthenticationFailed, match="does not open with the shipment's key"):
        list(SealedReader(LocalStore(tmp_path), INDEX_NAME, ShipmentIdentity.generate(), INDEX_NAME).records())


@pytest.mark.skipif(not HAVE_AGE or shutil.which("zstd") is None, reason="age or zstd is not installed")
def test_the_age_command_opens_a_sealed_file(tmp_path: Path) -> None:
    identity = ShipmentIdentity.generate()
    writer = SealedWriter(LocalStore(tmp_path), INDEX_NAME, identity)
    for record in records_of(50):
        writer.write(record)
    writer.close()
    (tmp_path / "id.txt").write_text(identity.secret_line() + "\n")
    plain = subprocess.run(
        f"age -d -i id.txt {INDEX_NAME} | zstd -dc", shell=True, cwd=tmp_path, check=True, capture_output=True
    ).stdout
    assert plain.splitlines()[7] == b'{"type":"file","path":"secret-dir/name-000007.txt","n":7}'


# --- keys/ on a drive ---------------------------------------------------------------------------------------------


def test_keys_unlock_with_the_identity_or_the_passphrase_and_refuse_others(
    tmp_path: Path, receiver: ShipmentIdentity
) -> None:
    wrapped = wrap_keys([parse_recipient(receiver.recipient)], "correct horse battery staple")
    records = write_keys(LocalStore(tmp_path), wrapped)
    assert {r.name for r in records} == {RECIPIENTS_NAME, PASSPHRASE_NAME}
    for record in records:
        data = (tmp_path / record.name).read_bytes()
        assert (record.size, record.blake3) == (len(data), blake3.blake3(data).hexdigest())
    secret = wrapped.identity.secret_line()
    assert unlock(LocalStore(tmp_path), Unlock(identity=receiver.secret_line())).secret_line() == secret
    assert unlock(LocalStore(tmp_path), Unlock(passphrase="correct horse battery staple")).secret_line() == secret
    stranger = ShipmentIdentity.generate().secret_line()
    for given, error in (
        (Unlock(identity=stranger), WrongKey),
        (Unlock(passphrase="wrong"), WrongKey),
        (Unlock(), CryptoError),
    ):
        with pytest.raises(error) as caught:
            unlock(LocalStore(tmp_path), given)
        assert caught.value.exit_code == ExitCode.USAGE
        message = str(caught.value)
        assert "\n" not in message and secret not in message and stranger not in message


def test_a_drive_without_the_key_file_asked_for_says_which_one_it_has(tmp_path: Path, keys) -> None:
    write_keys(LocalStore(tmp_path), keys)
    with pytest.raises(CryptoError, match=r"no keys/passphrase\.age: it opens with an identity only"):
        unlock(LocalStore(tmp_path), Unlock(passphrase="anything"))


def test_identity_and_passphrase_files_are_read_as_age_reads_them(tmp_path: Path, receiver) -> None:
    (tmp_path / "id.txt").write_text(f"# made by age-keygen\n{receiver.secret_line()}\n")
    (tmp_path / "pass.txt").write_text("two words\n")
    given = Unlock.from_files(str(tmp_path / "id.txt"), str(tmp_path / "pass.txt"))
    assert given.passphrase == "two words" and receiver.secret_line() in (given.identity or "")
    assert receiver.secret_line() not in repr(given) and "two words" not in repr(given)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        Unlock.from_files(None, str(tmp_path / "empty.txt"))


# --- the drive writer, sealing --------------------------------------------------------------------------------


def header(cipher: str = DEFAULT_CIPHER) -> ManifestHeader:
    return ManifestHeader(
        SHIPMENT, 1, "2026-12-03T17:00:00Z", 65536, 200_000, "sneakernet test", version=2, level=3, lane=1,
        lane_seq=1, cipher=cipher,
    )  # fmt: skip


def chunk(n: int, rng: random.Random) -> RawChunk:
    data = rng.randbytes(40_000) if n % 2 else (b"compressible secret text %d\n" % n) * 2000
    return RawChunk(n, data, [Slice(n, 0, 0, len(data))])


def write_sealed_drive(
    root: Path,
    keys,
    chunks: int = 12,
    extra: list[FileRecord] = (),  # type: ignore[assignment]
    cipher: str = DEFAULT_CIPHER,
) -> tuple[list[ChunkRecord], list[bytes], ShipmentSealing]:
    """An encrypted drive of ``chunks`` chunks (segments of at most 90,000 bytes), a file record after each."""
    sealing = ShipmentSealing.new(keys, 3, cipher)
    writer = DriveWriter(LocalStore(root), "drive-0001", header(cipher), 200_000, sealing)
    rng = random.Random(3)
    records, raws = [], []
    for n in range(chunks):
        raw = chunk(n, rng)
        raws.append(raw.data)
        encoded = encode(raw, sealing.codec)
        assert encoded.stored_size == len(encoded.stored) + 16 and not encoded.stored_blake3
        new_segment = writer._segment is not None and writer._segment.size + encoded.stored_size > 90_000
        records.append(writer.add_chunk(encoded, new_segment))
        writer.add_record(FileRecord(b"secret-dir/file-%d.bin" % n, 0, len(raws[-1]), n, 0, True, len(raws[-1]),
                                     blake3.blake3(raws[-1]).hexdigest(), META, False))  # fmt: skip
    for record in extra:
        writer.add_record(record)
    writer.add_record(DirRecord(b"secret-dir", META))
    writer.finish()
    return records, raws, sealing


def public_records(root: Path) -> list[Any]:
    with open(root / MANIFEST_NAME, "rb") as handle:
        raw = list(read_records(handle, "manifest"))
    return [
        ManifestHeader.from_json(raw[0], READERS),
        *(public_record_from_json(r) for r in raw[1:] if r is not None),
    ]


def merged(root: Path, identity: ShipmentIdentity, only=None) -> tuple[list[Any], SegmentKeys]:
    keys = SegmentKeys(SHIPMENT, 1)
    merge = IndexMerge(
        iter(public_records(root)), LocalStore(root), identity, keys, manifest_record_from_json, str(root)
    )
    return list(merge.records(only)), keys


def read_chunk(root: Path, record: ChunkRecord, codec: ChunkCodec) -> bytes:
    with open(root / record.segment, "rb") as handle:
        handle.seek(record.offset)
        stored = handle.read(record.stored_size)
    assert blake3.blake3(stored).hexdigest() == record.stored_blake3
    return codec.decode_record(stored, record)


@each_cipher
def test_an_encrypted_drive_reads_back_whole_with_the_identity(tmp_path: Path, keys, cipher: str) -> None:
    written, raws, _ = write_sealed_drive(tmp_path, keys, cipher=cipher)
    public = public_records(tmp_path)
    assert public[0].cipher == cipher
    assert {type(r) for r in public[1:]} == {PublicChunk, SegmentRecord, SealedRecord, EndRecord}
    assert [r.name for r in public if isinstance(r, SealedRecord)] == [RECIPIENTS_NAME, INDEX_NAME]
    records, keys_read = merged(tmp_path, keys.identity)
    chunks = [r for r in records if isinstance(r, ChunkRecord)]
    assert all(isinstance(r, OpenableChunk) for r in chunks)
    # The whole records equal what the writer wrote; each knows its place in its segment (its nonce).
    assert [
        ChunkRecord(**{f.name: getattr(r, f.name) for f in dataclasses.fields(ChunkRecord)}) for r in chunks
    ] == written
    segments = [r for r in records if isinstance(r, SegmentRecord)]
    assert len(segments) >= 3 and sum(s.chunks for s in segments) == 12
    assert [r.index for r in chunks] == [n for s in segments for n in range(s.chunks)]
    assert len(keys_read) == len(segments)
    codec = ChunkCodec(3, cipher, keys_read)
    assert [read_chunk(tmp_path, r, codec) for r in chunks] == raws
    (other,) = set(CIPHERS) - {cipher}  # a header that names the other cipher: every chunk fails its tag
    with pytest.raises(AuthenticationFailed):
        read_chunk(tmp_path, chunks[0], ChunkCodec(3, other, keys_read))
    assert [r.path for r in records if isinstance(r, FileRecord)] == [b"secret-dir/file-%d.bin" % n for n in range(12)]
    assert isinstance(records[-1], EndRecord)
    only = merged(tmp_path, keys.identity, only=(FileRecord.TYPE,))[0]
    assert [type(r) for r in only] == [ManifestHeader] + [FileRecord] * 12 + [EndRecord]


def test_nothing_readable_is_left_on_an_encrypted_drive(tmp_path: Path, keys) -> None:
    _, raws, _ = write_sealed_drive(tmp_path, keys)
    secrets = [keys.identity.secret_line().encode(), b"secret-dir", b"file-1.bin"]
    secrets += [raw[:32] for raw in raws] + [raw[len(raw) // 2 : len(raw) // 2 + 32] for raw in raws]
    secrets += [blake3.blake3(raw).hexdigest().encode() for raw in raws]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets if s in data], path
    manifest_text = b"".join(str(r.to_json()).encode() for r in public_records(tmp_path)[1:])
    for word in (b"raw_size", b"raw_blake3", b"method", b"path"):
        assert word not in manifest_text


@each_cipher
def test_every_segment_gets_its_own_key_and_a_chunk_out_of_place_fails(tmp_path: Path, keys, cipher: str) -> None:
    write_sealed_drive(tmp_path / "one", keys, cipher=cipher)
    write_sealed_drive(tmp_path / "two", keys, cipher=cipher)  # the same chunks again: a drive written anew
    one, keys_one = merged(tmp_path / "one", keys.identity)
    two, keys_two = merged(tmp_path / "two", keys.identity)
    chunks_one = [r for r in one if isinstance(r, OpenableChunk)]
    chunks_two = [r for r in two if isinstance(r, OpenableChunk)]
    # The same frames at the same places under other keys: other stored bytes.
    assert all(a.stored_blake3 != b.stored_blake3 for a, b in zip(chunks_one, chunks_two, strict=True))
    codec = ChunkCodec(3, cipher, keys_one)
    first, second = chunks_one[0], chunks_one[2]  # two chunks of one segment, of the same raw size
    assert first.segment == second.segment and first.raw_size == second.raw_size
    with open(tmp_path / "one" / first.segment, "rb") as handle:
        handle.seek(second.offset)
        stored = handle.read(second.stored_size)
    for wrong in (
        dataclasses.replace(second, index=first.index),  # another nonce
        dataclasses.replace(second, offset=first.offset),  # another place in the segment
        dataclasses.replace(second, raw_size=second.raw_size + 1),  # an index that lies about the size
        dataclasses.replace(second, id=first.id, offset=first.offset, index=first.index),  # swapped in
    ):
        with pytest.raises(AuthenticationFailed):
            codec.decode_record(stored, wrong)
    with pytest.raises(AuthenticationFailed):  # the same place on the other drive: another key
        ChunkCodec(3, cipher, keys_two).decode_record(stored, second)
    with pytest.raises(FormatError, match="needs the shipment's key"):
        ChunkCodec(3, cipher).decode_record(stored, second)


def test_an_index_that_disagrees_with_its_public_manifest_is_refused(tmp_path: Path, keys) -> None:
    write_sealed_drive(tmp_path, keys)
    public = public_records(tmp_path)
    chunk_at = [n for n, r in enumerate(public) if isinstance(r, PublicChunk)]
    sealed_at = next(n for n, r in enumerate(public) if isinstance(r, SealedRecord) and r.name == INDEX_NAME)
    last = chunk_at[-1]
    extra = dataclasses.replace(public[last], id=12)
    cases = {
        "describes chunk 11, which its public manifest lacks": public[:last] + public[last + 1 :],
        "describes chunk 1 where the public manifest has chunk 0": public[: chunk_at[0] + 1] + public[chunk_at[0] :],
        "has chunk 12, which its index.age lacks": [*public[: last + 1], extra, *public[last + 1 :]],
        "does not match the BLAKE3": [
            dataclasses.replace(r, blake3="0" * 64) if n == sealed_at else r for n, r in enumerate(public)
        ],
    }
    for message, records in cases.items():
        merge = IndexMerge(
            iter(records), LocalStore(tmp_path), keys.identity, SegmentKeys(SHIPMENT, 1),
            manifest_record_from_json, str(tmp_path),
        )  # fmt: skip
        with pytest.raises((FormatError, IntegrityError), match=message):
            list(merge.records())


def test_public_records_refuse_what_would_show_plaintext() -> None:
    with pytest.raises(FormatError, match="no place in an encrypted drive's public manifest"):
        public_record_from_json({"type": "file", "path": "a"})
    base = {"type": "chunk", "id": 0, "segment": "segments/s000001.seg", "offset": 0, "stored_size": 40,
            "stored_blake3": "0" * 64}  # fmt: skip
    assert public_record_from_json(base) == PublicChunk(0, "segments/s000001.seg", 0, 40, "0" * 64)
    with pytest.raises(FormatError, match="belongs in the sealed index"):
        public_record_from_json({**base, "raw_blake3": "0" * 64})
    with pytest.raises(FormatError, match="cannot hold a frame"):
        public_record_from_json({**base, "stored_size": 16})


def test_the_codec_refuses_another_cipher_and_sizes_sealed_chunks(tmp_path: Path, keys) -> None:
    for name in ("aes-128-gcm", "AES-256-GCM", "chacha20"):
        with pytest.raises(FormatError, match=f"cipher '{name}' is not one of aes-256-gcm, chacha20-poly1305"):
            ChunkCodec(3, name)
    for cipher in CIPHERS:
        assert ChunkCodec(3, cipher).stored_size(100) == 116 and ChunkCodec(3).stored_size(100) == 100
    with pytest.raises(ValueError, match="the header names chacha20-poly1305, the sealing aes-256-gcm"):
        DriveWriter(LocalStore(tmp_path), "drive-0001", header(CIPHER_CHACHA), 200_000, ShipmentSealing.new(keys, 3))
    assert os.path.basename(INDEX_NAME) == "index.age"


# --- the drive reader -------------------------------------------------------------------------------------------


@each_cipher
def test_the_drive_reader_reads_an_encrypted_drive_with_its_key_and_its_public_side_without(
    tmp_path: Path, keys, receiver: ShipmentIdentity, cipher: str
) -> None:
    _, raws, _ = write_sealed_drive(tmp_path, keys, cipher=cipher)
    label = json.loads((tmp_path / "drive.json").read_text())
    assert label["encrypted"] is True and label["version"] == 2 and "raw_bytes" not in label
    sums = (tmp_path / "B3SUMS").read_text()
    for name in (RECIPIENTS_NAME, INDEX_NAME, MANIFEST_NAME, "segments/s000001.seg", "drive.json"):
        assert f"  {name}\n" in sums
    reader = DriveReader(str(tmp_path), key=Unlock(identity=receiver.secret_line()), versions=READERS)
    records = list(reader.records())
    chunks = [r for r in records if isinstance(r, OpenableChunk)]
    assert [reader.read_chunk(r) for r in chunks] == raws
    assert [reader.frame_problem(r) for r in chunks] == [None] * len(chunks)
    assert len([r for r in records if isinstance(r, FileRecord)]) == 12
    keyless = DriveReader(str(tmp_path), versions=READERS, public=True)
    public = list(keyless.records())
    assert [type(r) for r in public if not isinstance(r, SegmentRecord)][:3] == [
        ManifestHeader,
        PublicChunk,
        PublicChunk,
    ]
    assert all(keyless.stored_matches(r) for r in public if isinstance(r, PublicChunk))  # type: ignore[arg-type]
    with pytest.raises(FormatError, match="needs the shipment's key"):
        keyless.read_chunk(chunks[0])
    with pytest.raises(WrongKey, match=r"does not open keys/recipients\.age"):
        DriveReader(str(tmp_path), key=Unlock(identity=ShipmentIdentity.generate().secret_line()), versions=READERS)
    # A chunk flipped in place: found by its stored hash with or without the key, and by the tag.
    segment = tmp_path / chunks[1].segment
    data = bytearray(segment.read_bytes())
    data[chunks[1].offset + 5] ^= 1
    segment.write_bytes(bytes(data))
    assert not keyless.stored_matches(public[2]) or not keyless.stored_matches(chunks[1])
    with pytest.raises(IntegrityError):
        reader.read_chunk(chunks[1])
    reader.close()
    fresh = DriveReader(str(tmp_path), key=keys.identity, versions=READERS)
    assert "needs the shipment's key" in (fresh.frame_problem(chunks[1]) or "")  # no keys before the index is read
    list(fresh.records())
    assert "fails authentication" in (fresh.frame_problem(chunks[1]) or "")
    assert fresh.frame_problem(chunks[0]) is None


def test_an_interrupted_encrypted_drive_is_left_unfinished(tmp_path: Path, keys) -> None:
    sealing = ShipmentSealing.new(keys, 3)
    writer = DriveWriter(LocalStore(tmp_path), "drive-0001", header(), 200_000, sealing)
    writer.add_chunk(encode(chunk(0, random.Random(1)), sealing.codec), False)
    writer.abort()
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == sorted(
        [RECIPIENTS_NAME, INDEX_NAME + ".partial", MANIFEST_NAME + ".partial", "segments/s000001.seg.partial"]
    )
    with pytest.raises(UnfinishedDrive):
        DriveReader(str(tmp_path), key=keys.identity, versions=READERS)


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("age", "zstd", "jq", "openssl", "b3sum", "bash")),
    reason="the by-hand steps need age, zstd, jq, openssl, b3sum and bash",
)
@each_cipher
def test_a_file_is_recovered_by_hand_as_section_19_8_6_says(
    tmp_path: Path, receiver: ShipmentIdentity, cipher: str
) -> None:
    """Section 19.8.6's own script, run on an encrypted drive of either cipher: the receiver's key opens keys/, the
    index, the chunk (a file in the middle of a chunk, in a later segment, so that offsets and the nonce count)."""
    keys = wrap_keys([parse_recipient(receiver.recipient)], None)
    rng = random.Random(3)
    raws = [chunk(n, rng).data for n in range(12)]
    small = raws[10][1000:1300]
    record = FileRecord(b"sub/small.txt", 0, 300, 10, 1000, True, 300, blake3.blake3(small).hexdigest(), META, False)
    written, _, _ = write_sealed_drive(tmp_path / "drive", keys, extra=[record], cipher=cipher)
    assert written[10].segment != "segments/s000001.seg" and written[10].offset > 0 and written[10].method == "zstd"
    (tmp_path / "key.txt").write_text(receiver.secret_line() + "\n")
    text = (Path(__file__).parents[2] / "docs" / "format.md").read_text(encoding="utf-8")
    section = text[text.index("#### 19.8.6") : text.index("### 19.9")]
    script = section[section.index("```sh\n") + 6 : section.index("```\n", section.index("```sh\n") + 6)]
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "DRIVE": str(tmp_path / "drive"), "KEY": str(tmp_path / "key.txt"), "FILE": "sub/small.txt"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert (work / "recovered").read_bytes() == small


def test_sealed_files_are_checked_without_the_key(tmp_path: Path, keys) -> None:
    write_sealed_drive(tmp_path, keys)
    pinned = [r for r in public_records(tmp_path) if isinstance(r, SealedRecord)]
    assert sealed_problems(LocalStore(tmp_path), pinned) == []
    index = tmp_path / INDEX_NAME
    data = bytearray(index.read_bytes())
    data[len(data) // 3] ^= 0x40
    index.write_bytes(bytes(data))
    (tmp_path / RECIPIENTS_NAME).unlink()
    assert sealed_problems(LocalStore(tmp_path), pinned) == [
        f"{RECIPIENTS_NAME} cannot be read: No such file or directory",
        f"{INDEX_NAME} is damaged: its BLAKE3 is not the one its manifest records",
    ]
    assert holds_shipment(str(tmp_path / "keys")) is False and holds_shipment(str(tmp_path))
