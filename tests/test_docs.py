"""The documentation against the code: docs/cli.md is what docs/gen_cli.py renders now, every command has help
with examples, every option has help, local links resolve, the README's quick start is the two make targets,
and the exit-code tables match ExitCode."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest

from sneakernet.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def load_script(name: str) -> ModuleType:
    """docs/NAME.py, a generator script (not a package module)."""
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_cli = load_script("gen_cli")
gen_man = load_script("gen_man")
#: (path, command) for the group and every command, as docs/cli.md lists them.
TREE: list[tuple[tuple[str, ...], click.Command]] = list(gen_cli.commands())
COMMANDS = [(path, command) for path, command in TREE if path]


def name(path: tuple[str, ...]) -> str:
    return " ".join(("sneakernet", *path))


# --- docs/cli.md --------------------------------------------------------------------------------------------


def test_cli_md_is_current() -> None:
    current = (DOCS / "cli.md").read_text(encoding="utf-8") if (DOCS / "cli.md").exists() else ""
    assert current == gen_cli.render(), "docs/cli.md is stale: run `python docs/gen_cli.py` and commit docs/cli.md"


def test_cli_md_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for path, _ in TREE:
        assert f"\n## {name(path)}\n" in text, f"docs/cli.md has no section for {name(path)}"


# --- the man page -------------------------------------------------------------------------------------------


def test_man_page_is_current() -> None:
    page = DOCS / "sneakernet.1"
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    assert current == gen_man.render(), "docs/sneakernet.1 is stale: run `python docs/gen_man.py` and commit it"


@pytest.mark.skipif(shutil.which("man") is None or shutil.which("groff") is None, reason="needs man and groff")
def test_man_page_renders_every_command_without_warnings() -> None:
    result = subprocess.run(
        ["man", "--warnings", "-l", str(DOCS / "sneakernet.1")],
        capture_output=True, text=True, env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": ""},
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr
    for path, _ in COMMANDS:
        assert f"   {name(path)}\n" in result.stdout, f"the man page has no section for {name(path)}"
    assert "-V, --version" in result.stdout


# --- help texts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "command"), TREE, ids=[name(p) for p, _ in TREE])
def test_help_text(path: tuple[str, ...], command: click.Command) -> None:
    assert (command.help or "").strip(), f"{name(path)} has no help text (its docstring)"
    assert command.get_short_help_str().strip(), f"{name(path)} has no short help"


def example_lines(path: tuple[str, ...]) -> list[str]:
    """The lines after "Examples:" in the rendered --help, up to the next blank line."""
    lines = gen_cli.render_help(path).splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    if not starts:
        return []
    examples = []
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            break
        examples.append(line.strip())
    return examples


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[name(p) for p, _ in COMMANDS])
def test_help_has_examples(path: tuple[str, ...], command: click.Command) -> None:
    assert "Examples:" in gen_cli.render_help(path), f"{name(path)} --help has no 'Examples:' section"
    examples = example_lines(path)
    assert examples, f"{name(path)} --help: no example lines right after 'Examples:' (use \\b to keep them)"
    assert all(line.startswith("sneakernet ") for line in examples), f"{name(path)}: {examples}"
    assert any(line.startswith(f"{name(path)} ") for line in examples), (
        f"{name(path)} --help: no example line starts with '{name(path)} '"
    )


def example_options(line: str) -> Iterator[str]:
    """The options an example line uses, up to a pipe, a redirection or a comment."""
    for token in shlex.split(line, comments=True):
        if token in ("|", ">", ">>", "<", "&&", ";"):
            return
        if token.startswith("-") and token != "-":
            yield token.split("=", 1)[0]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[name(p) for p, _ in COMMANDS])
def test_examples_use_existing_options(path: tuple[str, ...], command: click.Command) -> None:
    ctx = click.Context(command, info_name=path[-1])
    known = {opt for param in command.get_params(ctx) for opt in (*param.opts, *param.secondary_opts)}
    for line in example_lines(path):
        if line.startswith(f"{name(path)} "):
            unknown = sorted(set(example_options(line)) - known)
            assert not unknown, f"{name(path)} --help: the example `{line}` uses unknown options {unknown}"


@pytest.mark.parametrize(("path", "command"), TREE, ids=[name(p) for p, _ in TREE])
def test_every_option_has_help(path: tuple[str, ...], command: click.Command) -> None:
    ctx = click.Context(command, info_name=path[-1] if path else "sneakernet")
    missing = [
        "/".join(param.opts)
        for param in command.get_params(ctx)
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert not missing, f"{name(path)}: options without help text: {', '.join(missing)}"


# --- links --------------------------------------------------------------------------------------------------


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def without_code_blocks(text: str) -> str:
    """The text without fenced code blocks (a ``# comment`` in one is not a heading, a ``[x](y)`` not a link)."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def links(text: str) -> Iterator[str]:
    """Targets of inline links and images, and of reference definitions, outside code."""
    clean = re.sub(r"`[^`\n]*`", "", without_code_blocks(text))
    for match in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", clean):
        yield match.group(1)
    for match in re.finditer(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", clean, flags=re.MULTILINE):
        yield match.group(1)


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE) is not None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.strip().lower().replace("`", "").replace("*", "")
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in without_code_blocks(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = counts.get(base, 0)
            counts[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_resolve(md: Path) -> None:
    broken = []
    for target in links(md.read_text(encoding="utf-8")):
        if is_external(target):
            continue
        file_part, _, fragment = target.partition("#")
        linked = (md.parent / file_part).resolve() if file_part else md
        if not linked.exists():
            broken.append(f"{target} (no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked})")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target} (no heading with anchor #{fragment} in {linked.relative_to(ROOT)})")
    assert not broken, f"{md.relative_to(ROOT)}: broken links: " + "; ".join(broken)


# --- README quick start -------------------------------------------------------------------------------------


def section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def test_quick_start_is_make_demo_and_make_test() -> None:
    quick = section(README.read_text(encoding="utf-8"), "Quick start")
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", quick, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"Quick start should have one code block, has {len(blocks)}"
    commands = [line.split("#", 1)[0].strip() for line in blocks[0].splitlines()]
    commands = [command for command in commands if command]
    assert commands == ["make demo", "make test"], f"Quick start commands: {commands}"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert re.search(rf"^{target}\s*:", makefile, flags=re.MULTILINE), f"Makefile has no '{target}' target"


def test_readme_installs_with_pipx() -> None:
    install = section(README.read_text(encoding="utf-8"), "Installing")
    assert "pipx install ." in install and "docs/sneakernet.1" in install


def test_make_demo_shows_the_pack_summary(tmp_path: Path) -> None:
    """examples/demo.sh (make demo) end to end, with the installed command: pack's human summary, not JSON."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SNEAKERNET_DEMO_DIR": str(tmp_path)}
    result = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "packed 19 files, 5 directories, 1 symlink, 0 hard links onto 3 drives" in result.stdout
    assert re.search(r"^fingerprint: [0-9a-f]{4}(-[0-9a-f]{4}){4}  \(full: [0-9a-f]{64}\)$", result.stdout, re.M)
    assert "3 of 3 drives intact" in result.stdout and "identical: every file" in result.stdout


# --- exit codes ---------------------------------------------------------------------------------------------


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header row is ``header`` (cells compared without spaces)."""
    lines = text.splitlines()
    wanted = [cell.strip() for cell in header.strip("|").split("|")]
    for i, line in enumerate(lines):
        if line.startswith("|") and [cell.strip() for cell in line.strip().strip("|").split("|")] == wanted:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([cell.strip() for cell in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table with the header {header!r}")


def test_cli_md_exit_codes_match_exit_code_enum() -> None:
    rows = table_rows((DOCS / "cli.md").read_text(encoding="utf-8"), "| name | value | meaning |")
    documented = {row[0].strip("`"): int(row[1]) for row in rows}
    assert documented == {code.name: code.value for code in ExitCode}
    assert all(row[2] for row in rows), "an exit code without a meaning in docs/cli.md"


def test_readme_exit_codes_match_exit_code_enum() -> None:
    rows = table_rows(section(README.read_text(encoding="utf-8"), "Exit codes"), "| code | meaning |")
    assert sorted(int(row[0]) for row in rows) == sorted(code.value for code in ExitCode)


# --- module names in the docs ------------------------------------------------------------------------------------

#: Where the files named in the docs live: a ``name.py`` in backticks must be the end of one of their paths.
NAMED_TREES = ("src", "tests", "bench", "docs", "examples")


#: What a backticked token that names a file or module looks like: ``x.py``, ``src/...``, ``sneakernet.x``.
NAME_FORMS = (r"[\w./-]*\w\.py", r"src/[\w./-]+", r"sneakernet(\.\w+)+")


def named_modules(text: str) -> Iterator[str]:
    """Backticked file names (``restore.py``, ``cli/render.py``, ``src/sneakernet/cli/``) and dotted module names
    (``sneakernet.errors``) in ``text``, code blocks included: a command shown there names real files too. Spans
    are paired line by line, so that a fence or a stray backtick cannot shift the pairing of a whole page."""
    spans = (match for line in text.splitlines() for match in re.finditer(r"`([^`\s]+)`", line))
    for match in spans:
        token = match.group(1).rstrip(".,:;")
        if any(re.fullmatch(form, token) for form in NAME_FORMS):
            yield token


def names_something(token: str, files: list[str]) -> bool:
    if token.startswith("sneakernet."):
        return dotted_name_exists(token)
    if token.startswith(NAMED_TREES):
        return (ROOT / token).exists()
    return any(path == token or path.endswith("/" + token) for path in files)


def dotted_name_exists(token: str) -> bool:
    """``sneakernet.errors`` (a module) or ``sneakernet.errors.ExitCode`` (a name in one), imported to check."""
    parts = token.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@pytest.mark.parametrize(
    "md", [*markdown_files(), ROOT / "bench" / "README.md"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_module_names_in_the_docs_exist(md: Path) -> None:
    """A module moved or renamed must be renamed in the docs too (README's layout, docs/format.md's list of the
    modules that implement it, reliability.md's tests, ...)."""
    files = [
        str(path.relative_to(ROOT))
        for tree in NAMED_TREES
        for path in (ROOT / tree).rglob("*")
        if path.is_file() and ".egg-info" not in str(path)
    ]
    gone = sorted(
        {token for token in named_modules(md.read_text(encoding="utf-8")) if not names_something(token, files)}
    )
    assert not gone, f"{md.relative_to(ROOT)} names what is not there (moved? renamed?): {', '.join(gone)}"
