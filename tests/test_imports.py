"""The import rules of docs/ARCHITECTURE.md, read from the source with `ast` (lazy imports included):
no cycle inside the project; gan/ and translators/ never import pipeline/ or each other; a command
module never imports another command; photo I/O never loads torch."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gan", "translators", "pipeline", "configs")


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `path` imports anywhere in its body (top level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import name` imports pkg.name when that is a module, else pkg itself
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        out |= {n for n in names if n in modules}
    return out


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(p, modules) - {m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle_and_nothing_else():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read_from_real_imports():
    g = import_graph()
    assert "gan.networks" in g["gan.checkpoint"]  # a top-level import
    assert "pipeline.world.folder" in g["pipeline.photos.folder"]  # a lazy one, inside a function


def test_no_import_cycle_in_the_project():
    assert cycles(import_graph()) == []


def test_gan_and_translators_stand_alone():
    bad = [(m, d) for m, deps in import_graph().items() for d in deps
           if (m.startswith("gan") and d.split(".")[0] in ("pipeline", "translators"))
           or (m.startswith("translators") and d.split(".")[0] in ("pipeline", "gan"))]
    assert bad == []


def test_commands_do_not_import_commands():
    bad = [(m, d) for m, deps in import_graph().items() if m.startswith("pipeline.commands.")
           for d in deps if d.startswith("pipeline.commands.")]
    assert bad == []


def test_photo_io_does_not_load_torch():
    code = "import sys, pipeline.photos.imageio; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
