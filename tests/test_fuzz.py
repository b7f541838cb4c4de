"""Fuzzing the readers of the record files: manifests (``DriveReader.records``) and catalogs (``CatalogReader.records``,
and restore's ``read_catalog``), plus the chunk decoder.

Every case starts from the real files of a packed shipment. Structured mutations work on the decompressed JSON
lines (drop, duplicate and move lines; give fields values of other JSON types, huge numbers, long strings, lone
surrogates, bad or non-UTF-8 base64 paths; insert deeply nested, non-UTF-8, or overlong lines) and recompress them;
raw mutations flip, insert, delete and cut bytes of the compressed file itself. A mutated manifest goes into a copy of
the drive with drive.json re-pinned to it (size and BLAKE3), so the structural checks run rather than only the hash.

The property: a reader raises :class:`sneakernet.errors.FormatError` (or a subclass) or reads the file through,
never anything else; verify reports such a drive and never calls it intact; and a few big inputs (a 2 GiB line, 600
MB of records, a 2 GiB zstd window, deep nesting, a 1 MiB number) stay within 512 MiB of address space, in a child
process under ``RLIMIT_AS``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
import zstandard
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import drive_dirs, write_file
from craft import rle_frame
from sneakernet import PackOptions, pack
from sneakernet.chunks.compress import decode_chunk, store_frame
from sneakernet.drive import CatalogReader, DriveReader
from sneakernet.errors import FormatError, UnsupportedVersion, UsageError
from sneakernet.format import CATALOG_NAME, DRIVE_LABEL_NAME, MANIFEST_NAME, DriveLabel
from sneakernet.format.container import MAX_LINE
from sneakernet.restorer.catalog import read_catalog
from sneakernet.verifier import Mode, verify

FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("SNEAKERNET_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


# --- the corpus: the files of a real shipment --------------------------------------------------------------------


@dataclasses.dataclass
class Corpus:
    drive: Path
    manifest: bytes
    manifest_lines: list[bytes]
    catalog: bytes
    catalog_lines: list[bytes]
    label: DriveLabel


def _lines(compressed: bytes) -> list[bytes]:
    text = zstandard.ZstdDecompressor().stream_reader(compressed).read()
    assert text.endswith(b"\n")
    return text[:-1].split(b"\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Drive 1 of a two-drive shipment with every record type: chunks, segments, file pieces (final and not),
    directories, symlinks, a hard link, paths that need path_b64."""
    base = tmp_path_factory.mktemp("fuzz")
    src = base / "src"
    write_file(src / "big.bin", os.urandom(700_000))
    for i in range(8):
        write_file(src / "d" / f"f{i}.txt", f"file {i}\n".encode() * (i + 1))
    write_file(src / os.fsdecode(b"bad-\xff"), b"x\n")
    write_file(src / "new\nline", b"y\n")
    write_file(src / "empty", b"")
    (src / "emptydir").mkdir()
    os.symlink("d/f0.txt", src / "link")
    os.link(src / "d" / "f1.txt", src / "hard")
    pack(str(src), out=str(base / "out"), drive_size=1_300_000, options=PackOptions(chunk_size=256 * 1024, reserve=0))
    drive = drive_dirs(base / "out")[0]
    assert len(drive_dirs(base / "out")) == 2
    manifest, catalog = (drive / MANIFEST_NAME).read_bytes(), (drive / CATALOG_NAME).read_bytes()
    label = DriveReader(str(drive)).label
    return Corpus(drive, manifest, _lines(manifest), catalog, _lines(catalog), label)


# --- mutations ---------------------------------------------------------------------------------------------------

HUGE_TEXT = "p" * 300_000
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 1, 2**31, 2**63, 2**64, 10**30, -(10**30), 67_108_865, 67_634_177]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "\ud800",
            "a\ud800b",
            "\udcff",
            "\x00",
            "/etc/passwd",
            "../x",
            "a/../b",
            "segments/s000001.seg",
            "segments/s000001.seg\n",
            "zstd",
            "store",
            "header",
            "end",
            "chunk",
            "file",
            "0" * 64,
            "A" * 64,
            HUGE_TEXT,
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "type",
            "path",
            "path_b64",
            "target",
            "target_b64",
            "id",
            "offset",
            "length",
            "chunk",
            "chunk_offset",
            "final",
            "size",
            "blake3",
            "mode",
            "mtime_ns",
            "uid",
            "gid",
            "records",
            "segment",
            "stored_size",
            "raw_size",
            "method",
            "stored_blake3",
            "raw_blake3",
            "name",
            "chunks",
            "format",
            "version",
            "shipment",
            "drive",
            "drives",
            "fingerprint",
            "kind",
            "first_drive",
            "last_drive",
            "chunk_size",
            "changed",
        ]
    ),
    st.text(max_size=5),
)
B64_VALUES = st.one_of(
    st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(["YmFk/w==", "////", "not base64!", "YQ", "YQ=", "YQ==YQ==", "=", "\u00e9\u00e9\u00e9\u00e9"]),
    JSON_VALUES,
)
RAW_LINES = st.one_of(
    st.binary(max_size=64),
    st.integers(1, MAX_LINE - 1).map(lambda depth: b"[" * depth),
    st.integers(900, 200_000).map(lambda depth: b'{"type":"dir","x":' + b"[" * depth + b"]" * depth + b"}"),
    st.integers(4000, 20_000).map(lambda digits: b'{"type":"end","records":' + b"9" * digits + b"}"),
    st.sampled_from(
        [
            b"",
            b"{}",
            b"[]",
            b"null",
            b'"type"',
            b'{"type":null}',
            b'{"type":1}',
            b'{"type":["end"]}',
            b'{"type":"end"}',
            b'{"type":"end","records":-1}',
            b'{"type":"end","records":1e3}',
            b'{"type":"chunk","type":"end","records":3}',
            b'{"type":"dir","path":"\xff"}',
            b'{"type":"dir","path":"\\ud800"}',
            b'{"type":"hardlink","path":"a","target_b64":"////"}',
            b'{"type":"header","format":"sneakernet-manifest"}',
            b'{"type":"file","path":"a","path_b64":"YQ=="}',
            b'{"type":"entry","kind":"file","path":"a"}',
            b'{"type":"drive"}',
            b"\x00\x00\x00",
            b"\r",
            b'{"type":"end","records":NaN}',
            b'{"type":"end","records":Infinity}',
            b" " * (MAX_LINE - 1),
            b"x" * MAX_LINE,
            b"x" * (MAX_LINE + 5),
        ]
    ),
)


@st.composite
def line_mutations(draw: st.DrawFn, lines: list[bytes]) -> tuple[list[bytes], bool]:
    """``lines`` (JSON, without newlines) after 1 to 4 mutations, and whether the file keeps its final newline."""
    out = list(lines)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "duplicate", "move", "set", "delete", "b64", "replace", "insert"]))
        # Mostly a record after the header (the header is refused first, which would hide the rest).
        at = draw(st.integers(min(1, len(out) - 1), len(out) - 1)) if out and draw(st.integers(0, 7)) else 0
        if not out:
            op = "insert"
        if op == "drop":
            del out[at]
        elif op == "duplicate":
            out.insert(draw(st.integers(0, len(out))), out[at])
        elif op == "move":
            out.insert(draw(st.integers(0, len(out) - 1)), out.pop(at))
        elif op in ("set", "delete", "b64"):
            try:
                record = json.loads(out[at])
            except (ValueError, RecursionError):
                continue
            if not isinstance(record, dict):
                continue
            key = draw(st.sampled_from(sorted(record))) if record and draw(st.booleans()) else draw(KEYS)
            if op == "delete":
                record.pop(key, None)
            elif op == "b64":
                record[draw(st.sampled_from(["path_b64", "target_b64"]))] = draw(B64_VALUES)
                if draw(st.booleans()):
                    record.pop("path", None)
                    record.pop("target", None)
            else:
                record[key] = draw(JSON_VALUES)
            out[at] = json.dumps(record, separators=(",", ":")).encode("ascii")
        elif op == "replace":
            out[at] = draw(RAW_LINES)
        else:
            out.insert(draw(st.integers(0, len(out))), draw(RAW_LINES))
    return out, draw(st.booleans()) or draw(st.booleans())


def compress(data: bytes, how: str) -> bytes:
    """Recompress: one frame with or without content size and checksum, two frames, or a cut frame."""
    if how == "plain":
        return zstandard.ZstdCompressor(level=3, write_checksum=False).compress(data)
    if how == "two frames":
        half = len(data) // 2
        one = zstandard.ZstdCompressor(level=3, write_checksum=True)
        return one.compress(data[:half]) + one.compress(data[half:])
    if how == "cut":
        # A block per line, so that cutting the last few bytes keeps the lines before.
        chunker = zstandard.ZstdCompressor(level=3, write_checksum=True).chunker()
        blocks = [b"".join(chunker.compress(line)) + b"".join(chunker.flush()) for line in data.splitlines(True)]
        frame = b"".join(blocks) + b"".join(chunker.finish())
        return frame[: max(0, len(frame) - 7)]
    return zstandard.ZstdCompressor(level=9, write_checksum=True, write_content_size=False).compress(data)


COMPRESSIONS = st.sampled_from(["checksummed stream", "plain", "two frames", "cut"])


def raw_mutation(data: bytes, draw: st.DrawFn) -> bytes:
    """1 to 6 edits of the compressed bytes: flips, inserted or deleted bytes, a cut."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "append"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if op == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and out:
            del out[at : at + draw(st.integers(1, 16))]
        elif op == "cut":
            del out[at:]
        else:
            out += draw(st.binary(min_size=1, max_size=32))
    return bytes(out)


# --- feeding them to the readers -----------------------------------------------------------------------------------


def install_manifest(corpus: Corpus, where: Path, data: bytes, with_segments: bool = False) -> Path:
    """A drive directory whose manifest is ``data`` and whose drive.json pins exactly that manifest."""
    if where.exists():
        shutil.rmtree(where)
    if with_segments:
        shutil.copytree(corpus.drive, where)
    else:
        where.mkdir(parents=True)
    (where / MANIFEST_NAME).write_bytes(data)
    label = dataclasses.replace(corpus.label, manifest_size=len(data), manifest_blake3=blake3.blake3(data).hexdigest())
    (where / DRIVE_LABEL_NAME).write_bytes(label.to_bytes())
    return where


def _reason(exc: FormatError) -> str:
    """What kind of refusal, for hypothesis' statistics: the message without paths and numbers."""
    words = str(exc).replace("'", " ").split()
    return " ".join(w for w in words if "/" not in w and not any(c.isdigit() for c in w))[:60]


def read_manifest(drive: Path) -> str:
    """Every pass a reader makes over the manifest; 'ok' or why it was refused. Anything else propagates."""
    outcome = "ok"
    for only in (None, ("chunk",), ("file", "dir", "symlink", "hardlink")):
        try:
            for _ in DriveReader(str(drive)).records(only=only):
                pass
        except FormatError as exc:
            outcome = outcome if outcome != "ok" else _reason(exc)
    event(f"manifest: {outcome}")
    return outcome


def read_catalog_file(path: Path) -> str:
    """Every pass over the catalog, and restore's reading of it; 'ok' or why it was refused."""
    outcome = "ok"
    for only in (None, ("drive",), ("entry",)):
        try:
            for _ in CatalogReader(str(path)).records(only=only):
                pass
        except FormatError as exc:
            outcome = outcome if outcome != "ok" else _reason(exc)
    try:
        read_catalog(str(path))
    # restore's wording of a damaged catalog (exit code 2): "use another drive's catalog"; a version number mutated
    # into one no release reads is refused as such (UnsupportedVersion, exit code 2), not called damage
    except (UsageError, UnsupportedVersion) as exc:
        outcome = outcome if outcome != "ok" else "restore: " + _reason(exc)
    event(f"catalog: {outcome}")
    return outcome


@FUZZ_SETTINGS
@given(data=st.data(), how=COMPRESSIONS)
def test_manifest_reader_on_mutated_lines(corpus: Corpus, tmp_path: Path, data: st.DataObject, how: str) -> None:
    lines, newline = data.draw(line_mutations(corpus.manifest_lines), label="lines")
    text = b"\n".join(lines) + (b"\n" if newline else b"")
    read_manifest(install_manifest(corpus, tmp_path / "drive", compress(text, how)))


@FUZZ_SETTINGS
@given(data=st.data())
def test_manifest_reader_on_mutated_bytes(corpus: Corpus, tmp_path: Path, data: st.DataObject) -> None:
    read_manifest(install_manifest(corpus, tmp_path / "drive", raw_mutation(corpus.manifest, data.draw)))


@FUZZ_SETTINGS
@given(data=st.data(), how=COMPRESSIONS)
def test_catalog_reader_on_mutated_lines(corpus: Corpus, tmp_path: Path, data: st.DataObject, how: str) -> None:
    lines, newline = data.draw(line_mutations(corpus.catalog_lines), label="lines")
    path = tmp_path / CATALOG_NAME
    path.write_bytes(compress(b"\n".join(lines) + (b"\n" if newline else b""), how))
    read_catalog_file(path)


@FUZZ_SETTINGS
@given(data=st.data())
def test_catalog_reader_on_mutated_bytes(corpus: Corpus, tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / CATALOG_NAME
    path.write_bytes(raw_mutation(corpus.catalog, data.draw))
    read_catalog_file(path)


@settings(FUZZ_SETTINGS, max_examples=max(1, FUZZ_SETTINGS.max_examples // 4))
@given(data=st.data(), how=COMPRESSIONS, raw=st.booleans())
def test_verify_never_calls_a_mutated_manifest_intact(
    corpus: Corpus, tmp_path: Path, data: st.DataObject, how: str, raw: bool
) -> None:
    """verify (which reads the manifest several times and maps chunks and pieces) reports, never raises, and never
    says intact: the catalog pins the original manifest."""
    if raw:
        mutated = raw_mutation(corpus.manifest, data.draw)
    else:
        lines, newline = data.draw(line_mutations(corpus.manifest_lines), label="lines")
        mutated = compress(b"\n".join(lines) + (b"\n" if newline else b""), how)
    drive = install_manifest(corpus, tmp_path / "drive", mutated, with_segments=True)
    report = verify([str(drive)], mode=Mode.QUICK).drives[0]
    assert report.ok == (mutated == corpus.manifest), report.problems


@FUZZ_SETTINGS
@given(data=st.data(), raw_size=st.integers(1, 300_000))
def test_chunk_decoder_raises_only_format_errors(data: st.DataObject, raw_size: int) -> None:
    """decode_chunk on mutated store and zstd frames, and on random bytes, with any declared raw size."""
    content = data.draw(st.binary(min_size=1, max_size=2000), label="content") * data.draw(st.integers(1, 50))
    kind = data.draw(st.sampled_from(["store", "zstd", "random"]))
    if kind == "store":
        frame = store_frame(content)
    elif kind == "zstd":
        frame = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(content)
    else:
        frame = content[:64]
    if data.draw(st.booleans()):
        frame = raw_mutation(frame, data.draw)
    size = data.draw(st.sampled_from([raw_size, len(content)]))
    try:
        raw = decode_chunk(frame, size)
    except FormatError:
        return
    assert len(raw) == size


# --- bounded memory on big inputs ----------------------------------------------------------------------------------

#: Reads one manifest (a drive) or catalog (a file) under RLIMIT_AS = 512 MiB; prints the outcome (the exception's
#: class name and message, or ok) and the peak RSS in KiB.
BOUNDED_CHILD = r"""
import json, resource, sys
limit = 512 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from sneakernet.drive import CatalogReader, DriveReader
from sneakernet.errors import FormatError
kind, path = sys.argv[1:]
outcome = "ok"
try:
    reader = DriveReader(path) if kind == "manifest" else CatalogReader(path)
    count = sum(1 for _ in reader.records())
except FormatError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)[:200]
except BaseException as exc:
    outcome = "CRASH " + type(exc).__name__ + ": " + str(exc)[:200]
# VmHWM: this process's own peak (ru_maxrss would keep the parent's peak from before the exec).
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "maxrss_kib": peak}))
"""


def _header(corpus: Corpus, catalog: bool) -> bytes:
    return (corpus.catalog_lines if catalog else corpus.manifest_lines)[0] + b"\n"


def _window_frame(window_log: int) -> bytes:
    """The start of a zstd frame whose window descriptor asks for 2**window_log bytes, then raw blocks of data."""
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out += bytes([0b00 << 6, (window_log - 10) << 3])  # no content size, not single segment; exponent, mantissa 0
    block = b'{"type":"dir"}\n' * 1000
    for last in (0, 0, 1):
        out += (last | (0 << 1) | (len(block) << 3)).to_bytes(3, "little") + block
    return bytes(out)


def _streamed(header: bytes, line: bytes, count: int, end: bytes = b"") -> bytes:
    """A zstd frame of ``header``, ``count`` times ``line``, then ``end``: compressed as it is produced."""
    compressor = zstandard.ZstdCompressor(level=1, write_checksum=True)
    chunker = compressor.chunker(chunk_size=1 << 20)
    parts = [b"".join(chunker.compress(header))]
    for _ in range(count):
        parts.extend(chunker.compress(line))
    parts.extend(chunker.compress(end))
    parts.extend(chunker.finish())
    return b"".join(parts)


def big_input(corpus: Corpus, case: str) -> tuple[str, bytes, str]:
    """(manifest or catalog, the file's bytes, the outcome expected: 'ok' or 'FormatError')."""
    long_path = "p" * (MAX_LINE - 100)
    if case == "a 2 GiB line":
        # A header, then 2 GiB of spaces without a newline, as RLE blocks: 64 KB on disk.
        return (
            "manifest",
            zstandard.ZstdCompressor().compress(_header(corpus, False)) + rle_frame(2**31, 2**31, 32),
            ("FormatError"),
        )
    if case == "600 MB of valid records":
        line = json.dumps({"type": "dir", "path": long_path, "mode": 493, "mtime_ns": 0, "uid": 0, "gid": 0}).encode()
        count = 600
        end = json.dumps({"type": "end", "records": count + 2}, separators=(",", ":")).encode() + b"\n"
        return "manifest", _streamed(_header(corpus, False), line.replace(b" ", b"") + b"\n", count, end), "ok"
    if case == "2 GiB window":
        return "manifest", _window_frame(31), "FormatError"
    if case == "deep nesting":
        return (
            "catalog",
            zstandard.ZstdCompressor().compress(_header(corpus, True) + b"[" * (MAX_LINE - 1) + b"\n"),
            ("FormatError"),
        )
    if case == "a 1 MiB number":
        line = b'{"type":"end","records":' + b"7" * (MAX_LINE - 100) + b"}\n"
        return "catalog", zstandard.ZstdCompressor().compress(_header(corpus, True) + line), "FormatError"
    assert case == "600 MB catalog entries"
    entry = {"type": "entry", "path": long_path, "kind": "dir", "size": 0, "first_drive": 1, "last_drive": 1}
    line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
    end = json.dumps({"type": "end", "records": 602}, separators=(",", ":")).encode() + b"\n"
    return "catalog", _streamed(_header(corpus, True), line, 600, end), "ok"


BIG_CASES = ["a 2 GiB line", "600 MB of valid records", "2 GiB window", "deep nesting", "a 1 MiB number",
             "600 MB catalog entries"]  # fmt: skip


@pytest.mark.parametrize("case", BIG_CASES)
def test_big_inputs_stay_within_bounded_memory(corpus: Corpus, tmp_path: Path, case: str) -> None:
    kind, data, expected = big_input(corpus, case)
    if kind == "manifest":
        target = install_manifest(corpus, tmp_path / "drive", data)
    else:
        target = tmp_path / CATALOG_NAME
        target.write_bytes(data)
    child = subprocess.run(
        [sys.executable, "-c", BOUNDED_CHILD, kind, str(target)], capture_output=True, timeout=300, check=False
    )
    assert child.returncode == 0, child.stderr.decode()
    result = json.loads(child.stdout)
    print(case, result)
    assert result["outcome"].split(":")[0] == expected, result
    assert result["maxrss_kib"] < 128 * 1024, result


def test_the_big_frames_are_what_they_claim() -> None:
    """The hand-made frames above decode as intended when no limit applies (so the readers' refusals are theirs)."""
    window = _window_frame(20)
    assert zstandard.ZstdDecompressor().stream_reader(window).read().startswith(b'{"type":"dir"}\n')
    rle = rle_frame(3 * 2**17, 3 * 2**17, 32)
    assert zstandard.ZstdDecompressor().decompress(rle) == b" " * (3 * 2**17)
    assert struct.unpack("<Q", rle[6:14])[0] == 3 * 2**17
