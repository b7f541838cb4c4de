"""The names on a drive and the format's constants: file names, format tags, limits, methods, and the names
of drives and segments (docs/format.md sections 2, 3 and 11)."""

from __future__ import annotations

import re

#: The format version this release writes unless a version 2 feature is asked for (docs/format.md 19, intro).
FORMAT_VERSION = 1
#: Format version 2 (docs/format.md section 19): lanes, parity drives, encryption.
FORMAT_VERSION_2 = 2

DRIVE_LABEL_NAME = "drive.json"
MANIFEST_NAME = "manifest.jsonl.zst"
CATALOG_NAME = "catalog.jsonl.zst"
CHECKSUMS_NAME = "B3SUMS"
SEGMENTS_DIR = "segments"
#: Suffix of a file still being written; a drive holding one is unfinished.
PARTIAL_SUFFIX = ".partial"
#: The top-level name restore works in, DEST/.sneakernet (its journal, parts and catalog copy): no shipment path
#: may be it or lie under it (section 12.2), compared as a case-insensitive, normalising filesystem would.
RESERVED_NAME = ".sneakernet"
#: What stays in DEST/.sneakernet once a restore is finished and its journal removed (see restorer.finished).
FINISHED_NAME = "finished.json"
#: Restore's journal in DEST/.sneakernet while a restore is in progress (see restorer.journal).
JOURNAL_NAME = "journal.sqlite3"

DRIVE_LABEL_FORMAT = "sneakernet-drive"
MANIFEST_FORMAT = "sneakernet-manifest"
CATALOG_FORMAT = "sneakernet-catalog"

#: Readers refuse chunks whose declared raw size exceeds this: it bounds the memory a hostile drive can make a
#: reader allocate, and is far above any useful chunk size.
MAX_CHUNK_SIZE = 64 * 2**20
#: Readers refuse chunks whose stored size exceeds this (a raw chunk of the largest size as a stored frame, with
#: room to spare): it bounds the bytes a reader reads for one chunk.
MAX_STORED_SIZE = MAX_CHUNK_SIZE + MAX_CHUNK_SIZE // 128 + 1024
#: The short fingerprint read over the phone: 20 hex digits (80 bits) in groups of four.
SHORT_FINGERPRINT_DIGITS = 20

#: The largest drive number (per role), drive count, lane, lane_seq and piece count a reader accepts: a hundred
#: thousand drives of 20 TB are 2 EB, far more than any shipment; a hostile number beyond it is refused before
#: anything is sized by it (docs/format.md sections 11 and 19.9).
MAX_DRIVES = 100_000

#: A drive's role in version 2 (docs/format.md 19.3): it holds file data, or parity over data drives.
ROLE_DATA = "data"
ROLE_PARITY = "parity"
ROLES = (ROLE_DATA, ROLE_PARITY)
#: The directory of a parity drive holding the covered data drives' drive.json and manifest copies.
COVERED_DIR = "covered"
#: Parity drives are format version 2 (docs/format.md 19.2).
PARITY_VERSION = 2


def is_parity_label(raw: object) -> bool:
    """Whether a parsed drive.json says it is a parity drive's, of the version this release reads (to pick its
    parser; one of a newer version is the data drive reader's to refuse, in the words every reader uses).

    Here, not beside the parity records (format/parity.py), so that telling a drive's role costs no import of
    them: verify asks it of every drive, and most shipments have no parity drive."""
    return isinstance(raw, dict) and raw.get("role") == ROLE_PARITY and raw.get("version") == PARITY_VERSION


#: The chunk ciphers of version 2's encrypted shipments (docs/format.md 19.8.2), as the manifest header's ``cipher``
#: names them; readers refuse any other.
CIPHER_AES_GCM = "aes-256-gcm"
CIPHER_CHACHA = "chacha20-poly1305"
CIPHERS = (CIPHER_AES_GCM, CIPHER_CHACHA)
#: What pack writes unless told otherwise: AES-256-GCM, about 3.5 times ChaCha20-Poly1305's speed on a CPU with AES
#: instructions (measured, 19.8.2), which keeps an encrypted pack within 10% of a clear one's time.
DEFAULT_CIPHER = CIPHER_AES_GCM
#: The one parity code of version 2 (docs/format.md 19.7.3); readers refuse any other.
PARITY_CODE = "gf256-0x11d-snapraid-cauchy"
#: The files a ``sealed`` record may name (docs/format.md 19.8.3): the sealed index and catalog, the key files.
INDEX_NAME = "index.age"
SEALED_CATALOG_NAME = "catalog.age"
KEYS_DIR = "keys"
RECIPIENTS_NAME = "keys/recipients.age"
PASSPHRASE_NAME = "keys/passphrase.age"
SEALED_NAMES = (INDEX_NAME, SEALED_CATALOG_NAME, RECIPIENTS_NAME, PASSPHRASE_NAME)

METHOD_ZSTD = "zstd"
METHOD_STORE = "store"
METHODS = (METHOD_ZSTD, METHOD_STORE)
CATALOG_KINDS = ("file", "dir", "symlink", "hardlink")

HEX64 = re.compile(r"[0-9a-f]{64}")
SEGMENT_NAME = re.compile(r"segments/s[0-9]{6}\.seg")
#: Segment names have six digits, so a drive holds at most this many segments.
MAX_SEGMENTS = 999_999


def drive_label(index: int) -> str:
    """The directory name and label of drive ``index`` (1-based): ``drive-0001``."""
    return f"drive-{index:04d}"


#: The names :func:`drive_label` gives.
DRIVE_NAME = re.compile(r"drive-[0-9]{4,}")


def parity_label(index: int) -> str:
    """The directory name and label of parity drive ``index`` (1-based, numbered apart from data drives, docs/
    format.md 19.3): ``parity-0001``."""
    return f"parity-{index:04d}"


#: The names :func:`parity_label` gives.
PARITY_NAME = re.compile(r"parity-[0-9]{4,}")


def role_label(role: str, index: int) -> str:
    """The label of drive ``index`` of ``role``: ``drive-NNNN`` for data, ``parity-NNNN`` for parity."""
    return parity_label(index) if role == ROLE_PARITY else drive_label(index)


def segment_name(number: int) -> str:
    """The path of segment ``number`` (1-based) relative to its drive: ``segments/s000001.seg``."""
    return f"{SEGMENTS_DIR}/s{number:06d}.seg"
