"""docs/tutorial.md, run as written: its ``sh`` blocks in order, then each ``$ command`` of its ``console`` blocks,
compared with the output the page shows. Times, rates, ids, fingerprints, dates and the version are masked (they
differ on every run); a line ``...`` in the page stands for any number of lines. Section 10 (real drives under
/mnt) is not run. A command that needs a tool the machine lacks (b3sum, jq) is skipped, not failed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"

#: What differs from run to run, masked in both the page and the output, most specific first.
MASKS = [
    (re.compile(r"\b[0-9a-f]{64}\b"), "<fingerprint>"),
    (re.compile(r"\b[0-9a-f]{4}(?:-[0-9a-f]{4}){4}\b"), "<short fingerprint>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<shipment>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b"), "<date>"),
    (re.compile(r"sneakernet \d+\.\d+\.\d+\S*"), "sneakernet <version>"),
    (re.compile(r"\b\d+(?:\.\d+)? [kMG]?B/s\b"), "<rate>"),
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<time>"),
    (re.compile(r"\bon \d+ threads?\b"), "on <n> threads"),
]


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


@dataclass
class Step:
    command: str
    expected: list[str]
    line: int


def blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line number, lines) of every fenced block before section 10."""
    text = text.split("\n## 10.", 1)[0]
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL):
        found.append((match.group(1), text[: match.start()].count("\n") + 1, match.group(2).splitlines()))
    return found


def steps(lines: list[str], first_line: int) -> list[Step]:
    found: list[Step] = []
    for number, line in enumerate(lines, start=first_line + 1):
        if line.startswith("$ "):
            found.append(Step(line[2:], [], number))
        elif found:
            found[-1].expected.append(line)
    return found


def matches(expected: list[str], got: list[str]) -> bool:
    """``got`` is ``expected`` where each ``...`` line stands for any run of lines."""
    pattern = "\n".join(".*?" if line == "..." else re.escape(line) for line in expected)
    pattern = pattern.replace("\n.*?\n", "\n(?:.*\n)*?").replace("\n.*?", "(?:\n.*)*?")
    return re.fullmatch(pattern, "\n".join(got)) is not None


def run_tutorial(work: Path) -> list[tuple[Step, list[str], str]]:
    """Run the page in ``work``: each console step with what the tool printed (stdout lines) and its stderr."""
    text = TUTORIAL.read_text(encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(SNEAKERNET_STATE_DIR=str(work / "verify-state"), LC_ALL="C.UTF-8")
    ship = work / "ship"
    fingerprint = ""  # the page's short fingerprint, replaced in commands by this run's
    actual = ""
    ran: list[tuple[Step, list[str], str]] = []
    for language, first_line, lines in blocks(text):
        if language == "sh":
            script = "\n".join(lines).replace("repo=~/src/sneakernet", f"repo={ROOT}")
            script = script.replace("mkdir -p /tmp/ship && cd /tmp/ship", f'mkdir -p "{ship}" && cd "{ship}"')
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ship if ship.exists() else work,
                                  env=env, capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, f"docs/tutorial.md:{first_line}: {done.stderr}"
            continue
        if language != "console":
            continue
        for step in steps(lines, first_line):
            tools = {"b3sum", "jq"} & set(re.findall(r"[\w-]+", step.command))
            if any(shutil.which(tool) is None for tool in tools):
                continue
            command = step.command.replace(fingerprint, actual) if fingerprint else step.command
            done = subprocess.run(["bash", "-c", command], cwd=ship, env=env, capture_output=True, text=True)
            if step.command.startswith("sneakernet pack "):
                fingerprint = _fingerprint("\n".join(step.expected))
                actual = _fingerprint(done.stdout)
            ran.append((step, done.stdout.rstrip("\n").splitlines(), done.stderr))
    assert fingerprint, "the tutorial's pack step was not found"
    return ran


def _fingerprint(text: str) -> str:
    found = re.search(r"^fingerprint: (\S+)", text, re.MULTILINE)
    assert found, f"no fingerprint line in {text!r}"
    return found.group(1)


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    mismatches = []
    for step, got, err in run_tutorial(tmp_path):
        if not matches([masked(line) for line in step.expected], [masked(line) for line in got]):
            shown = got + ([f"(stderr) {err.strip()}"] if err.strip() else [])
            mismatches.append(
                f"docs/tutorial.md:{step.line}: $ {step.command}\n  the page:\n    "
                + "\n    ".join(step.expected)
                + "\n  the tool:\n    "
                + "\n    ".join(shown)
            )
    assert not mismatches, "docs/tutorial.md has drifted from what the tool prints:\n" + "\n".join(mismatches)


@pytest.mark.parametrize(
    ("expected", "got", "same"),
    [
        (["a", "...", "d"], ["a", "b", "c", "d"], True),
        (["a", "...", "d"], ["a", "d"], True),
        (["a", "d"], ["a", "b", "d"], False),
        (["a (x)"], ["a (x)"], True),
        (["a"], ["b"], False),
    ],
)
def test_elided_lines(expected: list[str], got: list[str], same: bool) -> None:
    assert matches(expected, got) is same


def update(work: Path) -> None:
    """Write this run's output into the page, in place of every step's that no longer matches (the fingerprint
    in commands and prose too): ``python tests/test_tutorial.py --update``, then read the diff."""
    lines = TUTORIAL.read_text(encoding="utf-8").splitlines()
    ran = run_tutorial(work)
    old = new = ""
    for step, got, _ in reversed(ran):
        if step.command.startswith("sneakernet pack "):
            old, new = _fingerprint("\n".join(step.expected)), _fingerprint("\n".join(got))
        if not matches([masked(line) for line in step.expected], [masked(line) for line in got]):
            lines[step.line : step.line + len(step.expected)] = got
    text = "\n".join(lines) + "\n"
    full_old = re.search(rf"{old.replace('-', '')}[0-9a-f]{{44}}", text)
    full_new = re.search(rf"{new.replace('-', '')}[0-9a-f]{{44}}", text)
    if full_old and full_new:
        text = text.replace(full_old.group(0), full_new.group(0))
    TUTORIAL.write_text(text.replace(old, new), encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] == ["--update"]:
        with tempfile.TemporaryDirectory() as scratch:
            update(Path(scratch))
