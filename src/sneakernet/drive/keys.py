"""A drive's ``keys/`` files (docs/format.md 19.8.1): the shipment identity wrapped for the user's recipients
(``keys/recipients.age``) and for a passphrase (``keys/passphrase.age``), written on every drive, and opened with
what the receiver holds (an identity file, a passphrase) to give back the shipment identity.

The pack makes the wrapped copies once (:func:`wrap_keys`), and writes the same bytes on every drive
(:func:`write_keys`); a reader opens them with :func:`unlock`. The key that reads a shipment never travels with it:
only these wrapped copies do. No message here holds a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import blake3

from ..crypto.keys import (
    Recipient,
    ShipmentIdentity,
    parse_recipient,
    parse_recipients,
    recipient_kinds,
    unwrap_with_identities,
    unwrap_with_passphrase,
    wrap_for_recipients,
    wrap_with_passphrase,
)
from ..errors import CryptoError, FormatError, UsageError
from ..format import CIPHERS, DEFAULT_CIPHER, KEYS_DIR, PASSPHRASE_NAME, RECIPIENTS_NAME, SealedRecord
from ..io.store import DriveStore

#: A wrapped key file is a few hundred bytes (a line of plaintext, a stanza per recipient); one larger than this
#: is refused before it is read whole (a recipients file to a thousand ssh-rsa keys stays below it).
KEY_FILE_LIMIT = 1 << 21
#: An identity or passphrase file is a few lines; a larger one is not one.
SECRET_FILE_LIMIT = 1 << 16


@dataclass(frozen=True)
class WrappedKeys:
    """The shipment identity and its wrapped copies, by name on the drive (``keys/recipients.age``, and
    ``keys/passphrase.age`` with a passphrase): the same bytes on every drive of the shipment."""

    identity: ShipmentIdentity = field(repr=False)
    files: dict[str, bytes] = field(repr=False)

    def summary(self) -> dict[str, int | bool]:
        """What pack's summary says of them, read off the files the drives carry (public, docs/format.md 19.8.5: a
        resumed pack's are the interrupted one's): how many recipients ``keys/recipients.age`` is wrapped for, and
        whether ``keys/passphrase.age`` is there. Never a key, nor whom."""
        wrapped = self.files.get(RECIPIENTS_NAME)
        recipients = len(recipient_kinds(wrapped)) if wrapped is not None else 0
        return {"recipients": recipients, "passphrase": PASSPHRASE_NAME in self.files}

    def records(self) -> list[SealedRecord]:
        """The public manifest's ``sealed`` records of the key files."""
        return [SealedRecord(name, len(data), blake3.blake3(data).hexdigest()) for name, data in self.files.items()]


@dataclass(frozen=True)
class Encryption:
    """How a pack encrypts (docs/format.md 19.8.1): the recipients the shipment identity is wrapped for (age
    ``age1...``, ``ssh-ed25519``, ``ssh-rsa`` public key lines), a passphrase, and the cipher of its chunks (19.8.2:
    AES-256-GCM unless ChaCha20-Poly1305 is asked for, on a CPU without AES instructions). Its ``repr`` hides the
    passphrase."""

    recipients: tuple[str, ...] = ()
    passphrase: str | None = field(default=None, repr=False)
    cipher: str = DEFAULT_CIPHER

    def __post_init__(self) -> None:
        if self.cipher not in CIPHERS:
            raise UsageError(f"cipher {str(self.cipher)[:40]!r} is not one of {', '.join(CIPHERS)}: give one of them")

    @classmethod
    def from_arguments(
        cls, recipients: tuple[str, ...], recipients_files: tuple[str, ...], passphrase: str | None,
        cipher: str = DEFAULT_CIPHER,
    ) -> Encryption:  # fmt: skip
        """The recipients given one by one and those of each recipients file (one a line, ``#`` comments, as age
        reads one), each checked now: a bad one is refused before anything is packed."""
        found = [parse_recipient(text).text for text in recipients]
        for path in recipients_files:
            found += [
                r.text for r in parse_recipients(_read_secret(path, "recipients file"), f"recipients file {path}")
            ]
        if not found and not passphrase:
            raise UsageError("an encrypted shipment needs a recipient (--encrypt-to) or a passphrase")
        return cls(tuple(found), passphrase, cipher)

    def wrap(self) -> WrappedKeys:
        """A fresh shipment identity, wrapped for these recipients and this passphrase."""
        return wrap_keys([parse_recipient(text) for text in self.recipients], self.passphrase)


def wrap_keys(recipients: list[Recipient], passphrase: str | None) -> WrappedKeys:
    """A fresh shipment identity, wrapped for ``recipients`` and/or ``passphrase`` (at least one of them)."""
    if not recipients and not passphrase:
        raise UsageError("an encrypted shipment needs a recipient (--encrypt-to) or a passphrase")
    identity = ShipmentIdentity.generate()
    files: dict[str, bytes] = {}
    if recipients:
        files[RECIPIENTS_NAME] = wrap_for_recipients(identity, recipients)
    if passphrase:
        files[PASSPHRASE_NAME] = wrap_with_passphrase(identity, passphrase)
    return WrappedKeys(identity, files)


def write_keys(store: DriveStore, keys: WrappedKeys) -> list[SealedRecord]:
    """Write the key files on the drive ``store`` (each atomically and durably) and return their records."""
    store.make_dir(KEYS_DIR)
    for name, data in keys.files.items():
        store.write_atomic(name, (data,))
    return keys.records()


@dataclass(frozen=True)
class Unlock:
    """What the receiver holds to open a shipment: the text of an identity file (``age -i``: age identities or
    an OpenSSH private key), or a passphrase, or both (tried in that order). Its ``repr`` shows neither."""

    identity: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    #: The shipment identities opened so far, by the BLAKE3 of the key files that gave them: every drive of a
    #: shipment carries the same keys/, so a passphrase's scrypt (a second, 256 MiB) runs once, not once a drive.
    opened: dict[str, ShipmentIdentity] = field(default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.identity is not None or self.passphrase is not None

    @classmethod
    def from_files(cls, identity_file: str | None = None, passphrase_file: str | None = None) -> Unlock:
        """The identity file's text and the passphrase file's first line (its newline not part of it)."""
        identity = _read_secret(identity_file, "identity file") if identity_file else None
        passphrase = read_passphrase_file(passphrase_file) if passphrase_file else None
        return cls(identity, passphrase)


def read_passphrase_file(path: str) -> str:
    """The passphrase of a passphrase file: its first line, without its newline (age's own scripts' form)."""
    lines = _read_secret(path, "passphrase file").splitlines()
    if not lines or not lines[0]:
        raise UsageError(f"the passphrase file {path} is empty: its first line is the passphrase")
    return lines[0]


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(SECRET_FILE_LIMIT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if len(data) > SECRET_FILE_LIMIT:
        raise UsageError(f"the {what} {path} is larger than any {what} (more than {SECRET_FILE_LIMIT} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the {what} {path} is not text") from None


def read_key_file(store: DriveStore, name: str) -> bytes | None:
    """The bytes of the key file ``name`` on the drive ``store``, None when it has none."""
    if store.stat(name) is None:
        return None
    try:
        with store.open(name) as handle:
            data = handle.read(KEY_FILE_LIMIT + 1)
    except OSError as exc:
        raise FormatError(f"cannot read {name} on {store.path}: {exc.strerror}") from exc
    if len(data) > KEY_FILE_LIMIT:
        raise FormatError(f"{name} on {store.path} is larger than any wrapped key file sneakernet writes")
    return data


def unlock(store: DriveStore, given: Unlock | ShipmentIdentity) -> ShipmentIdentity:
    """The shipment identity of the drive ``store``, unwrapped from its ``keys/`` files with ``given`` (an identity
    already unwrapped is taken as it is).

    Raises :class:`~sneakernet.errors.WrongKey` (exit 2) when nothing given opens them, :class:`CryptoError` when
    the drive has no key file that what was given could open (no passphrase file, say), FormatError for a key
    file that cannot be read."""
    if isinstance(given, ShipmentIdentity):
        return given
    if not given:
        raise CryptoError("the shipment is encrypted: give its key with --identity FILE or --passphrase-file FILE")
    recipients = read_key_file(store, RECIPIENTS_NAME)
    passphrase_file = read_key_file(store, PASSPHRASE_NAME)
    seen = blake3.blake3(b"%d:" % len(recipients or b"") + (recipients or b"") + (passphrase_file or b"")).hexdigest()
    if (known := given.opened.get(seen)) is not None:
        return known
    identity = _unwrap(given, recipients, passphrase_file)
    given.opened[seen] = identity
    return identity


def _unwrap(given: Unlock, recipients: bytes | None, passphrase_file: bytes | None) -> ShipmentIdentity:
    failure: CryptoError | None = None
    if given.identity is not None:
        if recipients is None:
            failure = CryptoError(f"this shipment has no {RECIPIENTS_NAME}: it opens with its passphrase only")
        else:
            try:
                return unwrap_with_identities(recipients, given.identity)
            except CryptoError as error:
                failure = error
    if given.passphrase is not None:
        if passphrase_file is None:
            failure = failure or CryptoError(f"this shipment has no {PASSPHRASE_NAME}: it opens with an identity only")
        else:
            return unwrap_with_passphrase(passphrase_file, given.passphrase)
    assert failure is not None
    raise failure
