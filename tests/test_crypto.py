"""crypto/: the chunk transform of docs/format.md 19.8.2 (seal, open, what binds a chunk to its place, nonces that
cannot repeat) and the shipment identity's wrapped copies of 19.8.1 (age files, by pyrage and by the `age` CLI)."""

from __future__ import annotations

import fcntl
import importlib
import itertools
import os
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.crypto import aead, agefile, keys
from sneakernet.crypto.aead import KeyDrawer, SegmentKey, SegmentOpener, SegmentPlace
from sneakernet.crypto.keys import ShipmentIdentity
from sneakernet.errors import AuthenticationFailed, CryptoError, ExitCode, FormatError, WrongKey
from sneakernet.format import CIPHER_AES_GCM, CIPHER_CHACHA, CIPHERS, DEFAULT_CIPHER

SHIPMENT = "0123456789abcdef0123456789abcdef"
OTHER_SHIPMENT = "fedcba9876543210fedcba9876543210"
PLACE = SegmentPlace(SHIPMENT, drive=1, segment=1)
#: Every chunk test runs with each cipher a manifest header may name (docs/format.md 19.8.2).
each_cipher = pytest.mark.parametrize("cipher", CIPHERS)


def sealed_segment(frames: list[bytes], place: SegmentPlace = PLACE, first_id: int = 0, cipher: str = DEFAULT_CIPHER):
    """Seal ``frames`` as one segment's chunks, back to back: (sealer, [(chunk_id, offset, raw_size, stored)])."""
    sealer = KeyDrawer(cipher=cipher).new_segment(place)
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


@each_cipher
@settings(max_examples=40, deadline=None)
@given(frames=st.lists(st.binary(max_size=300), min_size=1, max_size=6), drive=st.integers(0, 2**32 - 1))
def test_seal_then_open_gives_each_frame_back(cipher: str, frames: list[bytes], drive: int) -> None:
    place = SegmentPlace(SHIPMENT, drive=drive, segment=3)
    sealer, chunks = sealed_segment(frames, place, first_id=10, cipher=cipher)
    assert sealer.sealed == len(frames) and sealer.cipher == cipher
    opener = SegmentOpener(SegmentKey.from_hex(sealer.key.hex()), place, cipher)
    for index, ((chunk_id, offset, raw_size, stored), frame) in enumerate(zip(chunks, frames, strict=True)):
        assert len(stored) == len(frame) + aead.TAG_SIZE
        assert opener.open(stored, index=index, chunk_id=chunk_id, offset=offset, raw_size=raw_size) == frame
    # in any order, from a memoryview too
    chunk_id, offset, raw_size, stored = chunks[-1]
    got = opener.open(memoryview(stored), index=len(chunks) - 1, chunk_id=chunk_id, offset=offset, raw_size=raw_size)
    assert got == frames[-1]


@each_cipher
def test_every_flipped_byte_fails_authentication(cipher: str) -> None:
    sealer, [(chunk_id, offset, raw_size, stored)] = sealed_segment([b"a frame of some bytes"], cipher=cipher)
    opener = SegmentOpener(sealer.key, PLACE, cipher)
    for position, bit in itertools.product(range(len(stored)), (0x01, 0x80)):
        damaged = bytearray(stored)
        damaged[position] ^= bit
        with pytest.raises(AuthenticationFailed, match=f"chunk {chunk_id} .*authentication failed"):
            opener.open(bytes(damaged), index=0, chunk_id=chunk_id, offset=offset, raw_size=raw_size)
    for cut in (stored[:-1], stored[1:], stored[:15], b""):
        with pytest.raises(AuthenticationFailed):
            opener.open(cut, index=0, chunk_id=chunk_id, offset=offset, raw_size=raw_size)


@each_cipher
def test_a_chunk_anywhere_but_its_place_fails_authentication(cipher: str) -> None:
    """Swapped chunks of equal size, a chunk moved to another index, offset, segment, drive or shipment, another
    chunk id, a raw_size the index lies about, another segment's key, the other cipher named by a changed header:
    each changes the key, nonce, associated data or algorithm."""
    sealer, chunks = sealed_segment([b"first frame!", b"other frame!"], cipher=cipher)  # equal sizes
    (id0, off0, raw0, stored0), (id1, off1, raw1, stored1) = chunks
    opener = SegmentOpener(sealer.key, PLACE, cipher)
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
            (
                SegmentOpener(sealer.key, place, cipher),
                stored0,
                {"index": 0, "chunk_id": id0, "offset": off0, "raw_size": raw0},
            )
        )
    other_key = KeyDrawer(cipher=cipher).new_segment(PLACE).key  # same place, another segment file's key
    (other_cipher,) = set(CIPHERS) - {cipher}  # the same key and place, the header's cipher changed
    for any_opener in (SegmentOpener(other_key, PLACE, cipher), SegmentOpener(sealer.key, PLACE, other_cipher)):
        wrong.append((any_opener, stored0, {"index": 0, "chunk_id": id0, "offset": off0, "raw_size": raw0}))
    for case, (any_opener, stored, where) in enumerate(wrong):
        with pytest.raises(AuthenticationFailed):
            any_opener.open(stored, **where)
            pytest.fail(f"case {case} opened")


def test_a_chunk_sealed_by_hand_from_the_document_is_byte_identical() -> None:
    """docs/format.md 19.8.2 read by a stranger: RFC 8439's construction built from its parts (the ChaCha20 block 0
    as the Poly1305 key, the body from block 1, the tag over the padded associated data, ciphertext and lengths),
    with the key, nonce and 63 bytes of associated data as the table gives them, gives the very bytes sealed."""
    frames = [b"a zstd frame, say", b"the next chunk's frame, a little longer"]
    place = SegmentPlace(SHIPMENT, drive=3, segment=12)
    sealer, chunks = sealed_segment(frames, place, first_id=40, cipher=CIPHER_CHACHA)
    for index, ((chunk_id, offset, raw_size, stored), frame) in enumerate(zip(chunks, frames, strict=True)):
        ad = b"sneakernet-chunk-v2" + bytes.fromhex(SHIPMENT) + struct.pack("<IIQQI", 3, 12, chunk_id, offset, raw_size)
        assert len(ad) == 63
        chunk_nonce = index.to_bytes(12, "little")

        def chacha20(counter: int, data: bytes, chunk_nonce: bytes = chunk_nonce) -> bytes:
            iv = counter.to_bytes(4, "little") + chunk_nonce  # the IV openssl's -chacha20 takes too
            return Cipher(algorithms.ChaCha20(sealer.key.secret, iv), mode=None).encryptor().update(data)

        body = chacha20(1, frame)
        mac = Poly1305(chacha20(0, bytes(32)))
        for part in (ad, body):
            mac.update(part + bytes(-len(part) % 16))
        mac.update(struct.pack("<QQ", len(ad), len(body)))
        assert stored == body + mac.finalize()


def test_an_aes_gcm_chunk_sealed_by_hand_from_the_document_is_byte_identical() -> None:
    """docs/format.md 19.8.2 for AES-256-GCM: its body is AES-256 in counter mode from the counter block ``nonce ||
    00000002`` (block 1, big endian, is the tag's mask: NIST SP 800-38D with a 96-bit nonce), and the tag is GCM's
    over the 63 bytes of associated data the table gives: rebuilt from those parts, the very bytes sealed."""
    frames = [b"a zstd frame, say", b"the next chunk's frame, a little longer" * 3]
    place = SegmentPlace(SHIPMENT, drive=3, segment=12)
    sealer, chunks = sealed_segment(frames, place, first_id=40, cipher=CIPHER_AES_GCM)
    for index, ((chunk_id, offset, raw_size, stored), frame) in enumerate(zip(chunks, frames, strict=True)):
        ad = b"sneakernet-chunk-v2" + bytes.fromhex(SHIPMENT) + struct.pack("<IIQQI", 3, 12, chunk_id, offset, raw_size)
        chunk_nonce = index.to_bytes(12, "little")
        counter = chunk_nonce + (2).to_bytes(4, "big")  # the IV openssl's -aes-256-ctr takes
        body = Cipher(algorithms.AES(sealer.key.secret), modes.CTR(counter)).encryptor().update(frame)
        assert stored[:-16] == body
        assert stored == AESGCM(sealer.key.secret).encrypt(chunk_nonce, frame, ad)  # the tag: GCM's, over that AD


def test_a_sealer_numbers_its_chunks_and_refuses_to_go_back() -> None:
    sealer = KeyDrawer().new_segment(PLACE)
    first = sealer.seal(b"x" * 10, chunk_id=0, offset=0, raw_size=10)
    with pytest.raises(ValueError, match="overlaps or precedes"):
        sealer.seal(b"y" * 10, chunk_id=1, offset=len(first) - 1, raw_size=10)
    assert sealer.sealed == 1
    second = sealer.seal(b"x" * 10, chunk_id=0, offset=len(first) + 100, raw_size=10)
    assert second != first  # the same frame at the next index: another nonce, other bytes
    opener = SegmentOpener(sealer.key, PLACE, sealer.cipher)
    assert opener.open(second, index=1, chunk_id=0, offset=len(first) + 100, raw_size=10) == b"x" * 10


@each_cipher
def test_seal_into_a_kept_buffer_numbers_the_chunks_as_seal_does(cipher: str) -> None:
    sealer = KeyDrawer(cipher=cipher).new_segment(PLACE)
    out = bytearray(100)
    frames = [b"one frame", b"another, longer frame", b""]
    offset, stored = 0, []
    for chunk_id, frame in enumerate(frames):
        size = sealer.seal_into(frame, out, chunk_id=chunk_id, offset=offset, raw_size=len(frame))
        assert size == len(frame) + aead.TAG_SIZE
        stored.append(bytes(out[:size]))
        offset += size
    with pytest.raises(ValueError, match="a buffer of 100 bytes cannot hold a sealed chunk of 116"):
        sealer.seal_into(bytes(100), out, chunk_id=3, offset=offset, raw_size=100)
    assert sealer.sealed == 3
    opener = SegmentOpener(sealer.key, PLACE, cipher)
    offset = 0
    for index, (frame, chunk) in enumerate(zip(frames, stored, strict=True)):
        assert opener.open(chunk, index=index, chunk_id=index, offset=offset, raw_size=len(frame)) == frame
        offset += len(chunk)


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


def test_a_cipher_sneakernet_does_not_know_is_refused() -> None:
    assert DEFAULT_CIPHER == CIPHER_AES_GCM == KeyDrawer().new_segment(PLACE).cipher
    with pytest.raises(CryptoError, match="cipher 'aes-128-gcm' is not one of aes-256-gcm, chacha20-poly1305"):
        KeyDrawer(cipher="aes-128-gcm")
    key = KeyDrawer().new_segment(PLACE).key
    with pytest.raises(FormatError, match="cipher 'xchacha20-poly1305' is not one of"):
        SegmentOpener(key, PLACE, "xchacha20-poly1305")


def test_no_key_in_any_repr_str_or_error() -> None:
    sealer, [(chunk_id, offset, raw_size, stored)] = sealed_segment([b"frame"])
    secret = sealer.key.hex()
    opener = SegmentOpener(sealer.key, PLACE, sealer.cipher)
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
@each_cipher
def test_openssl_decrypts_a_sealed_chunk_by_hand_as_documented(tmp_path, cipher: str) -> None:
    """docs/format.md 19.8.6: drop the tag; `openssl enc -d -chacha20` with the IV = block counter 1 (`01000000`)
    then the nonce (the chunk's index in its segment, little endian), or `openssl enc -d -aes-256-ctr` with the IV =
    the nonce then counter 2 (`00000002`), gives the frame back."""
    frames = [b"the first frame " * 7, b"the second frame, which we recover by hand " * 5]
    sealer, chunks = sealed_segment(frames, cipher=cipher)
    for index, (_, _, _, stored) in enumerate(chunks):
        if cipher == CIPHER_CHACHA:
            how = f"-chacha20 -iv 01000000{aead.nonce(index).hex()}"
        else:
            how = f"-aes-256-ctr -iv {aead.nonce(index).hex()}00000002"
        (tmp_path / "chunk.enc").write_bytes(stored)
        run = subprocess.run(
            f"head -c -16 chunk.enc | openssl enc -d {how} -K {sealer.key.hex()}",
            shell=True,
            cwd=tmp_path,
            capture_output=True,
            check=True,
        )
        assert run.stdout == frames[index]


# --- keys: the shipment identity and its wrapped copies (19.8.1) ---

needs_age = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("age-keygen") is None,
    reason="the age command is not installed (Debian package age; .ci/run installs it)",
)
needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An unencrypted ed25519 and a 2048-bit RSA key pair made by ssh-keygen: {kind: private key path}."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    folder = tmp_path_factory.mktemp("ssh")
    made = {}
    for kind, args in (("ssh-ed25519", ["-t", "ed25519"]), ("ssh-rsa", ["-t", "rsa", "-b", "2048"])):
        path = folder / kind
        subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", "me@host", "-f", str(path)], check=True)
        made[kind] = path
    return made


def age_on_a_terminal(args: list[str], answers: list[str], cwd: Path) -> bytes:
    """Run `age ARGS` on a pseudo-terminal (age reads a passphrase only from its terminal), typing each of
    ``answers`` at each prompt; what it showed."""
    master, slave = os.openpty()

    def attach() -> None:  # a new session whose controlling terminal is the pty
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(["age", *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, preexec_fn=attach)
    os.close(slave)
    shown, deadline = b"", time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: age closed the terminal
                break
            if not data:
                break
            shown += data
            if answers and data.rstrip().endswith(b":"):
                os.write(master, answers.pop(0).encode() + b"\n")
        assert process.wait(timeout=60) == 0, shown
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return shown


def test_recipients_parse_and_refuse_with_one_clear_line(ssh_keys: dict[str, Path]) -> None:
    identity = ShipmentIdentity.generate()
    assert keys.parse_recipient(identity.recipient).kind is keys.RecipientKind.X25519
    for kind, path in ssh_keys.items():
        assert keys.parse_recipient(Path(f"{path}.pub").read_text()).kind.value == kind
    rsa = Path(f"{ssh_keys['ssh-rsa']}.pub").read_text()
    text = f"# the receivers\n\n{identity.recipient}\n  # indented comment\n{rsa}"
    assert [r.kind.value for r in keys.parse_recipients(text)] == ["X25519", "ssh-rsa"]
    with pytest.raises(CryptoError, match=r"recipients.txt, line 2: recipient 'age1qqqqqqqq\.\.\.' is not a valid age"):
        keys.parse_recipients(f"{identity.recipient}\nage1qqqqqqqqqqqqqqqqqqq\n", "recipients.txt")
    with pytest.raises(CryptoError, match="neither an age X25519 recipient"):
        keys.parse_recipient(identity.secret_line())  # a secret pasted where a public key belongs: not echoed
    with pytest.raises(CryptoError, match="names no recipient"):
        keys.parse_recipients("# nobody\n")


def test_wrapped_identity_round_trips_for_every_recipient_kind(ssh_keys: dict[str, Path]) -> None:
    identity = ShipmentIdentity.generate()
    x25519 = ShipmentIdentity.generate()
    recipients = [keys.parse_recipient(x25519.recipient)]
    recipients += [keys.parse_recipient(Path(f"{path}.pub").read_text()) for path in ssh_keys.values()]
    wrapped = keys.wrap_for_recipients(identity, recipients)
    assert keys.recipient_kinds(wrapped) == ["X25519", "ssh-ed25519", "ssh-rsa"]
    for identity_file in [x25519.secret_line() + "\n", *(path.read_text() for path in ssh_keys.values())]:
        opened = keys.unwrap_with_identities(wrapped, identity_file)
        assert opened.secret_line() == identity.secret_line()
        assert opened.recipient == identity.recipient
    # an identity file of several lines and comments, the right one last
    several = f"# keys\n{ShipmentIdentity.generate().secret_line()}\n\n{x25519.secret_line()}\n"
    assert keys.unwrap_with_identities(wrapped, several).recipient == identity.recipient


def mistyped(line: str) -> str:
    """``line`` with its last character changed (to another one: a bech32 checksum then fails, always)."""
    return line[:-1] + ("Q" if line[-1] != "Q" else "P")


def test_a_wrong_or_missing_identity_is_one_line_naming_no_secret(ssh_keys: dict[str, Path]) -> None:
    identity = ShipmentIdentity.generate()
    owner = ShipmentIdentity.generate()
    wrapped = keys.wrap_for_recipients(identity, [keys.parse_recipient(owner.recipient)])
    stranger = ShipmentIdentity.generate()
    raised = []
    for identity_file, kind, message in (
        (stranger.secret_line(), WrongKey, "does not open keys/recipients.age: .*other recipients \\(X25519\\)"),
        (ssh_keys["ssh-ed25519"].read_text(), WrongKey, "does not open"),
        ("", CryptoError, "holds no identity"),
        ("# only a comment\n", CryptoError, "holds no identity"),
        ("AGE-SECRET-KEY-1NOTAKEY\n", CryptoError, "line 1: not an age identity"),
        (mistyped(owner.secret_line()), CryptoError, "line 1: not a valid age X25519 identity"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nbroken\n", CryptoError, "not an SSH private key sneakernet can use"),
    ):
        with pytest.raises(kind, match=message) as caught:
            keys.unwrap_with_identities(wrapped, identity_file)
        assert caught.value.exit_code == ExitCode.USAGE
        raised.append(caught.value)
    for error in raised:
        text = f"{error} {error!r}"
        assert "\n" not in str(error)
        for secret in (identity, owner, stranger):
            assert secret.secret_line() not in text
            assert secret.secret_line()[16:40] not in text
    assert identity.secret_line() not in repr(identity)
    assert repr(identity) == f"ShipmentIdentity({identity.recipient})"


def test_an_ssh_key_protected_by_a_passphrase_is_refused_in_one_line(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a secret", "-f", str(path)], check=True)
    with pytest.raises(CryptoError, match="without a passphrase"):
        keys.parse_identities(path.read_text())


def test_passphrase_file_round_trips_and_refuses_a_wrong_passphrase() -> None:
    identity = ShipmentIdentity.generate()
    wrapped = keys.wrap_with_passphrase(identity, PASSPHRASE)
    assert keys.recipient_kinds(wrapped, keys.PASSPHRASE_FILE) == ["scrypt"]
    assert agefile.scrypt_work_factor(agefile.read_header(wrapped, "p"), "p") == keys.WORK_FACTOR == 18
    assert keys.unwrap_with_passphrase(wrapped, PASSPHRASE).secret_line() == identity.secret_line()
    with pytest.raises(WrongKey, match=r"^the passphrase given does not open keys/passphrase\.age$") as caught:
        keys.unwrap_with_passphrase(wrapped, PASSPHRASE + "!")
    assert PASSPHRASE not in repr(caught.value)
    with pytest.raises(CryptoError, match="is a passphrase file: open it with the passphrase"):
        keys.unwrap_with_identities(wrapped, identity.secret_line())
    with pytest.raises(CryptoError, match="the passphrase is empty"):
        keys.wrap_with_passphrase(identity, "")
    with pytest.raises(CryptoError, match="too weak to write"):
        keys.wrap_with_passphrase(identity, PASSPHRASE, work_factor=17)


@pytest.mark.parametrize("work_factor", [1, 10, 17])
def test_a_weak_scrypt_work_factor_is_refused_before_any_work(work_factor: int) -> None:
    """A genuine age passphrase file (pyrage opens it) whose work factor is below 2^18: refused from its header."""
    identity = ShipmentIdentity.generate()
    weak = agefile.scrypt_encrypt(identity.secret_line().encode() + b"\n", PASSPHRASE, work_factor)
    if work_factor <= 10:  # a genuine age file: pyrage opens it (left out at 2^17: half a second, nothing new)
        assert pyrage.passphrase.decrypt(weak, PASSPHRASE) == identity.secret_line().encode() + b"\n"
    with pytest.raises(CryptoError, match=f"work factor of 2\\^{work_factor}, below the 2\\^18") as caught:
        keys.unwrap_with_passphrase(weak, PASSPHRASE)
    assert not isinstance(caught.value, WrongKey)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: b"not age at all", "is not an age file"),
        (lambda f: b"-----BEGIN AGE ENCRYPTED FILE-----\n...", "armored"),
        (lambda f: f[: f.index(b"\n---")], "cut short"),
        (lambda f: f.replace(b" 10\n", b" 010\n", 1), "scrypt stanza is malformed"),
        (lambda f: f.replace(b"-> scrypt", b"-> X25519", 1), "not an age passphrase file"),
        (lambda f: f.replace(b"\n---", b"\n-> X25519 abc\nAAAA\n---", 1), "not an age passphrase file"),
        (lambda f: f.replace(b"\n-> scrypt", b"\nwhat", 1), "neither a stanza nor its end"),
        (lambda f: f.replace(b"-> scrypt ", b"-> scrypt  ", 1), "empty or unreadable argument"),
    ],
)
def test_a_malformed_passphrase_file_is_refused_in_one_line(damage, message: str) -> None:
    good = agefile.scrypt_encrypt(b"AGE-SECRET-KEY-1\n", PASSPHRASE, 10)  # its header is all that is read
    with pytest.raises(CryptoError, match=message):
        keys.unwrap_with_passphrase(damage(good), PASSPHRASE)


def test_sealed_files_open_only_with_their_shipments_identity() -> None:
    identity = ShipmentIdentity.generate()
    plaintext = b'{"type":"header","format":"sneakernet-index"}\n' * 100
    sealed = identity.seal(plaintext)
    assert plaintext[:20] not in sealed
    assert identity.open(sealed, "index.age") == plaintext
    with pytest.raises(AuthenticationFailed, match=r"^index\.age does not open with the shipment's key"):
        ShipmentIdentity.generate().open(sealed, "index.age")
    damaged = bytearray(sealed)
    damaged[-5] ^= 1
    with pytest.raises(AuthenticationFailed, match=r"catalog\.age does not open"):
        identity.open(bytes(damaged), "catalog.age")
    with pytest.raises(CryptoError, match=r"catalog\.age is not an age file"):
        identity.open(b"plain text", "catalog.age")


@settings(max_examples=10, deadline=None)
@given(plaintext=st.binary(max_size=200_000))
def test_age_files_written_by_hand_open_with_pyrage(plaintext: bytes) -> None:
    """agefile.scrypt_encrypt is age's format: any size, across the 64 KiB payload chunks."""
    assert pyrage.passphrase.decrypt(agefile.scrypt_encrypt(plaintext, "pw", 2), "pw") == plaintext


@needs_age
def test_keys_wrapped_here_open_with_the_age_command(tmp_path: Path, ssh_keys: dict[str, Path]) -> None:
    """Interop with Debian's `age`: keys/recipients.age for X25519, ssh-ed25519 and ssh-rsa recipients and
    keys/passphrase.age open with `age -d`, giving the shipment identity's line."""
    subprocess.run(["age-keygen", "-o", str(tmp_path / "key.txt")], check=True, capture_output=True)
    key_text = (tmp_path / "key.txt").read_text()
    x25519 = next(line.split(": ")[1] for line in key_text.splitlines() if line.startswith("# public key: "))
    identity = ShipmentIdentity.generate()
    recipients = [keys.parse_recipient(x25519)]
    recipients += [keys.parse_recipient(Path(f"{path}.pub").read_text()) for path in ssh_keys.values()]
    (tmp_path / "recipients.age").write_bytes(keys.wrap_for_recipients(identity, recipients))
    expected = identity.secret_line().encode() + b"\n"
    for key_file in [tmp_path / "key.txt", *ssh_keys.values()]:
        run = subprocess.run(
            ["age", "-d", "-i", str(key_file), "recipients.age"], cwd=tmp_path, capture_output=True, check=True
        )
        assert run.stdout == expected
    (tmp_path / "passphrase.age").write_bytes(keys.wrap_with_passphrase(identity, PASSPHRASE))
    age_on_a_terminal(["-d", "-o", "opened.txt", "passphrase.age"], [PASSPHRASE], tmp_path)
    assert (tmp_path / "opened.txt").read_bytes() == expected


@needs_age
def test_keys_wrapped_by_the_age_command_open_here(tmp_path: Path, ssh_keys: dict[str, Path]) -> None:
    """The reverse: `age -e` to each recipient kind, and `age -p`, of an identity made by age-keygen."""
    subprocess.run(["age-keygen", "-o", str(tmp_path / "shipment.txt")], check=True, capture_output=True)
    line = next(line for line in (tmp_path / "shipment.txt").read_text().splitlines() if line.startswith("AGE-SECRET"))
    (tmp_path / "plain").write_text(line + "\n")
    subprocess.run(["age-keygen", "-o", str(tmp_path / "mine.txt")], check=True, capture_output=True)
    mine = keys.parse_identities((tmp_path / "mine.txt").read_text())
    args = ["-r", str(mine[0].to_public())]
    for path in ssh_keys.values():
        args += ["-R", f"{path}.pub"]
    subprocess.run(["age", "-e", *args, "-o", "recipients.age", "plain"], cwd=tmp_path, check=True)
    wrapped = (tmp_path / "recipients.age").read_bytes()
    for identity_file in [(tmp_path / "mine.txt").read_text(), *(path.read_text() for path in ssh_keys.values())]:
        assert keys.unwrap_with_identities(wrapped, identity_file).secret_line() == line
    age_on_a_terminal(["-p", "-o", "passphrase.age", "plain"], [PASSPHRASE, PASSPHRASE], tmp_path)
    opened = keys.unwrap_with_passphrase((tmp_path / "passphrase.age").read_bytes(), PASSPHRASE)
    assert opened.secret_line() == line


def test_without_the_crypt_extra_one_line_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyrage", None)  # what an install without the extra finds
    monkeypatch.delitem(sys.modules, "sneakernet.crypto.keys")
    with pytest.raises(CryptoError, match=r"need the 'crypt' extra: pip install 'sneakernet\[crypt\]'"):
        importlib.import_module("sneakernet.crypto.keys")
