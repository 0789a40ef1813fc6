"""The shape of the code, as README's Layout describes it: no import circle (in plugins/ and in
bench/), no file of module_utils over 500 lines, no code outside a connection type's folder that
compares against a type's name (the registry and the type's hooks answer instead), and the Docker
gateway (plugins/module_utils/docker/) the only code that reaches the engine and knows check mode."""
import ast
import io
import os
import re
import tokenize

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "plugins")
BENCH = os.path.join(ROOT, "bench")
GATEWAY = os.path.join(PLUGINS, "module_utils", "docker") + os.sep
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


def _circles(graph, skip=lambda node, nxt, stack: False):
    """Every import circle of `graph` (module -> the modules it imports), each spelled out."""
    state, circles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if skip(node, nxt, stack):
                continue
            if state.get(nxt) == "open":
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return circles


def test_no_import_circle():
    # A package's __init__ is imported on the way to its modules: not an edge of a circle.
    circles = _circles(_graph(), lambda node, nxt, stack: nxt in stack and node.startswith(nxt + "."))
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def _bench_graph():
    """bench/'s scripts and what each imports of the others (by their bare names, as they put
    bench/ on sys.path), at the top or inside a function."""
    names = dict((n[:-3], os.path.join(BENCH, n)) for n in os.listdir(BENCH) if n.endswith(".py"))
    graph = {}
    for name, path in names.items():
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module)
        graph[name] = found & set(names)
    return graph


def test_no_import_circle_in_bench():
    circles = _circles(_bench_graph())
    assert not circles, "import circles in bench/:\n" + "\n".join(" -> ".join(c) for c in circles)


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


def _outside_gateway(allowed=()):
    """The files of plugins/ other than the gateway's (and `allowed`, paths relative to plugins/)."""
    for path in sorted(_sources()):
        relative = os.path.relpath(path, PLUGINS)
        if not path.startswith(GATEWAY) and not any(relative.startswith(a) for a in allowed):
            yield path


def _where(path, number):
    with open(path) as handle:
        line = handle.read().splitlines()[number - 1]
    return "%s:%d: %s" % (os.path.relpath(path, ROOT), number, line.strip())


def _tree(path):
    with open(path) as handle:
        return ast.parse(handle.read(), path)


def test_docker_sdk_imported_only_by_the_gateway():
    """`import docker` and `from docker...` only in plugins/module_utils/docker/: the gateway is the
    one way to the engine, and an unchanged stack must not pay for the SDK's import."""
    found = []
    for path in _outside_gateway():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Import):
                sdk = [a.name for a in node.names if a.name == "docker" or a.name.startswith("docker.")]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                sdk = [node.module] if node.module == "docker" or node.module.startswith("docker.") else []
            else:
                continue
            if sdk:
                found.append(_where(path, node.lineno))
    assert not found, "imports the Docker SDK outside plugins/module_utils/docker/:\n" + "\n".join(found)


def test_engine_api_called_only_by_the_gateway():
    """No `.api` outside plugins/module_utils/docker/: not `engine.api.create_container(...)`, not
    `self.client.api`, and not `api = engine.api` with the call a line later, which is the same call
    around the gateway's cache, its error type and its record of actions."""
    found = []
    for path in _outside_gateway():
        lines = set()
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Attribute) and node.attr == "api":
                lines.add(node.lineno)
        found.extend(_where(path, number) for number in sorted(lines))
    assert not found, "reaches the Docker SDK's API outside plugins/module_utils/docker/:\n" + "\n".join(found)


# Where check mode may be known: the gateway (a dry-run gateway is check mode), the modules and the
# action plugins that choose the gateway, their shared runners, and the stack_summary filter, whose
# documented option words a result as what would be done (no behaviour).
CHECK_MODE_ALLOWED = ("modules" + os.sep, "action" + os.sep, os.path.join("plugin_utils", "connection_action.py"),
                      os.path.join("module_utils", "module_runner.py"), os.path.join("filter", "summary.py"))


def _check_mode_lines(path):
    """Lines where `check_mode` is code: a name, an attribute, an argument, or the key "check_mode"
    (comments and prose in docstrings do not count)."""
    with open(path) as handle:
        tokens = tokenize.generate_tokens(io.StringIO(handle.read()).readline)
        return sorted(set(token.start[0] for token in tokens
                          if (token.type == tokenize.NAME and token.string == "check_mode")
                          or (token.type == tokenize.STRING and token.string.strip("'\"") == "check_mode")))


def test_check_mode_known_only_where_the_gateway_is_chosen():
    found = []
    for path in _outside_gateway(CHECK_MODE_ALLOWED):
        found.extend(_where(path, number) for number in _check_mode_lines(path))
    assert not found, ("check_mode outside the gateway, the modules, the action plugins and "
                       "plugin_utils/connection_action.py (%d lines):\n" % len(found)) + "\n".join(found)
