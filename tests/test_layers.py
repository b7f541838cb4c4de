"""The package's shape, read from its source with ``ast``: no import circle, no module over 600 lines, imports that
only go down the layers (LAYERS), machinery packages that import none of each other, pure layers that touch no file.

Every import counts, wherever it stands: at the top of a module, inside a function (the lazy imports that keep a
command from loading the others) and under ``if TYPE_CHECKING:``, absolute or relative. A circle closed by a
function-level import still ties the modules on it into one unit that cannot be moved, tested or understood apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "sneakernet"

#: The most lines a module may have (issue 13: aim for 400 or less).
MAX_LINES = 600

#: Today's modules over MAX_LINES, each until the slice that splits it lands (then its entry goes): the list only
#: shrinks, and by the end of issue 13 it is empty. A module not listed here may not grow past MAX_LINES.
TOO_LONG_FOR_NOW = {}

#: Import edges (importer, imported) left out of the circle check: each a known circle that a slice removes, the
#: entry going with it (an entry whose import is gone excuses nothing). Empty since resume.match no longer imports
#: pack.FileEnd inside a function (the chunk stream is chunks/stream.py).
KNOWN_CIRCLE_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    """``sneakernet.cli.app`` for src/sneakernet/cli/app.py; a package's ``__init__.py`` is the package."""
    parts = ("sneakernet", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in it: ``from .a import b`` names module
    ``a.b`` when there is one, else ``a``; an import of a package names its ``__init__`` (the parent packages
    that Python imports on the way are not counted: else every package would be a circle with its own modules)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # sneakernet.format.FileRecord -> sneakernet.format
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH: dict[str, set[str]] = {name: imported_modules(name, path) for name, path in MODULES.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def circle_edges(component: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(GRAPH[a]) if b in component]


def test_no_import_circle() -> None:
    graph = {name: {b for b in imported if (name, b) not in KNOWN_CIRCLE_EDGES} for name, imported in GRAPH.items()}
    found = circles(graph)
    assert not found, "import circles (every import counts, in functions and TYPE_CHECKING too):\n" + "\n".join(
        "  " + "; ".join(circle_edges(component)) for component in found
    )


def test_the_circle_finder_finds_a_circle_closed_in_a_function(tmp_path: Path) -> None:
    """The check above would pass on a graph it cannot read: it must see today's known circle, if still there,
    and a circle a function-level relative import closes."""
    graph = {"sneakernet.a": {"sneakernet.b"}, "sneakernet.b": {"sneakernet.c"}, "sneakernet.c": {"sneakernet.a"}}
    assert circles({**graph, "sneakernet.d": {"sneakernet.a"}}) == [["sneakernet.a", "sneakernet.b", "sneakernet.c"]]
    for importer, imported in KNOWN_CIRCLE_EDGES:
        if importer in GRAPH and imported in GRAPH[importer]:
            assert circles(GRAPH), "the known circle is there but not found"
    source = tmp_path / "m.py"
    source.write_text("import os\n\n\ndef f():\n    from .packer import FileEnd\n    from .chunks import stream\n")
    assert {"sneakernet.packer", "sneakernet.chunks.stream"} <= imported_modules("sneakernet.resume", source)


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_over_600_lines() -> None:
    long = {
        str(path.relative_to(SRC)): lines(path)
        for path in MODULES.values()
        if lines(path) > MAX_LINES and str(path.relative_to(SRC)) not in TOO_LONG_FOR_NOW
    }
    assert not long, f"modules over {MAX_LINES} lines (split them; issue 13): {long}"


# --- layers: imports only go down --------------------------------------------------------------------------------

#: The layers, bottom first. A module may import its own layer and the layers below, never one above; a module is
#: in the layer of the longest prefix that names it (``sneakernet.format`` names the format/ package and its
#: modules). Names of modules still to come (``format/``, ``parity/``, ``io/atomic.py``) are here already.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("_version", "errors", "output", "allocator", "progress", "patterns", "units")),
    ("pure", ("format", "recordfile", "codec", "chunks", "space", "crypto", "parity", "options", "validate")),
    ("io", ("io", "durable", "scan", "journal")),
    ("drive", ("drive", "info")),
    ("machinery", ("packer", "planner", "verifier", "restorer")),
    ("command line", ("config", "cli")),
    ("public face", ("", "__main__")),
]

#: Layers whose code works on bytes and records it is handed: no file opened, listed, synced or removed there.
PURE_LAYERS = {"base", "pure"}

#: The machinery packages: each a command's work, sharing only what lies below them (never one another).
MACHINERY = ("packer", "planner", "verifier", "restorer")

#: Known upward imports (importer, imported), each until it is fixed; the entry goes with it.
KNOWN_UPWARD: set[tuple[str, str]] = set()

#: Known pure-layer modules that still touch files, each until it is fixed. Empty since format/container.py writes
#: and reads streams it is handed (drive/ opens, fsyncs and renames its files through io/store.py).
KNOWN_FILE_IO: set[str] = set()


def layer_of(name: str) -> int | None:
    """The index in LAYERS of module ``name``'s layer (None: in no layer)."""
    best: tuple[int, int] | None = None  # (length of the prefix, layer)
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            full = f"sneakernet.{prefix}" if prefix else "sneakernet"
            if (name == full or (prefix and name.startswith(full + "."))) and (best is None or len(full) > best[0]):
                best = (len(full), number)
    return None if best is None else best[1]


def test_every_module_has_a_layer() -> None:
    assert not [name for name in MODULES if layer_of(name) is None], "add these modules' prefix to LAYERS"


def test_imports_only_go_down() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name) or 0][0]}) imports {imported} ({LAYERS[layer_of(imported) or 0][0]})"
        for name, imported_names in sorted(GRAPH.items())
        for imported in sorted(imported_names)
        if (layer_of(imported) or 0) > (layer_of(name) or 0) and (name, imported) not in KNOWN_UPWARD
    ]
    assert not upward, "imports that go up a layer:\n  " + "\n  ".join(upward)


def package_of(name: str) -> str:
    return name.split(".")[1] if name.count(".") else ""


def test_machinery_packages_import_none_of_each_other() -> None:
    crossing = [
        f"{name} imports {imported}"
        for name, imported_names in sorted(GRAPH.items())
        for imported in sorted(imported_names)
        if package_of(name) in MACHINERY
        and package_of(imported) in MACHINERY
        and package_of(name) != package_of(imported)
    ]
    assert not crossing, "what two machinery packages share belongs a layer down:\n  " + "\n  ".join(crossing)


#: What touches files: os's file calls, open(), pathlib's read and write, and the modules made for it.
FILE_CALLS = {
    "os": {
        "open",
        "read",
        "write",
        "pread",
        "pwrite",
        "fsync",
        "fdatasync",
        "stat",
        "lstat",
        "fstat",
        "scandir",
        "listdir",
        "walk",
        "mkdir",
        "makedirs",
        "rename",
        "replace",
        "unlink",
        "remove",
        "rmdir",
        "link",
        "symlink",
        "readlink",
        "utime",
        "chmod",
        "chown",
        "truncate",
        "ftruncate",
        "sync",
        "statvfs",
        "access",
    },
    "shutil": None,  # None: any call
    "tempfile": None,
    "fcntl": None,
    "mmap": None,
}
PATH_CALLS = {"read_text", "read_bytes", "write_text", "write_bytes"}


def file_calls(path: Path) -> set[str]:
    """The calls in ``path`` that touch files (``os.open``, ``open()``, ``shutil.copyfile``, ``p.read_text``...)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            found.add("open()")
        elif isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in FILE_CALLS:
                allowed = FILE_CALLS[func.value.id]
                if allowed is None or func.attr in allowed:
                    found.add(f"{func.value.id}.{func.attr}")
            elif func.attr in PATH_CALLS:
                found.add(f".{func.attr}()")
    return found


def test_pure_layers_touch_no_files() -> None:
    touching = {
        name: sorted(file_calls(path))
        for name, path in MODULES.items()
        if LAYERS[layer_of(name) or 0][0] in PURE_LAYERS and name not in KNOWN_FILE_IO and file_calls(path)
    }
    assert not touching, f"pure modules that touch files (hand them bytes or a stream instead): {touching}"


def test_the_file_call_finder_finds_them(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import os, shutil\nos.open('x', 0)\nopen('y')\nshutil.copyfile('a', 'b')\nos.cpu_count()\n")
    assert file_calls(source) == {"os.open", "open()", "shutil.copyfile"}
