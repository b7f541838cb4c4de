#!/usr/bin/env python3
"""Time sneakernet against the tools a user would pick instead, on a generated ML-like dataset.

    python bench/compare.py --size 4GB --repeats 3

1. Generates (once, cached by the manifest of its parameters) a deterministic dataset in the work directory: large
   .npy-like arrays (float32-like and int64-like data, one of them bigger than a drive), JPEG-like incompressible
   blobs, and small compressible text files plus JSONL shards, in the mix of issue 5 (zstd -3 ratio about 0.81).
2. Times, in the same run, alternating the sides of each comparison (A B A B ...), with ``sync`` between steps
   and a warm page cache (nothing is dropped; the dataset is read once before timing):
   pack (sneakernet vs ``tar | zstd -3 -T0 | split`` + ``b3sum``), verify (vs ``b3sum -c``), restore (vs
   ``cat | zstd -d | tar -x``, with and without ``b3sum -c`` first) and restic backup / check / restore when restic
   is installed. Restores go to a tmpfs mounted by this script when it runs as root.
3. Prints a table of medians, MB/s of dataset bytes, throughput ratios and peak RSS, the targets of issue 5, and
   writes every raw timing with machine information as JSON.
4. Checks once that sneakernet's restored tree equals the dataset, byte for byte.

Standard library only; runs the ``sneakernet`` executable next to this interpreter, else the one on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = Path("/tmp/sneakernet-bench")
GENERATOR_VERSION = 1
#: The mix of issue 5 was measured on 4.3 GB holding 22k small text files and 2k image-like files.
REFERENCE_SIZE = 4_300_000_000
REFERENCE_TEXT_FILES = 22_000
REFERENCE_IMAGE_FILES = 2_000
BLOCK = 4 * 2**20
MB = 1_000_000
RESTIC_PASSWORD = "sneakernet-bench"
SPLIT_SIZE = "1G"

TARGETS = (
    # (step, alternative tool id, least throughput ratio sneakernet / alternative)
    ("pack", "tar", 2.0),
    ("verify", "b3sum", 0.6),
    ("restore", "pipeline", 1.0),
)
RSS_TARGET_MB = 200.0

LABELS = {
    ("pack", "sneakernet"): "sneakernet pack",
    ("pack", "tar"): f"tar | zstd -3 -T0 | split -b {SPLIT_SIZE} + b3sum",
    ("pack", "restic"): "restic backup",
    ("verify", "sneakernet"): "sneakernet verify",
    ("verify", "b3sum"): "b3sum -c",
    ("verify", "restic"): "restic check --read-data",
    ("restore", "sneakernet"): "sneakernet restore",
    ("restore", "pipeline"): "cat | zstd -d | tar -x",
    ("restore", "checked-pipeline"): "b3sum -c && cat | zstd -d | tar -x",
    ("restore", "restic"): "restic restore",
}


class BenchError(Exception):
    """A refusal or a failed command: the benchmark stops with this message."""


# --- sizes ----------------------------------------------------------------------------------------------------

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """Bytes in ``text``, read as sneakernet reads sizes: 300MB and 4GB are decimal, 4GiB and 4G binary."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in _UNITS:
        raise argparse.ArgumentTypeError(f"cannot read size {text!r}: give e.g. 300MB, 4GB or 4GiB")
    return int(Decimal(match.group(1)) * _UNITS[match.group(2).upper()])


def show_size(size: float) -> str:
    """``size`` bytes in decimal units, e.g. ``4.3 GB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.3g} {unit}"
        size /= 1000
    return f"{size:.3g} TB"


# --- the dataset ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    """One file of the dataset: where, what kind of bytes, how many."""

    path: str
    kind: str  # text (small .txt/.jsonl) | shard (JSONL) | image | float32 | int64
    size: int


def scaled_count(reference: int, size: int, least: int) -> int:
    """``reference`` files at the reference size, scaled linearly to ``size``."""
    return max(least, round(reference * size / REFERENCE_SIZE))


def spread_sizes(rng: random.Random, count: int, total: int, low: int, high: int) -> list[int]:
    """``count`` sizes in [low, high], random but pulled so that they sum to about ``total``."""
    sizes = [rng.randint(low, high) for _ in range(count)]
    want = min(max(total / count, low), high)
    have = sum(sizes) / count
    if want > have:
        return [round(high - (high - s) * (high - want) / (high - have)) for s in sizes]
    return [round(low + (s - low) * (want - low) / (have - low)) for s in sizes]


def plan_text(rng: random.Random, size: int) -> list[FileSpec]:
    """About 20% of the bytes: many small .txt/.jsonl files of 0.5-8 KB, the rest in JSONL shards of <= 64 MB."""
    count = scaled_count(REFERENCE_TEXT_FILES, size, 50)
    files = [
        FileSpec(f"text/docs-{i // 1000:03d}/doc-{i:06d}.{'jsonl' if i % 2 else 'txt'}", "text", rng.randint(512, 8192))
        for i in range(count)
    ]
    rest = int(0.20 * size) - sum(f.size for f in files)
    shards = -(-rest // (64 * MB)) if rest > 0 else 0
    files += [FileSpec(f"text/corpus/train-{i:05d}.jsonl", "shard", rest // shards) for i in range(shards)]
    return files


def plan_images(rng: random.Random, size: int) -> list[FileSpec]:
    """About 20% of the bytes: JPEG-like files of 50-500 KB of random bytes."""
    low, high = 50_000, 500_000
    total = int(0.20 * size)
    count = max(scaled_count(REFERENCE_IMAGE_FILES, size, 10), -(-total // high))
    sizes = spread_sizes(rng, count, total, low, high)
    return [FileSpec(f"images/part-{i // 500:02d}/img-{i:06d}.jpg", "image", s) for i, s in enumerate(sizes)]


def plan_arrays(size: int, drive_size: int, taken: int) -> list[FileSpec]:
    """The rest: one float32 array bigger than a drive, int64 labels (2%), several float32 arrays."""
    room = max(size - taken, 0)
    big = min(max(int(0.30 * size), int(1.02 * drive_size)), int(0.9 * room))
    labels = min(int(0.02 * size), room - big)
    rest = room - big - labels
    count = min(max(round(rest / (256 * MB)), 3), 12)
    files = [
        FileSpec("arrays/big/weights-full.npy", "float32", npy_size(big, 4)),
        FileSpec("arrays/labels.npy", "int64", npy_size(labels, 8)),
    ]
    files += [FileSpec(f"arrays/layer-{i:02d}.npy", "float32", npy_size(rest // count, 4)) for i in range(count)]
    return files


def plan_dataset(size: int, drive_size: int, seed: int) -> list[FileSpec]:
    """Every file of the dataset, deterministic in its arguments."""
    rng = random.Random(f"plan:{seed}")
    files = plan_text(rng, size) + plan_images(rng, size)
    return files + plan_arrays(size, drive_size, sum(f.size for f in files))


def vocabulary(seed: int) -> list[str]:
    """5,000 made-up words of 2-9 letters."""
    rng = random.Random(f"words:{seed}")
    return ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(5000)]


def words(rng: random.Random, vocab: list[str], size: int) -> bytes:
    """About ``size`` bytes of words (about 0.38 with zstd -3)."""
    return " ".join(rng.choices(vocab, k=size // 6 + 1)).encode()[:size]


def text_bytes(rng: random.Random, vocab: list[str], size: int, jsonl: bool) -> Iterator[bytes]:
    """A .txt file of lines of words, or a JSONL file of records holding them."""
    done, line_no = 0, 0
    while done < size:
        line = words(rng, vocab, min(rng.randint(60, 4000), BLOCK))
        if jsonl:
            line = json.dumps({"id": line_no, "lang": "xx", "text": line.decode()}).encode()
        piece = (line + b"\n")[: size - done]
        done, line_no = done + len(piece), line_no + 1
        yield piece


#: The top byte of a little-endian float32 of small weights: a sign and a few exponents (2 bits of entropy).
_EXPONENTS = bytes([0x3C] * 100 + [0xBC] * 100 + [0x3B] * 20 + [0xBB] * 20 + [0x3D] * 8 + [0xBD] * 8)


def float32_block(rng: random.Random, size: int) -> bytes:
    """Float32-like bytes (zstd -3 ratio about 0.91): random mantissas under a low-entropy sign and exponent."""
    data = bytearray(rng.randbytes(size))
    data[3::4] = data[3::4].translate(_EXPONENTS)
    return bytes(data)


def int64_block(rng: random.Random, size: int) -> bytes:
    """Little-endian int64-like class labels below 1024 (zstd -3 ratio about 0.3)."""
    data = bytearray(size)
    data[0::8] = rng.randbytes(len(data[0::8]))
    data[1::8] = rng.randbytes(len(data[1::8])).translate(bytes(i % 4 for i in range(256)))
    return bytes(data)


NPY_HEADER = 128


def npy_size(size: int, itemsize: int) -> int:
    """The size of an .npy file of a 1-d array, as close to ``size`` as whole items allow."""
    return NPY_HEADER + max(size - NPY_HEADER, 0) // itemsize * itemsize


def npy_header(dtype: str, itemsize: int, size: int) -> bytes:
    """The 128-byte NPY 1.0 header of a 1-d array filling a file of ``size`` bytes."""
    shape = (size - NPY_HEADER) // itemsize
    text = f"{{'descr': '<{dtype}', 'fortran_order': False, 'shape': ({shape},), }}"
    text = text.ljust(NPY_HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def array_bytes(rng: random.Random, kind: str, size: int) -> Iterator[bytes]:
    """An .npy file: its header, then array data block by block."""
    itemsize = 4 if kind == "float32" else 8
    header = npy_header("f4" if kind == "float32" else "i8", itemsize, size)
    yield header
    left = size - len(header)
    make = float32_block if kind == "float32" else int64_block
    while left:
        step = min(left, BLOCK)
        yield make(rng, step)
        left -= step


def image_bytes(rng: random.Random, size: int) -> Iterator[bytes]:
    """A JPEG-like file: SOI and JFIF headers, random bytes, EOI."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00\xff\xdb\x00\x43\x00"
    yield head
    yield rng.randbytes(max(size - len(head) - 2, 0))
    yield b"\xff\xd9"


def file_bytes(spec: FileSpec, seed: int, vocab: list[str]) -> Iterator[bytes]:
    """The content of one file: each file has its own generator, so content does not depend on order."""
    rng = random.Random(f"{seed}:{spec.path}")
    if spec.kind in ("text", "shard"):
        return text_bytes(rng, vocab, spec.size, spec.path.endswith(".jsonl"))
    if spec.kind == "image":
        return image_bytes(rng, spec.size)
    return array_bytes(rng, spec.kind, spec.size)


def write_dataset(files: list[FileSpec], root: Path, seed: int) -> int:
    """Write every file under ``root``; return the bytes written."""
    vocab, total = vocabulary(seed), 0
    for number, spec in enumerate(files, 1):
        path = root / spec.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for piece in file_bytes(spec, seed, vocab):
                total += handle.write(piece)
        if number % 5000 == 0 or spec.size > 100 * MB:
            note(f"  generated {number}/{len(files)} files, {show_size(total)}")
    return total


def summarise(files: list[FileSpec]) -> dict[str, dict[str, int]]:
    """Files and bytes by kind."""
    kinds: dict[str, dict[str, int]] = {}
    for spec in files:
        entry = kinds.setdefault(spec.kind, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += spec.size
    return kinds


def ensure_generated(
    home: Path, name: str, params: dict[str, Any], generate: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any]]:
    """``home/name`` and its manifest, made by ``generate`` (which writes the tree and returns at least its
    ``files`` and ``bytes``) unless ``home`` already holds one made with the same ``params``."""
    root = home / name
    manifest_path = home / "manifest.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("params") == params:
            note(f"{name}: cached in {root} ({show_size(manifest['bytes'])}, {manifest['files']} files)")
            return root, manifest
    shutil.rmtree(home, ignore_errors=True)
    note(f"{name}: generating into {root}")
    started = time.perf_counter()
    manifest = {"params": params, **generate(root)}
    seconds = manifest["generate_seconds"] = round(time.perf_counter() - started, 1)
    note(f"{name}: {manifest['files']} files, {show_size(manifest['bytes'])} generated in {seconds} s")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return root, manifest


def ensure_dataset(workdir: Path, size: int, drive_size: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The dataset's directory and manifest, generated unless a dataset of the same parameters is cached."""
    files = plan_dataset(size, drive_size, seed)
    params = {"generator": GENERATOR_VERSION, "size": size, "seed": seed, "big_file": max(f.size for f in files)}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]

    def generate(root: Path) -> dict[str, Any]:
        total = write_dataset(files, root, seed)
        return {"files": len(files), "bytes": total, "kinds": summarise(files)}

    return ensure_generated(workdir / f"dataset-{key}", "data", params, generate)


def warm_cache(root: Path) -> float:
    """Read every file once, so that both sides of every comparison start from a warm page cache."""
    started = time.perf_counter()
    for path in walk_files(root):
        if not path.is_file() or path.is_symlink():
            continue  # a real tree has symlinks, dangling ones too: only regular files hold data to read
        with open(path, "rb", buffering=0) as handle:
            while handle.read(BLOCK):
                pass
    return time.perf_counter() - started


# --- running and measuring ------------------------------------------------------------------------------------


@dataclass
class Command:
    """What to run: an argv, where, with which extra environment."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Measured:
    """One timed run."""

    step: str
    tool: str
    repeat: int
    seconds: float
    #: The ``sync`` after the run (not part of ``seconds``): what the run left dirty in the page cache.
    sync_seconds: float
    #: Peak RSS of the largest single process of the run (ru_maxrss of the waited-for tree), KiB.
    max_rss_kib: int
    command: str


def shell(script: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Command:
    """A pipeline run by bash with pipefail, so any failing stage fails the run."""
    return Command(["bash", "-o", "pipefail", "-c", script], cwd, env or {})


def run_timed(command: Command, log: Path) -> tuple[float, int, int]:
    """Run ``command``; return wall seconds, peak RSS in KiB and the exit code.

    os.wait4 gives the child's resource usage; its ru_maxrss is the largest of the child and every descendant it
    waited for, so a pipeline under bash reports its largest single process.
    """
    env = {**os.environ, **command.env}
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command.argv, cwd=command.cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, proc.returncode


def timed_sync() -> float:
    """``sync``, and how long it took."""
    started = time.perf_counter()
    os.sync()
    return time.perf_counter() - started


def run_checked(command: Command, log: Path) -> tuple[float, int]:
    """Run ``command`` timed; raise with its stderr when it fails."""
    seconds, rss, code = run_timed(command, log)
    if code != 0:
        tail = log.with_suffix(".err").read_text(errors="replace")[-2000:]
        raise BenchError(f"{command.shown()} exited {code}; stderr ends with:\n{tail}")
    return seconds, rss


def output_of(argv: list[str], cwd: Path | None = None) -> str:
    """The first line a small command prints, or why there is none."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the sides of each comparison -----------------------------------------------------------------------------


@dataclass
class Side:
    """One tool in one step: ``prepare`` does the untimed setup of repeat i and returns the command to time;
    ``finish`` does the untimed clean-up (and the correctness check) after it."""

    step: str
    tool: str
    prepare: Callable[[int], Command]
    finish: Callable[[int], None] = lambda repeat: None


class Bench:
    """Paths, tools and the sides of the three comparisons."""

    def __init__(self, args: argparse.Namespace, data: Path, dataset_bytes: int) -> None:
        self.work: Path = args.workdir
        self.data = data
        self.dataset_bytes = dataset_bytes
        self.drive_size: int = args.drive_size
        self.sneakernet = find_sneakernet()
        self.restic = shutil.which("restic")
        self.logs = self.work / "logs"
        self.sn_out = self.work / "sneakernet-out"
        self.tar_out = self.work / "tar-out"
        self.restic_repo = self.work / "restic-repo"
        self.restore_root: Path = self.work / "restore"
        self.restore_note = ""
        self.fresh_restores = False
        self.checks: dict[str, Any] = {}
        self.logs.mkdir(parents=True, exist_ok=True)

    # - environment

    def sn_env(self) -> dict[str, str]:
        return {"SNEAKERNET_STATE_DIR": str(self.work / "verify-state")}

    def restic_env(self) -> dict[str, str]:
        return {"RESTIC_PASSWORD": RESTIC_PASSWORD, "RESTIC_CACHE_DIR": str(self.work / "restic-cache")}

    def drives(self) -> list[str]:
        return sorted(str(p) for p in self.sn_out.glob("drive-*"))

    def restore_target(self, tool: str, repeat: int) -> Path:
        return self.restore_root / f"{tool}-{repeat}"

    def drop_restore(self, tool: str, repeat: int) -> None:
        """Delete a restore target on the tmpfs; on disk, fresh directories are kept (ext4 creates files slowly
        after mass deletions)."""
        if not self.fresh_restores:
            shutil.rmtree(self.restore_target(tool, repeat))

    # - pack

    def pack_sneakernet(self, repeat: int) -> Command:
        shutil.rmtree(self.sn_out, ignore_errors=True)
        argv = [self.sneakernet, "pack", str(self.data), "--out", str(self.sn_out)]
        return Command([*argv, "--drive-size", str(self.drive_size), "--json"], env=self.sn_env())

    def pack_tar(self, repeat: int) -> Command:
        shutil.rmtree(self.tar_out, ignore_errors=True)
        (self.tar_out / "parts").mkdir(parents=True)
        script = (
            f"tar -cf - -C {q(self.data.parent)} {q(self.data.name)} | zstd -3 -T0 -q "
            f"| split -b {SPLIT_SIZE} - parts/part. && cd parts && b3sum part.* > ../B3SUMS"
        )
        return shell(script, cwd=self.tar_out)

    def pack_restic(self, repeat: int) -> Command:
        shutil.rmtree(self.restic_repo, ignore_errors=True)
        init = ["restic", "init", "--quiet", "--repo", str(self.restic_repo)]
        done = subprocess.run(init, env={**os.environ, **self.restic_env()}, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{shlex.join(init)} exited {done.returncode}: {done.stderr.strip()}")
        argv = ["restic", "--repo", str(self.restic_repo), "backup", "--quiet", str(self.data)]
        return Command(argv, env=self.restic_env())

    # - verify

    def verify_sneakernet(self, repeat: int) -> Command:
        return Command([self.sneakernet, "verify", *self.drives(), "--restart", "--quiet"], env=self.sn_env())

    def verify_b3sum(self, repeat: int) -> Command:
        return Command(["b3sum", "--check", "--quiet", "../B3SUMS"], cwd=self.tar_out / "parts")

    def verify_restic(self, repeat: int) -> Command:
        argv = ["restic", "--repo", str(self.restic_repo), "check", "--read-data", "--quiet"]
        return Command(argv, env=self.restic_env())

    # - restore

    def restore_sneakernet(self, repeat: int) -> Command:
        target = self.restore_target("sneakernet", repeat)
        argv = [self.sneakernet, "restore", *self.drives(), "--into", str(target), "--quiet"]
        return Command(argv, env=self.sn_env())

    def restore_pipeline(self, repeat: int, checked: bool = False) -> Command:
        target = self.restore_target("checked-pipeline" if checked else "pipeline", repeat)
        target.mkdir(parents=True)
        check = "b3sum --check --quiet ../B3SUMS && " if checked else ""
        return shell(f"{check}cat part.* | zstd -d -q | tar -x -C {q(target)}", cwd=self.tar_out / "parts")

    def restore_restic(self, repeat: int) -> Command:
        target = self.restore_target("restic", repeat)
        argv = ["restic", "--repo", str(self.restic_repo), "restore", "latest", "--quiet", "--target", str(target)]
        return Command(argv, env=self.restic_env())

    def finish_restore(self, tool: str, restored: Path, full: bool) -> Callable[[int], None]:
        """After a restore: on the first repeat, compare the restored tree with the dataset; then drop it."""

        def finish(repeat: int) -> None:
            if repeat == 0:
                root = self.restore_target(tool, repeat) / restored
                self.checks[tool] = compare_trees(self.data, root, full)
                note(f"  check {tool}: {'OK' if self.checks[tool]['ok'] else 'MISMATCH'} {self.checks[tool]}")
            self.drop_restore(tool, repeat)

        return finish

    # - the comparisons

    def sides(self, step: str) -> list[Side]:
        restic = self.restic is not None
        if step == "pack":
            found = [Side(step, "sneakernet", self.pack_sneakernet), Side(step, "tar", self.pack_tar)]
            return found + ([Side(step, "restic", self.pack_restic)] if restic else [])
        if step == "verify":
            found = [Side(step, "sneakernet", self.verify_sneakernet), Side(step, "b3sum", self.verify_b3sum)]
            return found + ([Side(step, "restic", self.verify_restic)] if restic else [])
        in_tar = Path(self.data.name)
        found = [
            Side(step, "sneakernet", self.restore_sneakernet, self.finish_restore("sneakernet", Path(), True)),
            Side(step, "pipeline", self.restore_pipeline, self.finish_restore("pipeline", in_tar, False)),
            Side(
                step,
                "checked-pipeline",
                lambda repeat: self.restore_pipeline(repeat, checked=True),
                self.finish_restore("checked-pipeline", in_tar, False),
            ),
        ]
        in_restic = self.data.relative_to(self.data.anchor)
        restic_side = Side(step, "restic", self.restore_restic, self.finish_restore("restic", in_restic, False))
        return found + ([restic_side] if restic else [])


def q(path: Path | str) -> str:
    return shlex.quote(str(path))


def find_sneakernet() -> str:
    """The sneakernet to time: the one next to this interpreter (its venv), else the one on PATH, with its
    bytecode written (see :func:`write_bytecode`)."""
    beside = Path(sys.executable).parent / "sneakernet"
    found = str(beside) if beside.exists() else shutil.which("sneakernet")
    if not found:
        raise BenchError("no sneakernet executable next to this python or on PATH: install it (pip install -e .)")
    write_bytecode(found)
    return found


def write_bytecode(sneakernet: str) -> None:
    """Compile the package the ``sneakernet`` executable runs, once, so that no timed run compiles its sources:
    an editable install under PYTHONDONTWRITEBYTECODE=1 would otherwise pay about 50 ms of compiling at every start,
    which a user's installed copy never pays. The whole package: a command loads only the modules it uses, so
    running one command (``--version``) would leave the others to be compiled at every timed start."""
    python = sys.executable
    with contextlib.suppress(OSError, UnicodeDecodeError), open(sneakernet, encoding="utf-8") as script:
        first = script.readline()
        if first.startswith("#!") and os.path.exists(first[2:].strip()):
            python = first[2:].strip()  # a console script names its interpreter
    code = "import compileall, os, sneakernet; compileall.compile_dir(os.path.dirname(sneakernet.__file__), quiet=1)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-c", code], env=env, capture_output=True, check=False)


def time_step(bench: Bench, step: str, repeats: int) -> list[Measured]:
    """Time every side of ``step`` ``repeats`` times, alternating the sides, with sync before and after each."""
    runs = []
    for repeat in range(repeats):
        for side in bench.sides(step):
            command = side.prepare(repeat)
            os.sync()
            seconds, rss = run_checked(command, bench.logs / f"{step}-{side.tool}-{repeat}")
            after = timed_sync()
            runs.append(Measured(step, side.tool, repeat, seconds, after, rss, command.shown()))
            note(
                f"{step:8} {side.tool:17} #{repeat + 1}  {seconds:8.2f} s  {rss / 1024:7.0f} MB RSS  sync {after:.2f} s"
            )
            side.finish(repeat)
    return runs


# --- the restore target ---------------------------------------------------------------------------------------


def mem_available() -> int:
    """MemAvailable from /proc/meminfo, in bytes (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def mount_tmpfs(bench: Bench) -> bool:
    """Mount a tmpfs for restore targets (root only); on failure use fresh, never-deleted directories."""
    root = bench.restore_root
    size = int(bench.dataset_bytes * 1.25) + 512 * 2**20
    root.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(root):
        subprocess.run(["umount", str(root)], check=False)
    reason = try_mount(root, size, bench.dataset_bytes)
    if not reason:
        bench.restore_note = f"tmpfs of {show_size(size)} mounted at {root}"
        return True
    bench.fresh_restores = True
    bench.restore_root = root / time.strftime("fresh-%Y%m%d-%H%M%S")
    bench.restore_note = (
        f"NOT a tmpfs ({reason}): fresh directories on {fs_type(root)} under {bench.restore_root}, never deleted "
        "during the run; restore figures include the target filesystem"
    )
    return False


def try_mount(root: Path, size: int, dataset_bytes: int) -> str:
    """Mount a tmpfs of ``size`` bytes on ``root``; return why not, or nothing when it is mounted."""
    if os.geteuid() != 0:
        return "not running as root"
    if mem_available() < size + dataset_bytes:
        return f"MemAvailable {show_size(mem_available())} is short of a {show_size(size)} tmpfs plus the dataset"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True)
    return "" if done.returncode == 0 else f"mount failed: {done.stderr.decode(errors='replace').strip()}"


def unmount(root: Path) -> None:
    if subprocess.run(["umount", str(root)], capture_output=True).returncode != 0:
        note(f"warning: could not unmount {root}: run `umount {root}`")


# --- correctness ----------------------------------------------------------------------------------------------


def walk_files(root: Path) -> Iterator[Path]:
    for top, _dirs, names in os.walk(root):
        for name in names:
            yield Path(top) / name


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime in ns) of every non-directory under ``root``."""
    out = {}
    for path in walk_files(root):
        info = path.lstat()
        out[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return out


def same_bytes(one: Path, other: Path) -> bool:
    with open(one, "rb", buffering=0) as a, open(other, "rb", buffering=0) as b:
        while True:
            block = a.read(BLOCK)
            if block != b.read(BLOCK):
                return False
            if not block:
                return True


def compare_trees(expected: Path, actual: Path, full: bool) -> dict[str, Any]:
    """Paths and sizes of every file, and (``full``) every byte; mtimes are counted, not required."""
    want, have = listing(expected), listing(actual)
    # A finished restore keeps its record in DEST (docs/restore.md); a journal or part left there is still extra.
    have.pop(".sneakernet/finished.json", None)
    missing, extra = sorted(want.keys() - have.keys()), sorted(have.keys() - want.keys())
    common = sorted(want.keys() & have.keys())
    wrong_size = [p for p in common if want[p][0] != have[p][0]]
    wrong_bytes = [p for p in common if full and p not in wrong_size and not same_bytes(expected / p, actual / p)]
    other_mtime = sum(1 for p in common if want[p][1] // 10**9 != have[p][1] // 10**9)
    return {
        "ok": not (missing or extra or wrong_size or wrong_bytes),
        "compared": "paths, sizes and every byte" if full else "paths and sizes",
        "files": len(have),
        "missing": missing[:10],
        "extra": extra[:10],
        "wrong_size": wrong_size[:10],
        "wrong_bytes": wrong_bytes[:10],
        "mtime_differs": other_mtime,
    }


# --- the report -----------------------------------------------------------------------------------------------


def median_of(runs: list[Measured], step: str, tool: str) -> float | None:
    seconds = [r.seconds for r in runs if r.step == step and r.tool == tool]
    return statistics.median(seconds) if seconds else None


def summary_rows(runs: list[Measured], dataset_bytes: int) -> list[dict[str, Any]]:
    """One row per step and tool: median, MB/s of the dataset, sneakernet/this throughput ratio, peak RSS."""
    rows = []
    for step, tool in dict.fromkeys((r.step, r.tool) for r in runs):
        median = median_of(runs, step, tool)
        ours = median_of(runs, step, "sneakernet")
        assert median is not None
        ratio = ours and median / ours if tool != "sneakernet" else None
        rss = max(r.max_rss_kib for r in runs if r.step == step and r.tool == tool) / 1024
        rows.append(
            {
                "step": step,
                "tool": tool,
                "label": LABELS[(step, tool)],
                "median_seconds": round(median, 3),
                "mb_per_second": round(dataset_bytes / MB / median, 1),
                "sneakernet_ratio": round(ratio, 3) if ratio else None,
                "peak_rss_mb": round(rss, 1),
            }
        )
    return rows


def target_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of issue 5, each with the measured value and met / not met."""
    out = []
    for step, tool, least in TARGETS:
        row = next((r for r in rows if r["step"] == step and r["tool"] == tool), None)
        value = row["sneakernet_ratio"] if row else None
        out.append(
            {
                "target": f"{step}: >= {least}x {LABELS[(step, tool)]}",
                "value": f"{value:.2f}x" if value is not None else "n/a",
                "met": value is not None and value >= least,
            }
        )
    rss = max((r["peak_rss_mb"] for r in rows if r["tool"] == "sneakernet"), default=None)
    out.append(
        {
            "target": f"peak RSS of sneakernet pack/verify/restore < {RSS_TARGET_MB:.0f} MB",
            "value": f"{rss:.0f} MB" if rss is not None else "n/a",
            "met": rss is not None and rss < RSS_TARGET_MB,
        }
    )
    return out


def table(rows: list[dict[str, Any]], targets: list[dict[str, Any]]) -> str:
    """The printed report."""
    lines = [
        f"{'step':8} {'tool':44} {'median s':>9} {'MB/s':>8} {'sn/this':>8} {'peak RSS MB':>12}",
        "-" * 94,
    ]
    for r in rows:
        ratio = f"{r['sneakernet_ratio']:.2f}x" if r["sneakernet_ratio"] else "-"
        lines.append(
            f"{r['step']:8} {r['label']:44} {r['median_seconds']:9.2f} {r['mb_per_second']:8.0f} {ratio:>8}"
            f" {r['peak_rss_mb']:12.0f}"
        )
    lines += [
        "MB/s: dataset bytes / median seconds. sn/this: sneakernet's throughput / this tool's (>1: sneakernet faster).",
        "peak RSS: the largest single process of the run; b3sum maps its input, so its RSS counts mapped file pages.",
        "",
        "targets (issue 5):",
    ]
    lines += [f"  {t['target']:60} {t['value']:>8}  {'met' if t['met'] else 'NOT MET'}" for t in targets]
    return "\n".join(lines)


def mount_of(path: Path) -> tuple[str, str]:
    """(mount point, filesystem type) holding ``path``, from /proc/mounts."""
    best = ("/", "unknown")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, point, kind = line.split()[:3]
            if str(path.resolve()).startswith(point.rstrip("/") + "/") and len(point) >= len(best[0]):
                best = (point, kind)
    except OSError:
        pass
    return best


def fs_type(path: Path) -> str:
    point, kind = mount_of(path)
    return f"{kind} ({point})"


def machine_summary(sneakernet: str, workdir: Path) -> dict[str, Any]:
    """What the figures were measured on: CPUs, RAM, versions, the repository's commit, the work filesystem."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo() if ln.startswith("model name")), "unknown")
    tools = {
        "sneakernet": output_of([sneakernet, "--version"]),
        "tar": output_of(["tar", "--version"]),
        "zstd": output_of(["zstd", "--version"]),
        "b3sum": output_of(["b3sum", "--version"]),
        "restic": output_of(["restic", "version"]) if shutil.which("restic") else "restic not installed",
    }
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sneakernet_executable": sneakernet,
        "tools": tools,
        "workdir_fs": fs_type(workdir),
    }


def repo_state() -> dict[str, Any]:
    """The commit, the modified files under src/ and a digest of src/: with an editable install, what runs."""
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"]
    done = subprocess.run(status, cwd=REPO, capture_output=True, text=True, check=False)
    digest = hashlib.sha256()
    for path in sorted((REPO / "src").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return {
        "commit": output_of(["git", "rev-parse", "HEAD"], cwd=REPO),
        "modified_src": sorted(line[3:] for line in done.stdout.splitlines()),
        "src_digest": digest.hexdigest()[:16],
    }


def repo_warning(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A warning when src/ changed while the benchmark ran, else nothing."""
    if before["src_digest"] == after["src_digest"]:
        return ""
    return (
        f"WARNING: src/ changed during the run (commit {before['commit'][:10]} -> {after['commit'][:10]}, "
        f"digest {before['src_digest']} -> {after['src_digest']}): an editable install runs the changing code, "
        "so these figures mix versions\n"
    )


def cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def busy_processes() -> list[str]:
    """The five processes using the most CPU, to say what else was running."""
    try:
        done = subprocess.run(["ps", "-eo", "pcpu,rss,comm", "--sort=-pcpu"], capture_output=True, text=True)
    except OSError:
        return []
    return [line.strip() for line in done.stdout.splitlines()[1:6]]


def startup_seconds(sneakernet: str) -> float:
    """Median time of ``sneakernet --version``: interpreter start-up and imports, included in every sneakernet run."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sneakernet, "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parts_bytes(bench: Bench) -> int:
    return sum(p.stat().st_size for p in (bench.tar_out / "parts").glob("part.*"))


def pack_summary(bench: Bench, repeats: int) -> dict[str, Any]:
    """The JSON summary the last sneakernet pack printed."""
    try:
        summary: dict[str, Any] = json.loads((bench.logs / f"pack-sneakernet-{repeats - 1}.out").read_text())
    except (OSError, ValueError):
        return {}
    return {k: summary.get(k) for k in ("files", "raw_bytes", "stored_bytes", "stored_raw_bytes", "chunks", "ratio")}


# --- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=parse_size, default=parse_size("4GB"), help="dataset size (default 4GB)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--drive-size", type=parse_size, help="sneakernet --drive-size (default: size/4)")
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/DATE-SIZE.json)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the packed outputs, restic repository, restores")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.drive_size = args.drive_size or args.size // 4
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.workdir == REPO or REPO in args.workdir.parents:
        parser.error(f"--workdir must be outside the repository ({REPO})")
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    args.out = args.out or REPO / "bench" / "results" / f"{stamp}-{show_size(args.size).replace(' ', '')}.json"
    return args


def check_tools() -> None:
    missing = [tool for tool in ("tar", "zstd", "split", "b3sum", "bash") if not shutil.which(tool)]
    if missing:
        raise BenchError(f"missing tools: {', '.join(missing)} (Debian: apt-get install b3sum zstd)")


def check_room(workdir: Path, dataset_bytes: int) -> None:
    """Warn when the work directory may not hold three packed copies of the dataset beside it."""
    free = shutil.disk_usage(workdir).free
    if free < 3 * dataset_bytes:
        note(f"warning: {show_size(free)} free in {workdir}; packed outputs take about 3 x {show_size(dataset_bytes)}")


def context(when: str) -> dict[str, Any]:
    """Load, busiest processes and repository state, before or after the timings."""
    return {f"load_{when}": os.getloadavg(), f"busy_{when}": busy_processes(), f"repo_{when}": repo_state()}


def measure(bench: Bench, repeats: int) -> dict[str, Any]:
    """Every timing, on a tmpfs for restores when possible (unmounted afterwards, whatever happens)."""
    tmpfs = mount_tmpfs(bench)
    note(f"restore target: {bench.restore_note}")
    if not bench.restic:
        note("restic not installed: its rows are left out")
    try:
        startup = round(startup_seconds(bench.sneakernet), 3)
        runs = [m for step in ("pack", "verify", "restore") for m in time_step(bench, step, repeats)]
    finally:
        if tmpfs:
            unmount(bench.restore_root)
    ratio = round(parts_bytes(bench) / bench.dataset_bytes, 4)
    return {"startup_seconds": startup, "zstd3_ratio": ratio, "runs": [asdict(m) for m in runs]}


def clean_up(bench: Bench) -> None:
    """Remove the packed outputs, the restic repository and fresh restore directories (the dataset stays)."""
    fresh = [bench.restore_root] if bench.fresh_restores else []
    for path in (bench.sn_out, bench.tar_out, bench.restic_repo, bench.work / "restic-cache", *fresh):
        shutil.rmtree(path, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate, time, check; return everything for the JSON."""
    check_tools()
    args.workdir.mkdir(parents=True, exist_ok=True)
    check_room(args.workdir, args.size)
    data, manifest = ensure_dataset(args.workdir, args.size, args.drive_size, args.seed)
    bench = Bench(args, data, manifest["bytes"])
    big = manifest["params"]["big_file"]
    if big <= args.drive_size:
        note(f"warning: the largest file ({show_size(big)}) is not bigger than a drive ({show_size(args.drive_size)})")
    note(f"warm cache: read the dataset once in {warm_cache(data):.1f} s; nothing is dropped from the page cache")
    result: dict[str, Any] = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    result |= {"command": shlex.join([sys.executable, *sys.argv]), "restic_installed": bench.restic is not None}
    result |= context("before") | measure(bench, args.repeats) | context("after")
    rows = summary_rows([Measured(**m) for m in result["runs"]], manifest["bytes"])
    result |= {
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_summary(bench.sneakernet, bench.work) | {"restore_target": bench.restore_note},
        "dataset": manifest | {"path": str(data)},
        "cache": "warm: the dataset was read once before timing and nothing was dropped",
        "sneakernet_pack": pack_summary(bench, args.repeats),
        "correctness": bench.checks,
        "summary": rows,
        "targets": target_rows(rows),
    }
    if not args.keep:
        clean_up(bench)
    return result


def report(result: dict[str, Any]) -> str:
    """The text printed at the end."""
    data = result["dataset"]
    kinds = ", ".join(f"{k} {v['files']} files {show_size(v['bytes'])}" for k, v in data["kinds"].items())
    checks = "; ".join(
        f"{tool}: {'OK' if c['ok'] else 'MISMATCH'} ({c['compared']})" for tool, c in result["correctness"].items()
    )
    restic = "" if result["restic_installed"] else "restic not installed: no restic rows\n"
    return (
        f"\ndataset: {show_size(data['bytes'])}, {data['files']} files ({kinds})\n"
        f"zstd -3 ratio of the tar stream: {result['zstd3_ratio']}\n"
        f"sneakernet pack: {result['sneakernet_pack']}\n"
        f"repeats: {result['params']['repeats']}, medians; sides alternated; sync between steps; {result['cache']}\n"
        f"restore target: {result['machine']['restore_target']}\n"
        f"sneakernet start-up (--version): {result['startup_seconds']:.3f} s, included in its times\n"
        f"commit: {result['repo_before']['commit']}, modified in src/: {result['repo_before']['modified_src']}\n"
        f"{repo_warning(result['repo_before'], result['repo_after'])}"
        f"load average before / after: {result['load_before']} / {result['load_after']}\n{restic}"
        f"correctness: {checks}\n\n"
        f"{table(result['summary'], result['targets'])}\n"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except BenchError as exc:
        note(f"bench: {exc}")
        return 1
    print(report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {args.out}")
    failed = [tool for tool, check in result["correctness"].items() if not check["ok"]]
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
