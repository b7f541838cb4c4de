"""pack as Dask tasks (issue 20, packer/cluster.py) on a distributed.LocalCluster of two worker processes: each
lane a task pinned to the worker whose "drives" (directories) a drives file gives it, or a lane per worker onto
--out; the same drives as a local pack onto as many drives at once; a worker killed mid-lane; an unreachable
scheduler; the dask extra missing."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path
from typing import Any

import cloudpickle  # comes with distributed (the test extra)
import dask
import distributed
import pytest

import fakestore
from conftest import invoke_cli as cli
from conftest import make_edge_tree, write_file
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
from sneakernet.errors import ClusterError, UsageError, WorkerLost
from sneakernet.format import (
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    DriveLabel,
    FileRecord,
    ManifestHeader,
    manifest_record_from_v2,
)
from sneakernet.format.container import read_records
from sneakernet.io.store import LocalStore
from sneakernet.packer.cluster import DaskLanes, HostLane, _check_worker, read_drives_file
from test_json import validate
from test_pack_lanes import Recorded
from test_restore import assert_same_tree

SMALL = PackOptions(chunk_size=256 * 1024, segment_size=600 * 1024, reserve=0)
# The workers unpickle the fault-injecting stores of this module by value: tests/ is not on their path.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(fakestore)


@pytest.fixture(scope="module")
def cluster() -> Any:
    """Two worker processes, one thread each, named 0 and 1; a lost worker's task is not run again."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as local,
    ):
        yield local


@pytest.fixture
def client(cluster: Any) -> Any:
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


def drives_file(tmp_path: Path, lanes: dict[str, list[Path]]) -> Path:
    for paths in lanes.values():
        for path in paths:
            path.mkdir(parents=True)
    text = "# worker  drives\n" + "".join(f"{w} {' '.join(map(str, paths))}\n" for w, paths in lanes.items())
    path = tmp_path / "drives.txt"
    path.write_text(text)
    return path


def test_packed_across_two_workers_each_drive_verifies_alone_and_restores_identical(
    tmp_path: Path, cluster: Any
) -> None:
    """The command line end to end: two workers with two drives each (a drives file), verify every drive alone,
    restore them all: the source's tree. The catalog is on every drive and in the sender's copy."""
    src = make_edge_tree(tmp_path / "src", big_size=2_000_000)
    for i in range(8):  # the walk's end as heavy as the big file at its start: two drives for each lane
        write_file(src / "zz" / f"f{i}.bin", os.urandom(400_000))
    hosts = {"0": [tmp_path / "w0" / "a", tmp_path / "w0" / "b"], "1": [tmp_path / "w1" / "a", tmp_path / "w1" / "b"]}
    listed = drives_file(tmp_path, hosts)
    code, out, err = cli(
        "pack", src, "--scheduler", cluster.scheduler_address, "--drives-from", listed, "--drive-size", "2500KB",
        "--chunk-size", "256KiB", "--reserve", "0", "--catalog-dir", tmp_path / "catalogs", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    validate(summary, "pack-summary.schema.json")
    assert summary["lanes"] == 2
    used = [Path(d["path"]) for d in summary["drives"]]
    assert len(used) == 4, used  # each worker filled both of its drives
    for drive in summary["drives"]:
        assert Path(drive["path"]) in hosts[str(drive["lane"] - 1)]  # a lane writes only its worker's drives
    for drive in used:
        code, out, err = cli("verify", drive)
        assert code == 0, (drive, out, err)
    code, out, err = cli("verify", *used, "--fingerprint", summary["short_fingerprint"])
    assert code == 0, (out, err)
    copy = Path(summary["catalog_copy"])
    assert copy.parent == tmp_path / "catalogs" and copy.read_bytes() == (used[0] / "catalog.jsonl.zst").read_bytes()
    dest = tmp_path / "dest"
    code, out, err = cli("restore", *used, "--into", dest)
    assert code == 0, (out, err)
    assert_same_tree(src, dest)


def test_a_real_tree_packed_with_a_local_cluster_of_two_onto_four_drives(tmp_path: Path) -> None:
    """Issue 20's acceptance on the command line: --scheduler local:2 (a cluster pack starts and stops) onto 4
    drives, 2 per worker: each drive verifies alone, the restore is identical."""
    tree = tmp_path / "tree"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("email", "json", "urllib", "logging", "asyncio", "http", "xml"):  # about 1.8 MB, 200 files
        shutil.copytree(stdlib / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    hosts = {"0": [tmp_path / "w0" / "a", tmp_path / "w0" / "b"], "1": [tmp_path / "w1" / "a", tmp_path / "w1" / "b"]}
    listed = drives_file(tmp_path, hosts)
    code, out, err = cli(
        "pack", tree, "--scheduler", "local:2", "--drives-from", listed, "--drive-size", "1000KB", "--chunk-size",
        "64KiB", "--reserve", "0", "--assume-ratio", "0.4", "--catalog-dir", tmp_path / "catalogs", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    drives = [Path(d["path"]) for d in summary["drives"]]
    assert sorted(drives) == sorted(p for paths in hosts.values() for p in paths)
    for drive in drives:
        code, out, err = cli("verify", drive)
        assert code == 0, (drive, out, err)
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, (out, err)
    assert_same_tree(tree, tmp_path / "dest")


def _drive_contents(root: Path) -> dict[tuple[int, int], tuple[list[bytes], list[Any]]]:
    """Each drive under ``root`` by (lane, lane_seq): its segment files' bytes, and its manifest's records with
    what differs between two packs of one tree taken out (the shipment id, times, the drive numbers)."""
    drives: dict[tuple[int, int], tuple[list[bytes], list[Any]]] = {}
    for path in sorted(root.glob("drive-*")):
        label = DriveLabel.from_bytes((path / DRIVE_LABEL_NAME).read_bytes(), versions=(1, 2))
        segments = [p.read_bytes() for p in sorted(path.glob("segment-*"))]
        with LocalStore(path).open(MANIFEST_NAME) as manifest:
            raws = list(read_records(manifest, "manifest"))
        assert raws[0] is not None
        header = ManifestHeader.from_json(raws[0], versions=(1, 2))
        records: list[Any] = [(header.lane, header.lane_seq, header.chunk_size, header.segment_size, header.level)]
        for raw in raws[1:]:
            assert raw is not None
            record = manifest_record_from_v2(raw)
            if isinstance(record, FileRecord) and record.next_drive is not None:
                record = replace(record, next_drive=0)  # a number the lanes' race gives out
            records.append(record)
        assert label.lane is not None and label.lane_seq is not None
        drives[(label.lane, label.lane_seq)] = (segments, records)
    return drives


def test_the_same_drives_as_a_local_pack_onto_as_many_drives_at_once(tmp_path: Path, client: Any) -> None:
    """A lane per worker onto --out gives the drives a local pack with --at-once 2 gives: the same segments byte
    for byte, the same manifest records, drive by drive (lane, place in lane), apart from ids, times, numbers."""
    src = make_edge_tree(tmp_path / "src", big_size=2_000_000)
    local = pack(src, out=str(tmp_path / "local"), drive_size=1_200_000, options=SMALL, at_once=2)
    lanes = DaskLanes(client)
    assert lanes.lanes == 2
    spread = pack(src, out=str(tmp_path / "cluster"), drive_size=1_200_000, options=SMALL, cluster=lanes)
    assert spread.lanes == local.lanes == 2 and len(spread.drives) == len(local.drives) > 2
    assert _drive_contents(tmp_path / "cluster") == _drive_contents(tmp_path / "local")
    assert spread.files == local.files and spread.raw_bytes == local.raw_bytes
    dest = tmp_path / "dest"
    code, out, err = cli("restore", *sorted((tmp_path / "cluster").glob("drive-*")), "--into", dest)
    assert code == 0, (out, err)
    assert_same_tree(src, dest)


def test_every_lanes_progress_reaches_the_client(tmp_path: Path, client: Any) -> None:
    """More than a progress message's batch (4 MiB) a lane: the lanes' readers report from their own threads."""
    src = tmp_path / "src"
    for i in range(8):
        write_file(src / f"f{i}.bin", os.urandom(1_200_000))
    progress = Recorded()
    summary = pack(
        src, out=str(tmp_path / "out"), drive_size=6_000_000, options=SMALL, cluster=DaskLanes(client),
        progress=progress,
    )  # fmt: skip
    assert progress.done == progress.total == 9_600_000 and progress.closed
    assert sorted(progress.drives) == sorted(d["label"] for d in summary.drives)


def _kill_worker_at_second_segment(path: str, victim: str = "victim") -> LocalStore:
    """The victim drive's store kills its worker's process once its second segment file is begun."""

    def after(event: str, name: str) -> None:
        if event == "create" and name.endswith("s000002.seg"):
            os.kill(os.getpid(), signal.SIGKILL)

    return FaultyStore(path, after=after) if path.endswith(victim) else LocalStore(path)


def test_a_worker_killed_mid_lane_leaves_its_drive_unfinished_and_the_others_finished(
    tmp_path: Path, client: Any
) -> None:
    rng = os.urandom
    src = tmp_path / "src"
    for i in range(8):
        write_file(src / f"f{i}.bin", rng(400_000))
    hosts = {"0": [tmp_path / "w0" / "victim"], "1": [tmp_path / "w1" / "a"]}
    drives_file(tmp_path, hosts)
    lanes = DaskLanes(client, [HostLane(w, tuple(map(str, p))) for w, p in hosts.items()])
    with pytest.raises(WorkerLost) as lost:
        pack(src, drive_size=3_000_000, options=SMALL, cluster=lanes, open_store=_kill_worker_at_second_segment)
    message = str(lost.value)
    assert "lane 1" in message and "drive-0001 is unfinished" in message, message
    assert "lanes that finished: 2" in message, message
    assert not (tmp_path / "w0" / "victim" / DRIVE_LABEL_NAME).exists()  # unfinished: no drive.json
    code, out, err = cli("verify", tmp_path / "w1" / "a")  # the other lane's drive is finished, checkable alone
    assert code == 0, (out, err)
    client.wait_for_workers(2, timeout=60)  # the nanny starts the killed worker again


def test_a_worker_killed_mid_lane_then_resume_keeps_the_complete_segments_and_restores_identical(
    tmp_path: Path, client: Any
) -> None:
    """Onto --out: the worker writing drive-0001 killed as it begins its second segment; the same pack with
    --resume keeps the other lane's finished drive and drive-0001's complete first segment (the same file: inode
    and mtime), writes the rest, and the shipment verifies and restores identical."""
    src = tmp_path / "src"
    for i in range(8):
        write_file(src / f"f{i}.bin", os.urandom(400_000))
    out = tmp_path / "out"
    kill = functools.partial(_kill_worker_at_second_segment, victim="drive-0001")
    with pytest.raises(WorkerLost, match="run the same pack with --resume"):
        pack(src, out=str(out), drive_size=3_000_000, options=SMALL, cluster=DaskLanes(client), open_store=kill)
    first = out / "drive-0001" / "segments" / "s000001.seg"
    before = os.stat(first)
    assert not (out / "drive-0001" / DRIVE_LABEL_NAME).exists() and (out / "drive-0002" / DRIVE_LABEL_NAME).exists()
    client.wait_for_workers(2, timeout=60)  # the nanny starts the killed worker again
    summary = pack(src, out=str(out), drive_size=3_000_000, options=SMALL, cluster=DaskLanes(client), resume=True)
    assert summary.kept_segments >= 1 and summary.kept_bytes >= before.st_size, summary
    after = os.stat(first)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    drives = sorted(out.glob("drive-*"))
    for drive in drives:
        code, _, err = cli("verify", drive)
        assert code == 0, (drive, err)
    code, _, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a", b"a")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = cli("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "1MB",
                       "--scheduler", f"tcp://127.0.0.1:{port}")  # fmt: skip
    assert code == 2
    assert (
        err.startswith("sneakernet: error: cannot reach the Dask scheduler at tcp://127.0.0.1:")
        and err.count("\n") == 1
    )
    assert not (tmp_path / "out").exists()


def test_without_the_dask_extra_the_message_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_file(tmp_path / "src" / "a", b"a")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    code, _, err = cli("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "1MB",
                       "--scheduler", "local:2")  # fmt: skip
    assert code == 2 and "pip install 'sneakernet[dask]'" in err, err


def test_scheduler_and_drives_file_refusals(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a", b"a")
    code, _, err = cli("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "1MB",
                       "--scheduler", "local:zero")  # fmt: skip
    assert code == 2 and "local:N" in err
    code, _, err = cli("pack", tmp_path / "src", "--drives-from", tmp_path / "none.txt")
    assert code == 2 and "--drives-from and --work-dir go with --scheduler" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("worker-a\n")
    with pytest.raises(UsageError, match="WORKER PATH"):
        read_drives_file(str(bad))
    bad.write_text("# nothing\n\n")
    with pytest.raises(UsageError, match="names no drives"):
        read_drives_file(str(bad))
    bad.write_text("a /d1 '/with space'\nb /d1\n")
    assert read_drives_file(str(bad)) == (HostLane("a", ("/d1", "/with space")), HostLane("b", ("/d1",)))


def test_a_worker_that_does_not_see_the_work_directory_or_source_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "cluster-token").write_text("the client's token")
    with pytest.raises(ClusterError, match="does not see the work directory"):
        _check_worker(str(work), "another client's token", str(tmp_path))
    with pytest.raises(ClusterError, match="does not see the source"):
        _check_worker(str(work), "the client's token", str(tmp_path / "elsewhere"))


def test_a_worker_not_connected_is_refused_before_anything_is_written(tmp_path: Path, client: Any) -> None:
    with pytest.raises(ClusterError, match="no worker host-z is connected"):
        DaskLanes(client, [HostLane("host-z", (str(tmp_path / "d"),))])


def test_resume_with_a_drives_file_is_refused_in_one_line(tmp_path: Path, client: Any) -> None:
    write_file(tmp_path / "src" / "a", b"a")
    lanes = DaskLanes(client, [HostLane("0", (str(tmp_path / "d0"),)), HostLane("1", (str(tmp_path / "d1"),))])
    with pytest.raises(UsageError, match="--resume of a pack with --drives-from is not supported yet"):
        pack(tmp_path / "src", drive_size=10**6, cluster=lanes, resume=True)
