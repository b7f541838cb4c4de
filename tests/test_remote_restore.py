"""restore into s3:// (io/objects.py, restorer/objects.py), against moto's S3 server in a process of its own."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("s3fs")
pytest.importorskip("moto")

import sneakernet
from sneakernet.cli import main
from sneakernet.errors import DestinationError, UsageError
from sneakernet.io import objects, remote
from sneakernet.io.objects import ObjectStore
from sneakernet.options import PackOptions
from sneakernet.restorer.objects import restore_to_store

sys.path.insert(0, os.path.dirname(__file__))
from s3server import S3Server

pytestmark = pytest.mark.usefixtures("isolated_aws")

#: Quick failures while the server is down: one try of the client, two of ours, short waits.
FAST_FAIL = {"config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}


def _make_tree(root: Path, files: int = 60, seed: int = 5) -> dict[str, bytes]:
    rng = random.Random(seed)
    tree = {f"many/{i:03d}.txt": f"line {i}\n".encode() * rng.randint(1, 300) for i in range(files)}
    tree |= {
        "nested/deeper/big.bin": rng.randbytes(12 * 1024 * 1024 + 5),
        "nested/mid.bin": rng.randbytes(900_000),
        "top.txt": b"top",
        "empty.txt": b"",
    }
    for name, data in tree.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return tree


def _pack(tmp_path: Path, tree_extra: bool = True) -> tuple[list[str], dict[str, bytes]]:
    src = tmp_path / "src"
    tree = _make_tree(src)
    if tree_extra:
        (src / "emptydir").mkdir()
        os.symlink("top.txt", src / "link")
        os.link(src / "top.txt", src / "nested" / "hard.txt")
        tree["nested/hard.txt"] = tree["top.txt"]
    summary = sneakernet.pack(
        str(src), out=str(tmp_path / "out"), drive_size=sneakernet.parse_size("6MB"),
        options=PackOptions(chunk_size=1024 * 1024),
    )  # fmt: skip
    return [d["path"] for d in summary.drives], tree


def _objects(server: S3Server, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = item
    return found


def _bytes(server: S3Server, bucket: str, prefix: str, key: str) -> bytes:
    body: bytes = server.client().get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()
    return body


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "PART_SIZE", 5 * 1024 * 1024)  # S3's smallest part: 12 MiB goes in 3 parts


def test_restore_into_s3_every_object_and_key(server: S3Server, bucket: str, tmp_path: Path, small_parts: None) -> None:
    drives, tree = _pack(tmp_path)
    assert len(drives) >= 3
    url = f"s3://{bucket}/restored/here"
    journal = tmp_path / "journal"
    result = CliRunner().invoke(
        main, ["restore", *drives, "--into", url, "--journal", str(journal), "-q", *server.cli_options()]
    )
    assert result.exit_code == 0, result.output
    stored = _objects(server, bucket, "restored/here")
    assert set(stored) == set(tree)  # the symlink and the empty directory are not objects
    for key, data in tree.items():
        assert _bytes(server, bucket, "restored/here", key) == data, key
    # The large object went up in parts (a multipart ETag ends in -N), completed once whole.
    assert stored["nested/deeper/big.bin"]["ETag"].strip('"').endswith("-3")
    assert "1 symlink skipped" in result.output and "1 hard link stored as copies" in result.output
    status = CliRunner().invoke(main, ["status", url, "--journal", str(journal)])
    assert status.exit_code == 0, status.output
    # The same drives into a local directory give the same files.
    sneakernet.restore(drives, str(tmp_path / "local"))
    local = {
        str(p.relative_to(tmp_path / "local")): p.read_bytes()
        for p in (tmp_path / "local").rglob("*")
        if p.is_file() and not p.is_symlink() and ".sneakernet" not in p.parts
    }
    assert local == tree


def test_refuses_a_prefix_with_objects_and_another_journal(server: S3Server, bucket: str, tmp_path: Path) -> None:
    drives, _ = _pack(tmp_path, tree_extra=False)
    server.client().put_object(Bucket=bucket, Key="p/theirs.txt", Body=b"not ours")
    url = f"s3://{bucket}/p"
    with pytest.raises(UsageError, match="already holds objects"):
        restore_to_store(drives, url, storage_options=server.options)
    assert set(_objects(server, bucket, "p")) == {"theirs.txt"}
    journal = str(tmp_path / "j")
    restore_to_store(drives[:1], url, journal=journal, storage_options=server.options, force=True)
    with pytest.raises(UsageError, match="restores into"):
        restore_to_store(drives[1:], f"s3://{bucket}/other", journal=journal, storage_options=server.options)


class CountingStore(ObjectStore):
    """The store as it is, counting the keys uploaded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploaded: list[str] = []

    def upload(self, local: str, key: str) -> None:
        super().upload(local, key)
        self.uploaded.append(key.split("/", 2)[-1])


class StopAfter:
    """Progress that stops the server once ``limit`` bytes are restored."""

    def __init__(self, server: S3Server, limit: int) -> None:
        self.server, self.limit, self.done, self.stopped = server, limit, 0, False

    def start(self, total: int) -> None: ...

    def advance(self, done: int) -> None:
        self.done += done
        if self.done >= self.limit and not self.stopped:
            self.stopped = True
            self.server.stop()

    def close(self) -> None: ...


def test_server_stopped_mid_restore_then_resumed(
    server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_parts: None
) -> None:
    monkeypatch.setattr(remote, "ATTEMPTS", 2)
    monkeypatch.setattr(remote, "BACKOFF", 0.05)
    monkeypatch.setattr("sneakernet.restorer.drive_restorer.BATCH_FILES", 8)  # installs in many batches
    drives, tree = _pack(tmp_path, tree_extra=False)
    url, journal = f"s3://{bucket}/p", str(tmp_path / "j")
    options = {**server.options, **FAST_FAIL}
    stopper = StopAfter(server, sum(len(v) for v in tree.values()) // 3)
    try:
        with pytest.raises(DestinationError) as caught:
            restore_to_store(drives, url, journal=journal, storage_options=options, progress=stopper)
    finally:
        if stopper.stopped:
            server.start()
    message = str(caught.value)
    assert "\n" not in message and "run the same restore again" in message and server.secret not in message
    before = _objects(server, bucket, "p")
    assert before and len(before) < len(tree)
    for key in before:  # every object there is whole: none is partial
        assert _bytes(server, bucket, "p", key) == tree[key], key
    store = CountingStore(url, options)
    restore_to_store(drives, url, journal=journal, store=store)
    assert {k: _bytes(server, bucket, "p", k) for k in _objects(server, bucket, "p")} == tree
    again = set(store.uploaded) & set(before)
    print(f"stopped with {len(before)} of {len(tree)} objects up; {len(before) - len(again)} not uploaded again")
    # Only the uploads in flight when it stopped (not yet recorded by the journal) may go again.
    assert len(again) <= 2 * objects.UPLOADS + 1, sorted(again)
    assert set(store.uploaded) | set(before) == set(tree)


def test_sigkill_mid_restore_resumes_without_uploading_again(server: S3Server, bucket: str, tmp_path: Path) -> None:
    drives, tree = _pack(tmp_path, tree_extra=False)
    url, journal = f"s3://{bucket}/k", str(tmp_path / "j")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "sneakernet", "-q", "restore", *drives, "--into", url, "--journal", journal,
               *server.cli_options()]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    seen: dict[str, dict[str, Any]] = {}
    while process.poll() is None and time.monotonic() < deadline:
        seen = _objects(server, bucket, "k")
        for key, item in seen.items():
            assert item["Size"] == len(tree[key]), key  # never a partial object under its key
        if len(seen) >= len(tree) // 3:
            break
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.skip(f"the restore finished before it could be killed ({process.stderr.read()!r})")  # type: ignore[union-attr]
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()  # type: ignore[union-attr]
    before = _objects(server, bucket, "k")
    for key in before:
        assert _bytes(server, bucket, "k", key) == tree[key], key
    store = CountingStore(url, server.options)
    restore_to_store(drives, url, journal=journal, store=store)
    after = _objects(server, bucket, "k")
    assert {k: _bytes(server, bucket, "k", k) for k in after} == tree
    kept = set(before) - set(store.uploaded)
    print(f"killed with {len(before)} of {len(tree)} objects up; {len(kept)} not uploaded again")
    assert len(kept) >= len(before) - (2 * objects.UPLOADS + 1)


def test_wrong_credentials_restore_one_line_and_no_secret(tmp_path: Path) -> None:
    drives, _ = _pack(tmp_path, tree_extra=False)
    server = S3Server(auth=True)
    try:
        server.client().create_bucket(Bucket="locked")
        journal = tmp_path / "j"
        runner = CliRunner()
        restore = ["restore", *drives, "--into", "s3://locked/p", "--journal", str(journal)]
        wrong = runner.invoke(main, [*restore, *server.cli_options(secret="not-the-secret")])
        assert wrong.exit_code == 2, wrong.output
        lines = wrong.output.strip().splitlines()
        assert len(lines) == 1 and "refused" in lines[0] and "credentials" in lines[0], wrong.output
        right = runner.invoke(main, [*restore, "--keep-journal", *server.cli_options()])
        assert right.exit_code == 0, right.output
        assert server.secret not in right.output
        for path in journal.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert server.secret.encode() not in data and server.key.encode() not in data, path
        assert json.loads((journal / ".sneakernet" / "destination.json").read_text()) == {"url": "s3://locked/p"}
    finally:
        server.close()
