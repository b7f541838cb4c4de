"""The on-disk format, version 1: names on a drive, the records of manifests and catalogs, and their JSON.

docs/format.md is the specification; this package is its executable form and must change with it. It owns
plain data and (de)serialisation only: no walking the source, no policy on when to write or fsync (that is
drive/), no reading of segments.

Every record is one JSON object on one line of a zstd-compressed JSON Lines file. Paths are bytes: a path
that is valid UTF-8 is written as ``"path"``, any other as ``"path_b64"`` (standard base64), so non-UTF-8
names and names with newlines survive.

The modules: ``names`` (file names, tags, limits), ``paths`` (paths in records), ``fields`` (the checks
parsers share), ``records`` (a manifest's records), ``catalog`` (the catalog's), ``headers`` (drive.json, the
two headers and the version dispatch), ``fingerprint``, ``checksums`` (B3SUMS), ``container`` (the record file:
zstd-compressed JSON Lines). The names other packages use are re-exported here.
"""

from .catalog import (
    CatalogDrive,
    CatalogEntry,
    catalog_record_from_json,
)
from .checksums import Checksums, checksum_lines, parse_checksums
from .fingerprint import (
    catalog_is_consistent,
    fingerprint,
    short_fingerprint,
)
from .headers import (
    MAX_FORMAT_VERSION,
    READERS,
    CatalogHeader,
    CatalogRecord,
    DriveLabel,
    ManifestHeader,
    ManifestRecord,
    VersionReader,
    version_reader,
)
from .names import (
    CATALOG_FORMAT,
    CATALOG_KINDS,
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_FORMAT,
    DRIVE_LABEL_NAME,
    DRIVE_NAME,
    FINISHED_NAME,
    FORMAT_VERSION,
    HEX64,
    JOURNAL_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MAX_CHUNK_SIZE,
    MAX_SEGMENTS,
    MAX_STORED_SIZE,
    METHOD_STORE,
    METHOD_ZSTD,
    METHODS,
    PARTIAL_SUFFIX,
    RESERVED_NAME,
    SEGMENT_NAME,
    SEGMENTS_DIR,
    SHORT_FINGERPRINT_DIGITS,
    drive_label,
    segment_name,
)
from .paths import (
    decode_path,
    encode_path,
    fold_name,
    is_reserved,
    path_json,
    show_path,
)
from .records import (
    BodyRecord,
    ChunkRecord,
    DirRecord,
    EndRecord,
    EntryRecord,
    FileRecord,
    HardlinkRecord,
    Metadata,
    SegmentRecord,
    SkippedRecord,
    SymlinkRecord,
    manifest_record_from_json,
)

__all__ = [
    "CATALOG_FORMAT",
    "CATALOG_KINDS",
    "CATALOG_NAME",
    "CHECKSUMS_NAME",
    "DRIVE_LABEL_FORMAT",
    "DRIVE_LABEL_NAME",
    "DRIVE_NAME",
    "FINISHED_NAME",
    "FORMAT_VERSION",
    "HEX64",
    "JOURNAL_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MAX_CHUNK_SIZE",
    "MAX_FORMAT_VERSION",
    "MAX_SEGMENTS",
    "MAX_STORED_SIZE",
    "METHODS",
    "METHOD_STORE",
    "METHOD_ZSTD",
    "PARTIAL_SUFFIX",
    "READERS",
    "RESERVED_NAME",
    "SEGMENTS_DIR",
    "SEGMENT_NAME",
    "SHORT_FINGERPRINT_DIGITS",
    "BodyRecord",
    "CatalogDrive",
    "CatalogEntry",
    "CatalogHeader",
    "CatalogRecord",
    "Checksums",
    "ChunkRecord",
    "DirRecord",
    "DriveLabel",
    "EndRecord",
    "EntryRecord",
    "FileRecord",
    "HardlinkRecord",
    "ManifestHeader",
    "ManifestRecord",
    "Metadata",
    "SegmentRecord",
    "SkippedRecord",
    "SymlinkRecord",
    "VersionReader",
    "catalog_is_consistent",
    "catalog_record_from_json",
    "checksum_lines",
    "decode_path",
    "drive_label",
    "encode_path",
    "fingerprint",
    "fold_name",
    "is_reserved",
    "manifest_record_from_json",
    "parse_checksums",
    "path_json",
    "segment_name",
    "short_fingerprint",
    "show_path",
    "version_reader",
]
