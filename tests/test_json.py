"""Every command's --json against its schema in docs/: each output, success or failure, validated by jsonschema,
each carries its schema_version, and a failure under --json prints the error object on stdout as well as its one
line on stderr."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from referencing import Registry, Resource

from conftest import invoke_cli as run
from conftest import write_file
from sneakernet.cli import main
from sneakernet.output import SCHEMA_VERSION

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: The schema of each command's --json output (ls prints one object a line: each line's schema).
SCHEMAS = {
    "pack": "pack-summary.schema.json",
    "plan": "plan.schema.json",
    "verify": "verify-report.schema.json",
    "restore": "restore-report.schema.json",
    "status": "status.schema.json",
    "info": "info.schema.json",
    "ls": "ls-entry.schema.json",
    "parity": "parity-summary.schema.json",
    "rebuild": "rebuild-result.schema.json",
    "repair": "rebuild-result.schema.json",
}
ERROR = "error.schema.json"


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DOCS / name).read_text(encoding="utf-8"))
    return schema


#: Every schema by its $id, so restore's report can refer to status's.
REGISTRY: Registry[Any] = Registry().with_resources(
    (load(name)["$id"], Resource.from_contents(load(name))) for name in [*SCHEMAS.values(), ERROR]
)


def validate(data: Any, name: str) -> None:
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, registry=REGISTRY).validate(data)
    assert data["schema_version"] == SCHEMA_VERSION


def run_json(command: str, *args: str | Path) -> tuple[int, Any]:
    """``sneakernet COMMAND ARGS --json``: the exit code and its output, validated against the command's schema."""
    code, out, err = run(command, *args, "--json")
    assert "Traceback" not in err
    if command == "ls":
        lines = [json.loads(line) for line in out.splitlines()]
        for line in lines:
            validate(line, SCHEMAS["ls"])
        return code, lines
    data = json.loads(out)
    validate(data, SCHEMAS[command])
    return code, data


@pytest.fixture(scope="module")
def shipment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small tree packed onto three drives: a file spanning them, a hard link, a symlink."""
    base = tmp_path_factory.mktemp("json")
    src = base / "src"
    write_file(src / "big.bin", random.Random(1).randbytes(2_300_000))  # incompressible: spans the drives
    write_file(src / "docs" / "a.txt", b"hello\n" * 500)
    (src / "docs" / "link").symlink_to("a.txt")
    (src / "hard").hardlink_to(src / "docs" / "a.txt")
    code, _, err = run(
        "pack", src, "--out", base / "out", "--drive-size", "1.2MB", "--chunk-size", "64KiB", "--level", "1"
    )
    assert code == 0, err
    return base


def drive(shipment: Path, number: int) -> Path:
    return shipment / "out" / f"drive-{number:04d}"


def test_every_command_with_json_has_a_schema() -> None:
    with_json = {
        name
        for name, command in main.all_commands().items()
        if any(isinstance(p, click.Option) and "--json" in p.opts for p in command.params)
    }
    assert with_json == set(SCHEMAS), "a command's --json has no schema in docs/ (add it to SCHEMAS here)"
    for name, schema in SCHEMAS.items():
        assert (DOCS / schema).exists()
        (option,) = [p for p in main.all_commands()[name].params if isinstance(p, click.Option) and "--json" in p.opts]
        assert f"docs/{schema}" in (option.help or ""), f"{name} --json's help does not name docs/{schema}"


def test_pack_and_plan_json(shipment: Path, tmp_path: Path) -> None:
    code, summary = run_json(
        "pack", shipment / "src", "--out", tmp_path / "again", "--drive-size", "1.2MB", "--chunk-size", "64KiB"
    )
    assert code == 0 and len(summary["drives"]) >= 2 and summary["hardlinks"] == 1
    code, estimate = run_json(
        "plan", shipment / "src", "--drive-size", "1.2MB", "--chunk-size", "64KiB", "--drives", "1"
    )
    assert code == 0 and estimate["drives_suffice"] is False


def test_parity_json(shipment: Path, tmp_path: Path) -> None:
    drives = sorted((shipment / "out").glob("drive-*"))
    code, summary = run_json("parity", *drives, "--out", tmp_path / "parity", "--parity", "2")
    assert code == 0 and [d["label"] for d in summary["parity_drives"]] == ["parity-0001", "parity-0002"]


def test_verify_json_intact_and_damaged(shipment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNEAKERNET_STATE_DIR", str(tmp_path / "state"))
    code, report = run_json("verify", *sorted((shipment / "out").iterdir()))
    assert code == 0 and report["ok"]
    damaged = tmp_path / "drive"
    shutil.copytree(drive(shipment, 1), damaged)
    segment = damaged / "segments" / "s000001.seg"
    data = bytearray(segment.read_bytes())
    data[1000] ^= 0xFF
    segment.write_bytes(bytes(data))
    code, report = run_json("verify", damaged)
    assert code == 1 and report["resend"]["chunks"]


def test_restore_status_info_ls_json(shipment: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    code, report = run_json("restore", drive(shipment, 2), "--into", dest)
    assert code == 0 and report["status"]["waiting"] and not report["status"]["complete"]
    code, state = run_json("status", dest)
    assert code == 3 and state["restored"] == [2]
    code, report = run_json("restore", drive(shipment, 2), "--into", dest)
    assert code == 0 and report["drives"][0]["status"] == "already"
    drives = sorted((shipment / "out").iterdir())
    code, report = run_json("restore", *drives, "--into", dest, "--keep-journal")
    assert code == 0 and report["status"]["complete"]
    code, state = run_json("status", dest)
    assert code == 0 and state["complete"]
    # Finished, the journal gone: status from the finished record.
    code, report = run_json("restore", *drives, "--into", tmp_path / "finished")
    assert code == 0 and report["status"]["finished"]
    code, state = run_json("status", tmp_path / "finished")
    assert code == 0 and state["complete"] and state["finished_at"] and state["includes"] == []
    code, found = run_json("info", drives[-1])
    assert code == 0 and found["drives"] == len(drives)
    code, entries = run_json("ls", drives[0])
    assert code == 0 and {e["path"] for e in entries} >= {"big.bin", "docs/a.txt", "docs/link", "hard"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["pack", "{missing}", "--out", "{tmp}/o", "--drive-size", "1GB"], 2, "does not exist"),
        (["pack", "{src}", "--out", "{tmp}/o", "--drive-size", "lots"], 2, "cannot read size 'lots'"),
        (["pack", "{src}", "--out", "{tmp}/o", "--drive-size", "1GB", "--next-drive-cmd", "true"], 2, "--swap"),
        (["plan", "{missing}", "--drive-size", "1GB"], 2, "does not exist"),
        (["verify", "{drive}", "--quick", "--deep"], 2, "do not go together"),
        (["restore", "{missing}", "--into", "{tmp}/d"], 2, "does not exist"),
        (["restore", "{drive}"], 2, "Missing option '--into'"),
        (["status", "{tmp}"], 2, "holds no restore, in progress or finished"),
        (["info", "{missing}"], 2, "does not exist"),
        (["ls", "{missing}"], 2, "does not exist"),
    ],
)
def test_errors_under_json_print_the_error_object(
    shipment: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    names = {"src": shipment / "src", "missing": tmp_path / "missing", "tmp": tmp_path, "drive": drive(shipment, 1)}
    got, out, err = run(*(a.format(**names) for a in args), "--json")
    assert got == code and "Traceback" not in err
    error = json.loads(out)
    validate(error, ERROR)
    assert error["error"]["exit_code"] == code and message in error["error"]["message"]
    assert message in err and len(out.splitlines()) == 1
