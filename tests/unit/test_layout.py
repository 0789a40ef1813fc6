"""The shape of the code, as README's Layout describes it: no import circle, no file of
module_utils over 500 lines, and no code outside a connection type's folder that compares
against a type's name (the registry and the type's hooks answer instead)."""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "plugins")
PACKAGE = "ansible_collections.clockwork.connections.plugins"
TYPES = ("dependency", "database", "network", "file", "service_mesh")
MAX_LINES = 500


def _sources():
    for folder, _dirs, names in os.walk(PLUGINS):
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def _module_name(path):
    relative = os.path.relpath(path, PLUGINS)[:-3].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join([PACKAGE] + relative)


def _imports(path, known):
    """The collection's modules `path` imports, at the top or inside a function."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            for alias in node.names:
                candidate = node.module + "." + alias.name
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
    return found & set(known)


def _graph():
    paths = dict((_module_name(p), p) for p in _sources())
    return dict((name, _imports(path, paths)) for name, path in paths.items())


def test_no_import_circle():
    graph = _graph()
    state, circles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ is imported on the way to its modules: not an edge of a circle.
            if nxt in stack and node.startswith(nxt + "."):
                continue
            if state.get(nxt) == "open":
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_module_utils_files_are_short():
    long_files = []
    for path in _sources():
        if os.sep + "module_utils" + os.sep in path:
            with open(path) as handle:
                lines = sum(1 for _ in handle)
            if lines > MAX_LINES:
                long_files.append("%s: %d lines" % (os.path.relpath(path, ROOT), lines))
    assert not long_files, "over %d lines: %s" % (MAX_LINES, ", ".join(long_files))


# A connection's type, compared by name (a resource's type, `resource["type"] == "file"`, is another thing).
TYPE_COMPARISON = re.compile(r"""(?:\b(?:connection|c|other)(?:\["type"\]|\.get\("type"\))|\bkind)\s*[!=]=\s*["'](%s)["']"""
                             % "|".join(TYPES))


@pytest.mark.parametrize("kind", TYPES)
def test_no_type_name_compared_outside_its_folder(kind):
    found = []
    for path in _sources():
        if os.sep + kind + os.sep in path:
            continue
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                match = TYPE_COMPARISON.search(line)
                if match and match.group(1) == kind:
                    found.append("%s:%d: %s" % (os.path.relpath(path, ROOT), number, line.strip()))
    assert not found, "compares against the type %s outside its folder:\n%s" % (kind, "\n".join(found))


def test_no_two_test_files_share_a_name():
    """pytest imports test files by their base name (no packages here): two of one name stop
    `make test` at collection."""
    seen = {}
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "tests")):
        for name in files:
            if name.startswith("test_") and name.endswith(".py"):
                seen.setdefault(name, []).append(os.path.relpath(folder, ROOT))
    assert dict((name, where) for name, where in seen.items() if len(where) > 1) == {}
