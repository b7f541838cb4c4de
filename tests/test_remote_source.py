"""pack and plan from s3:// (io/remote.py), against moto's S3 server in a process of its own (tests/s3server.py)."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner

pytest.importorskip("s3fs")
pytest.importorskip("moto")

import sneakernet
from sneakernet.cli import main
from sneakernet.errors import UsageError
from sneakernet.io import remote
from sneakernet.io.remote import RemoteSource, open_filesystem
from sneakernet.io.source import walk
from sneakernet.options import PackOptions

sys.path.insert(0, os.path.dirname(__file__))
from s3server import S3Server

pytestmark = pytest.mark.usefixtures("isolated_aws")

SMALL_CHUNKS = PackOptions(chunk_size=256 * 1024)


def _tree(seed: int = 7) -> dict[str, bytes]:
    """Small and large objects under nested prefixes, with names whose walk order is not their keys' order."""
    rng = random.Random(seed)
    objects = {f"small/{i:03d}.txt": f"object {i}\n".encode() * rng.randint(1, 40) for i in range(120)}
    objects |= {
        "a.txt": b"beside the prefix a/",
        "a/x": b"inside a/ (walked before a.txt)",
        "a-b": b"",
        "deep/er/still/leaf.bin": rng.randbytes(70_000),
        "large/one.bin": rng.randbytes(3 * 1024 * 1024 + 17),
        "large/two.bin": bytes(range(256)) * 5000,
    }
    return objects


def _upload(server: S3Server, bucket: str, prefix: str, objects: dict[str, bytes]) -> None:
    client = server.client()
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def _restored(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".sneakernet" not in p.relative_to(root).parts
    }


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges and a look-ahead budget small enough that a 3 MiB object takes many requests and fills the budget."""
    monkeypatch.setattr(remote, "RANGE_SIZE", 256 * 1024)
    monkeypatch.setattr(remote, "AHEAD_BYTES", 1024 * 1024)


def test_pack_from_s3_restores_every_object(server: S3Server, bucket: str, tmp_path: Path, small_ranges: None) -> None:
    objects = _tree()
    _upload(server, bucket, "data/set", objects)
    source = RemoteSource(f"s3://{bucket}/data/set", server.options)
    summary = sneakernet.pack(
        source, out=str(tmp_path / "out"), drive_size=sneakernet.parse_size("2MB"), options=SMALL_CHUNKS
    )
    assert len(summary.drives) >= 2
    assert summary.files == len(objects) and not summary.changed
    drives = sorted(str(p) for p in (tmp_path / "out").iterdir())
    assert sneakernet.verify(drives).ok
    sneakernet.restore(drives, str(tmp_path / "back"))
    assert _restored(tmp_path / "back") == objects
    # The prefixes are directories, and the walk order is the format's (a/x before a.txt), as a local tree's.
    local = tmp_path / "local"
    for key, data in objects.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)
    local_paths = [e.path for e in walk(local)]
    remote_paths = [e.path for e in source.walk(None)]
    assert remote_paths == local_paths


def test_mtime_is_last_modified(server: S3Server, bucket: str, tmp_path: Path) -> None:
    _upload(server, bucket, "p", {"f.bin": b"x" * 10})
    head = server.client().head_object(Bucket=bucket, Key="p/f.bin")
    summary = sneakernet.pack(
        RemoteSource(f"s3://{bucket}/p", server.options), out=str(tmp_path / "out"), drive_size=10**7
    )
    sneakernet.restore([d["path"] for d in summary.drives], str(tmp_path / "back"))
    assert os.stat(tmp_path / "back" / "f.bin").st_mtime == head["LastModified"].timestamp()


class RewritingSource(RemoteSource):
    """Rewrites one object on the server right after its first range was fetched: it changes while pack reads it."""

    def __init__(self, *args: Any, victim: bytes, server: S3Server, bucket: str, key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.victim, self.server, self.bucket, self.key_name, self.rewritten = victim, server, bucket, key, False

    def fetch(self, path: bytes, start: int, size: int) -> bytes:
        data = super().fetch(path, start, size)
        if path == self.victim and not self.rewritten:
            self.rewritten = True
            self.server.client().put_object(Bucket=self.bucket, Key=self.key_name, Body=b"rewritten" * 1000)
        return data


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024], ids=["small", "large"])
def test_object_changed_during_pack(
    server: S3Server, bucket: str, tmp_path: Path, small_ranges: None, size: int
) -> None:
    objects = {"keep.txt": b"steady", "moving.bin": random.Random(3).randbytes(size)}
    _upload(server, bucket, "p", objects)
    source = RewritingSource(
        f"s3://{bucket}/p", server.options, victim=b"moving.bin", server=server, bucket=bucket, key="p/moving.bin"
    )
    summary = sneakernet.pack(source, out=str(tmp_path / "out"), drive_size=10**7)
    assert source.rewritten
    assert summary.changed == ["moving.bin"]


def test_cli_pack_and_plan_from_s3(server: S3Server, bucket: str, tmp_path: Path) -> None:
    objects = {k: v for k, v in _tree().items() if not k.startswith("large/")}
    _upload(server, bucket, "p", objects)
    url = f"s3://{bucket}/p"
    runner = CliRunner()
    planned = runner.invoke(
        main, ["plan", url, "--drive-size", "2MB", "--chunk-size", "256KiB", "--json", *server.cli_options()]
    )
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.output)["files"] == len(objects)
    packed = runner.invoke(
        main,
        [
            "pack",
            url,
            "--out",
            str(tmp_path / "out"),
            "--drive-size",
            "2MB",
            "--chunk-size",
            "256KiB",
            "-q",
            *server.cli_options(),
        ],
    )
    assert packed.exit_code == 0, packed.output
    drives = sorted(str(p) for p in (tmp_path / "out").iterdir())
    assert runner.invoke(main, ["restore", *drives, "--into", str(tmp_path / "back"), "-q"]).exit_code == 0
    assert _restored(tmp_path / "back") == objects


def test_cli_missing_bucket_and_local_option(server: S3Server, tmp_path: Path) -> None:
    runner = CliRunner()
    pack = ["pack", "--out", str(tmp_path / "o"), "--drive-size", "2MB", "--chunk-size", "256KiB"]
    result = runner.invoke(main, [*pack, "s3://no-such-bucket/p", *server.cli_options()])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
    local = runner.invoke(main, [*pack, str(tmp_path), "--storage-option", "a=b"])
    assert local.exit_code == 2 and "goes with a URL" in local.output


def test_wrong_credentials_one_line_exit_2(tmp_path: Path) -> None:
    server = S3Server(auth=True)
    try:
        server.client().create_bucket(Bucket="locked")
        server.client().put_object(Bucket="locked", Key="p/f", Body=b"data")
        runner = CliRunner()
        pack = ["pack", "s3://locked/p", "--out", str(tmp_path / "o"), "--drive-size", "2MB", "--chunk-size", "256KiB"]
        wrong = runner.invoke(main, [*pack, *server.cli_options(secret="not-the-secret")])
        assert wrong.exit_code == 2, wrong.output
        lines = wrong.output.strip().splitlines()
        assert len(lines) == 1 and "refused" in lines[0] and "credentials" in lines[0], wrong.output
        assert server.secret not in wrong.output
        right = runner.invoke(main, [*pack, *server.cli_options()])
        assert right.exit_code == 0, right.output
        # The secret given on the command line is nowhere on the drives, compressed or not.
        for path in (tmp_path / "o").rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert server.secret.encode() not in data and server.key.encode() not in data
                if path.name.endswith(".zst"):
                    plain = zstandard.ZstdDecompressor().stream_reader(data).read()
                    assert server.secret.encode() not in plain and server.key.encode() not in plain
    finally:
        server.close()


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(UsageError, match=r"pip install 'sneakernet\[s3\]'"):
        open_filesystem("s3://bucket/p", {})


def test_retried_backs_off_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(remote.time, "sleep", waits.append)
    calls = iter([ConnectionError("reset"), ConnectionError("reset"), b"ok"])

    def flaky() -> bytes:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert remote.retried(flaky) == b"ok"
    assert waits == [remote.BACKOFF, remote.BACKOFF * 2]
    with pytest.raises(PermissionError):
        remote.retried(lambda: (_ for _ in ()).throw(PermissionError("denied")))
    assert len(waits) == 2  # a refusal is not tried again
