"""The age file format's header (age-encryption.org/v1), read so that a wrapped key file can be judged before it is
opened, and age's scrypt (passphrase) file written with a work factor we choose.

Why by hand: the ``age`` implementation behind pyrage picks a passphrase file's scrypt work factor by timing the
machine (about a second), so a slow or busy machine could write one that readers refuse (below 2^18,
docs/format.md 19.8.1); and a reader must see the work factor of a file before trusting it, which pyrage does not
show. Everything else (recipients, identities, decryption) is pyrage's. The files written here are plain age
files: tests open them with pyrage and with the ``age`` command.

The format (https://age-encryption.org/v1): a header of text lines, ``age-encryption.org/v1``, then one stanza per
recipient (``-> TYPE ARG...`` and a body in unpadded base64, 64 columns a line, its last line shorter), then
``--- MAC`` (HMAC-SHA256 of the header under a key derived from the file key); then a 16-byte nonce and the
payload in 64 KiB ChaCha20-Poly1305 chunks (the STREAM construction). Pure: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import CryptoError

try:
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError as error:  # pragma: no cover - only without the extra
    raise CryptoError(
        "encrypted shipments need the 'crypt' extra: pip install 'sneakernet[crypt]' (cryptography, pyrage)"
    ) from error

INTRO = b"age-encryption.org/v1\n"
SCRYPT = "scrypt"
#: The salt's label, before the stanza's 16 random bytes (age's spec).
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
#: A header longer than this is refused before it is read further (a recipients file to a few hundred ssh-rsa
#: keys stays well below it).
MAX_HEADER = 1 << 20
_BODY_COLUMNS = 64
_PAYLOAD_CHUNK = 64 * 1024
_ARG = re.compile(rb"[\x21-\x7e]+")  # age: visible ASCII, at least one
_B64 = re.compile(rb"[A-Za-z0-9+/]*")


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of an age header: its type (``X25519``, ``ssh-ed25519``, ``ssh-rsa``, ``scrypt``...),
    its arguments and its body (the wrapped file key, opaque here)."""

    type: str
    args: tuple[str, ...]
    body: bytes


def b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def b64decode(text: bytes, what: str) -> bytes:
    """Unpadded standard base64, as age writes it, strictly (no padding, no stray bits)."""
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise CryptoError(f"{what} is not age's unpadded base64")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise CryptoError(f"{what} is not age's unpadded base64") from None
    if b64encode(data) != text:
        raise CryptoError(f"{what} is not age's canonical unpadded base64")
    return data


def read_header(data: bytes, name: str) -> list[Stanza]:
    """The stanzas of the age file ``data`` (``name`` names it in messages). Raises :class:`CryptoError` when it
    is not a binary age v1 file with a well-formed header (an armored file is refused: sneakernet writes binary)."""
    if data.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----"):
        raise CryptoError(f"{name} is an armored age file; sneakernet reads only binary ones (age without -a)")
    if not data.startswith(INTRO):
        raise CryptoError(f"{name} is not an age file (it does not start with 'age-encryption.org/v1')")
    stanzas: list[Stanza] = []
    position = len(INTRO)
    while True:
        line, position = _line(data, position, name)
        if line.startswith(b"--- "):
            b64decode(line[4:], f"{name}'s header MAC")
            break
        if not line.startswith(b"-> "):
            raise CryptoError(f"{name}'s header has a line that is neither a stanza nor its end")
        words = line[3:].split(b" ")
        if not words or not all(_ARG.fullmatch(word) for word in words):
            raise CryptoError(f"{name}'s header has a stanza line with an empty or unreadable argument")
        body = b""
        while True:
            chunk, position = _line(data, position, name)
            if len(chunk) > _BODY_COLUMNS:
                raise CryptoError(f"{name}'s header has a stanza body line over {_BODY_COLUMNS} columns")
            body += chunk
            if len(chunk) < _BODY_COLUMNS:
                break
        stanzas.append(
            Stanza(words[0].decode("ascii"), tuple(w.decode("ascii") for w in words[1:]), b64decode(body, name))
        )
    if not stanzas:
        raise CryptoError(f"{name}'s header has no recipient stanza")
    return stanzas


def _line(data: bytes, position: int, name: str) -> tuple[bytes, int]:
    end = data.find(b"\n", position, MAX_HEADER)
    if end < 0:
        raise CryptoError(f"{name}'s header is cut short or longer than {MAX_HEADER} bytes")
    return data[position:end], end + 1


def scrypt_work_factor(stanzas: list[Stanza], name: str) -> int:
    """The log2 of scrypt's N in a passphrase file's one stanza. Raises :class:`CryptoError` unless the file has
    exactly one stanza, a well-formed scrypt one (age forbids a passphrase beside other recipients)."""
    if len(stanzas) != 1 or stanzas[0].type != SCRYPT:
        raise CryptoError(f"{name} is not an age passphrase file (one scrypt stanza, nothing else)")
    stanza = stanzas[0]
    if len(stanza.args) != 2 or not re.fullmatch(r"[1-9][0-9]?", stanza.args[1]) or len(stanza.body) != 32:
        raise CryptoError(f"{name}'s scrypt stanza is malformed")
    if len(b64decode(stanza.args[0].encode("ascii"), f"{name}'s scrypt salt")) != 16:
        raise CryptoError(f"{name}'s scrypt salt is not 16 bytes")
    return int(stanza.args[1])


def scrypt_encrypt(
    plaintext: bytes, passphrase: str, work_factor: int, random: Callable[[int], bytes] = secrets.token_bytes
) -> bytes:
    """An age file of ``plaintext`` that opens with ``passphrase``, its scrypt N = 2^``work_factor`` (r = 8,
    p = 1, as age). ``random`` is the seam tests use."""
    file_key = random(16)
    salt = random(16)
    wrap_key = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1).derive(
        passphrase.encode("utf-8")
    )
    body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
    header = INTRO + b"-> scrypt " + b64encode(salt) + b" %d\n" % work_factor + b64encode(body) + b"\n---"
    mac = hmac.HMAC(_hkdf(file_key, b"", b"header"), hashes.SHA256())
    mac.update(header)
    nonce = random(16)
    stream = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    pieces = [plaintext[at : at + _PAYLOAD_CHUNK] for at in range(0, len(plaintext), _PAYLOAD_CHUNK)] or [b""]
    payload = b"".join(
        stream.encrypt(n.to_bytes(11, "big") + (b"\x01" if n == len(pieces) - 1 else b"\x00"), piece, None)
        for n, piece in enumerate(pieces)
    )
    return header + b" " + b64encode(mac.finalize()) + b"\n" + nonce + payload


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(key)
