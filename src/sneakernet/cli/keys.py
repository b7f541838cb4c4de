"""The key options of the commands that read or write an encrypted shipment (docs/format.md 19.8): pack's
recipients, passphrase and cipher, the reading commands' identity and passphrase; a passphrase typed on the terminal is
asked here, never echoed, never written anywhere. The crypt extra is imported only when one is given."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from ..errors import UsageError
from ..format import CIPHER_CHACHA, CIPHERS, DEFAULT_CIPHER
from .context import on_command_line
from .exits import run

if TYPE_CHECKING:
    from ..drive.keys import Encryption, Unlock

T = TypeVar("T")


#: Where the key options' values wait in ``ctx.meta`` for :func:`unlock_given` (they are not parameters of the
#: commands: one call reads them all).
_GIVEN = "sneakernet.key_options"


def _keep(ctx: click.Context, param: click.Parameter, value: object) -> None:
    ctx.meta.setdefault(_GIVEN, {})[param.name] = value


def key_options(command: Callable[..., T]) -> Callable[..., T]:
    """--identity, --passphrase-file and --passphrase of a command that reads an encrypted shipment; the command
    calls :func:`unlock_given` for what they give."""
    for option in reversed(
        [
            click.option(
                "--identity", "identity_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
                expose_value=False, callback=_keep,
                help="Open an encrypted shipment with this identity file: age-keygen's (AGE-SECRET-KEY-1...) or an "
                "SSH private key (ed25519, RSA) whose public key it was packed to.",
            ),
            click.option(
                "--passphrase-file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
                expose_value=False, callback=_keep,
                help="Open an encrypted shipment with the passphrase on the first line of FILE.",
            ),
            click.option(
                "--passphrase", "ask_passphrase", is_flag=True, expose_value=False, callback=_keep,
                help="Open an encrypted shipment with a passphrase, asked on the terminal.",
            ),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def unlock_given(ctx: click.Context) -> Unlock | None:
    """What the user gave (:func:`key_options`) to open an encrypted shipment, None when nothing was (the drives
    are then read without the key: verify checks what is stored, the others refuse an encrypted drive in one
    line)."""
    given = ctx.meta.get(_GIVEN, {})
    identity_file, passphrase_file = given.get("identity_file"), given.get("passphrase_file")
    ask_passphrase = bool(given.get("ask_passphrase"))
    if not (identity_file or passphrase_file or ask_passphrase):
        return None
    if passphrase_file and ask_passphrase:
        raise click.UsageError("--passphrase asks for it, --passphrase-file reads it: give one of them")

    def opened() -> Unlock:
        from ..drive.keys import Unlock

        unlock = Unlock.from_files(identity_file, passphrase_file)
        if ask_passphrase:
            unlock = Unlock(unlock.identity, ask_on_terminal("Passphrase of the shipment", confirm=False))
        return unlock

    return run(ctx, opened)


def encryption_options(command: Callable[..., T]) -> Callable[..., T]:
    """pack's --encrypt-to, --recipients-file, --passphrase, --passphrase-file, --identity (resume) and --cipher."""
    for option in reversed(
        [
            click.option(
                "--encrypt-to", "encrypt_to", metavar="RECIPIENT", multiple=True,
                help="Encrypt the shipment to this public key: age X25519 (age1...) or an SSH public key line "
                "(ssh-ed25519, ssh-rsa) (repeat; docs/format.md 19.8). Only its private key reads the shipment; "
                "anyone can verify it.",
            ),
            click.option(
                "--recipients-file", "recipients_files", metavar="FILE", multiple=True,
                type=click.Path(dir_okay=False, path_type=str),
                help="Encrypt to every public key in FILE, one a line, '#' comments (as age -R reads it; repeat).",
            ),
            click.option(
                "--passphrase", "ask_passphrase", is_flag=True,
                help="Encrypt to a passphrase too, asked twice on the terminal (scrypt, 2^18).",
            ),
            click.option(
                "--passphrase-file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
                help="Encrypt to the passphrase on the first line of FILE (for scripts).",
            ),
            click.option(
                "--identity", "identity_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
                help="With --resume of an encrypted pack: the identity file of one of its recipients (age-keygen's "
                "or an SSH private key), which reads what the interrupted pack wrote (a passphrase pack: its "
                "--passphrase-file does).",
            ),
            click.option(
                "--cipher", type=click.Choice(CIPHERS), default=None, metavar="NAME",
                help=f"The cipher of an encrypted shipment's chunks (docs/format.md 19.8.2): {DEFAULT_CIPHER}, or "
                f"{CIPHER_CHACHA} for a CPU without AES instructions.  [default: {DEFAULT_CIPHER}]",
            ),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def encryption_given(
    ctx: click.Context,
    encrypt_to: tuple[str, ...],
    recipients_files: tuple[str, ...],
    passphrase_file: str | None,
    ask_passphrase: bool,
    cipher: str | None = None,
) -> Encryption | None:
    """How pack encrypts, from its options (None: not encrypted); every recipient checked before anything is read."""
    if not (encrypt_to or recipients_files or passphrase_file or ask_passphrase):
        if on_command_line(ctx, "cipher"):  # a profile's cipher is for the packs it encrypts
            raise click.UsageError("--cipher goes with --encrypt-to, --recipients-file or a passphrase")
        return None
    if passphrase_file and ask_passphrase:
        raise click.UsageError("--passphrase asks for it, --passphrase-file reads it: give one of them")

    def given() -> Encryption:
        from ..drive.keys import Encryption, read_passphrase_file

        passphrase = read_passphrase_file(passphrase_file) if passphrase_file else None
        if ask_passphrase:
            passphrase = ask_on_terminal("Passphrase to encrypt the shipment to", confirm=True)
        return Encryption.from_arguments(encrypt_to, recipients_files, passphrase, cipher or DEFAULT_CIPHER)

    return run(ctx, given)


def resume_unlock(ctx: click.Context, identity_file: str | None, resume: bool, encrypted: bool) -> Unlock | None:
    """pack --resume's key to what an interrupted encrypted pack wrote: ``--identity FILE``, None when not given."""
    if identity_file is None:
        return None
    if not (resume and encrypted):
        raise click.UsageError("--identity goes with --resume of an encrypted pack (--encrypt-to ...)")

    def opened() -> Unlock:
        from ..drive.keys import Unlock

        return Unlock.from_files(identity_file)

    return run(ctx, opened)


def ask_on_terminal(prompt: str, confirm: bool) -> str:
    """A passphrase typed on the terminal, not echoed (twice when ``confirm``: a typo would lock the shipment)."""
    if not sys.stdin.isatty():
        raise UsageError("--passphrase asks on the terminal: run it on one, or give --passphrase-file FILE")
    passphrase: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    if not passphrase:
        raise UsageError("the passphrase is empty")
    return passphrase
