"""The shipment identity and its wrapped copies (docs/format.md 19.8.1), in the age format through pyrage.

A shipment is encrypted to a fresh age X25519 identity made for it alone (:class:`ShipmentIdentity`); the drives
carry only wrapped copies of it: ``keys/recipients.age``, an age file to the user's recipients (age ``age1...``,
``ssh-ed25519``, ``ssh-rsa``), and ``keys/passphrase.age``, an age scrypt file (age forbids a passphrase beside
other recipients in one file), whose plaintext is the identity's line and ``\\n``. ``age -d`` opens either by hand.
The identity then seals and opens the drive's sealed files (``index.age``, ``catalog.age``).

Pure: the callers read the files (an identity file, a recipients file, ``keys/*.age``) and hand the bytes or text
in. No message, exception or ``repr`` here holds a secret: identities, passphrases and keys are never echoed, a
bad line is named by its number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from ..errors import AuthenticationFailed, CryptoError, WrongKey
from . import agefile

try:
    import pyrage
except ImportError as error:  # only without the extra (a test imports it so)
    raise CryptoError(
        "encrypted shipments need the 'crypt' extra: pip install 'sneakernet[crypt]' (cryptography, pyrage)"
    ) from error

RECIPIENTS_FILE = "keys/recipients.age"
PASSPHRASE_FILE = "keys/passphrase.age"
#: The least scrypt work factor (log2 of N) a passphrase file may have: age's own ``-p`` writes 2^18 (the Go
#: age) or what takes about a second (rage, usually more); below it, guessing passphrases gets cheap.
MIN_WORK_FACTOR = 18
#: What sneakernet writes: the floor, about a second on one core here (issue 16). 2^18 x 8 x 128 bytes: 256 MiB.
WORK_FACTOR = 18

_SECRET_LINE = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")
_SSH_PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----")


class RecipientKind(str, Enum):
    """The recipient types sneakernet wraps for, named as age's stanzas name them."""

    X25519 = "X25519"
    SSH_ED25519 = "ssh-ed25519"
    SSH_RSA = "ssh-rsa"


@dataclass(frozen=True)
class Recipient:
    """A public key the shipment identity is wrapped for, parsed and checked (``text`` is public, as given)."""

    kind: RecipientKind
    text: str
    native: Any = field(repr=False, compare=False)


def parse_recipient(text: str) -> Recipient:
    """An ``age1...`` X25519 recipient or an ``ssh-ed25519``/``ssh-rsa`` public key line (its comment may follow).
    Raises :class:`CryptoError` naming what was expected."""
    text = text.strip()
    try:
        if text.startswith("age1"):
            return Recipient(RecipientKind.X25519, text, pyrage.x25519.Recipient.from_str(text))
        kind = text.split(" ", 1)[0]
        if kind in (RecipientKind.SSH_ED25519.value, RecipientKind.SSH_RSA.value):
            return Recipient(RecipientKind(kind), text, pyrage.ssh.Recipient.from_str(text))
    except pyrage.RecipientError:
        raise CryptoError(f"recipient {_shown(text)} is not a valid {_kind_word(text)}") from None
    raise CryptoError(
        f"recipient {_shown(text)} is neither an age X25519 recipient (age1...) nor an ssh-ed25519 or ssh-rsa "
        "public key"
    )


def parse_recipients(text: str, name: str = "the recipients file") -> list[Recipient]:
    """The recipients of a recipients file as age reads one: one a line, blank lines and ``#`` comments left out.
    Raises :class:`CryptoError` for a bad line (by number) or a file with none."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                found.append(parse_recipient(line))
            except CryptoError as error:
                raise CryptoError(f"{name}, line {number}: {error}") from None
    if not found:
        raise CryptoError(f"{name} names no recipient")
    return found


class ShipmentIdentity:
    """The age X25519 identity a shipment is encrypted to. Its ``repr`` shows only its public recipient."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.recipient: str = str(native.to_public())

    @classmethod
    def generate(cls) -> ShipmentIdentity:
        return cls(pyrage.x25519.Identity.generate())

    @classmethod
    def from_secret_line(cls, line: str) -> ShipmentIdentity:
        """The identity from its ``AGE-SECRET-KEY-1...`` line (the plaintext of a wrapped key file)."""
        if not _SECRET_LINE.fullmatch(line):
            raise CryptoError("the shipment identity is not one AGE-SECRET-KEY-1... line")
        try:
            return cls(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise CryptoError("the shipment identity is not a valid age X25519 identity") from None

    def __repr__(self) -> str:
        return f"ShipmentIdentity({self.recipient})"

    def secret_line(self) -> str:
        """The identity's secret ``AGE-SECRET-KEY-1...`` line: what the wrapped key files hold. Never log it."""
        return str(self._native)

    def seal(self, plaintext: bytes) -> bytes:
        """An age file of ``plaintext`` to this identity: a drive's ``index.age`` or ``catalog.age``."""
        return cast(bytes, pyrage.encrypt(plaintext, [self._native.to_public()]))

    def seal_stream(self, plaintext: Any, sealed: Any) -> None:
        """:meth:`seal` from a readable stream to a writable one (an age file of any length, in bounded memory:
        age's payload is 64 KiB chunks). The streams are the caller's; this reads and writes nothing else."""
        try:
            pyrage.encrypt_io(plaintext, sealed, [self._native.to_public()])
        except pyrage.EncryptError:
            raise CryptoError("a sealed file could not be encrypted to the shipment's key") from None

    def open_stream(self, sealed: Any, plaintext: Any, name: str) -> None:
        """:meth:`open` from a readable stream to a writable one. age authenticates each 64 KiB chunk before it
        is written out, and a cut or damaged file fails (:class:`AuthenticationFailed`) at the chunk concerned."""
        try:
            pyrage.decrypt_io(sealed, plaintext, [self._native])
        except pyrage.DecryptError:
            raise AuthenticationFailed(
                f"{name} does not open with the shipment's key: it is damaged or belongs to another shipment"
            ) from None

    def open(self, sealed: bytes, name: str) -> bytes:
        """The plaintext of the sealed file ``name`` (``index.age``, ``catalog.age``). Raises
        :class:`AuthenticationFailed` when it does not open: damaged, or sealed for another shipment."""
        agefile.read_header(sealed, name)
        try:
            return cast(bytes, pyrage.decrypt(sealed, [self._native]))
        except pyrage.DecryptError:
            raise AuthenticationFailed(
                f"{name} does not open with the shipment's key: it is damaged or belongs to another shipment"
            ) from None


def wrap_for_recipients(identity: ShipmentIdentity, recipients: list[Recipient]) -> bytes:
    """The bytes of ``keys/recipients.age``: the identity's line, an age file to every recipient."""
    if not recipients:
        raise CryptoError("an encrypted shipment needs at least one recipient or a passphrase")
    try:
        return cast(bytes, pyrage.encrypt(_plaintext(identity), [r.native for r in recipients]))
    except pyrage.EncryptError:
        raise CryptoError("the shipment key could not be wrapped for the recipients given") from None


def wrap_with_passphrase(identity: ShipmentIdentity, passphrase: str, work_factor: int = WORK_FACTOR) -> bytes:
    """The bytes of ``keys/passphrase.age``: the identity's line, an age scrypt file, N = 2^``work_factor``."""
    if not passphrase:
        raise CryptoError("the passphrase is empty")
    if work_factor < MIN_WORK_FACTOR:
        raise CryptoError(f"a scrypt work factor below 2^{MIN_WORK_FACTOR} is too weak to write")
    return agefile.scrypt_encrypt(_plaintext(identity), passphrase, work_factor)


def recipient_kinds(wrapped: bytes, name: str = RECIPIENTS_FILE) -> list[str]:
    """The recipient types a wrapped key file was sent to, one per stanza, as age names them (public: anyone can
    read them off the header, docs/format.md 19.8.5); stanzas of no type sneakernet writes are left out."""
    known = {kind.value for kind in RecipientKind} | {agefile.SCRYPT}
    return [stanza.type for stanza in agefile.read_header(wrapped, name) if stanza.type in known]


def parse_identities(text: str, name: str = "the identity file") -> list[Any]:
    """The identities of an identity file as ``age -i`` reads one: ``AGE-SECRET-KEY-1...`` lines (blank lines and
    ``#`` comments left out), or one unencrypted OpenSSH private key (ed25519 or RSA)."""
    if text.lstrip().startswith(_SSH_PRIVATE):
        try:
            return [pyrage.ssh.Identity.from_buffer(text.encode("utf-8"))]
        except pyrage.IdentityError:
            raise CryptoError(
                f"{name} is not an SSH private key sneakernet can use (ed25519 or RSA, without a passphrase)"
            ) from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not _SECRET_LINE.fullmatch(line):
            raise CryptoError(f"{name}, line {number}: not an age identity (AGE-SECRET-KEY-1...) line")
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise CryptoError(f"{name}, line {number}: not a valid age X25519 identity") from None
    if not found:
        raise CryptoError(f"{name} holds no identity")
    return found


def unwrap_with_identities(wrapped: bytes, identity_file: str, name: str = RECIPIENTS_FILE) -> ShipmentIdentity:
    """The shipment identity from ``keys/recipients.age`` (its bytes ``wrapped``), opened with the identities of
    ``identity_file`` (its text). Raises :class:`WrongKey` when none of them is a recipient of it."""
    identities = parse_identities(identity_file)
    kinds = recipient_kinds(wrapped, name)
    if agefile.SCRYPT in kinds:
        raise CryptoError(f"{name} is a passphrase file: open it with the passphrase, not an identity")
    try:
        plaintext = pyrage.decrypt(wrapped, identities)
    except pyrage.DecryptError:
        raise WrongKey(
            f"the identity given does not open {name}: the shipment was encrypted to other recipients "
            f"({', '.join(kinds) or 'none sneakernet knows'})"
        ) from None
    return _identity_from(cast(bytes, plaintext), name)


def unwrap_with_passphrase(wrapped: bytes, passphrase: str, name: str = PASSPHRASE_FILE) -> ShipmentIdentity:
    """The shipment identity from ``keys/passphrase.age``. Refuses, before any scrypt work, a file whose work
    factor is below 2^18 (:class:`CryptoError`); raises :class:`WrongKey` for a wrong passphrase."""
    work_factor = agefile.scrypt_work_factor(agefile.read_header(wrapped, name), name)
    if work_factor < MIN_WORK_FACTOR:
        raise CryptoError(
            f"{name} uses a scrypt work factor of 2^{work_factor}, below the 2^{MIN_WORK_FACTOR} sneakernet "
            "accepts: refusing it (a file this weak makes guessing the passphrase cheap)"
        )
    try:
        plaintext = pyrage.passphrase.decrypt(wrapped, passphrase)
    except pyrage.DecryptError:
        raise WrongKey(f"the passphrase given does not open {name}") from None
    return _identity_from(cast(bytes, plaintext), name)


def _plaintext(identity: ShipmentIdentity) -> bytes:
    return identity.secret_line().encode("ascii") + b"\n"


def _identity_from(plaintext: bytes, name: str) -> ShipmentIdentity:
    if not plaintext.endswith(b"\n") or b"\n" in plaintext[:-1] or not plaintext.isascii():
        raise CryptoError(f"{name} opened but does not hold a shipment identity (one AGE-SECRET-KEY-1... line)")
    return ShipmentIdentity.from_secret_line(plaintext[:-1].decode("ascii"))


def _shown(text: str) -> str:
    """A public key as messages show it: enough to recognise, never a whole line pasted back (it may be a secret
    pasted by mistake where a public key belongs)."""
    return repr(text[:12] + "...") if len(text) > 12 else repr(text)


def _kind_word(text: str) -> str:
    return "age X25519 recipient" if text.startswith("age1") else f"{text.split(' ', 1)[0]} public key"
