"""Every assertion on a playbook run shows that run's output when it fails: the run helper's
message holds what the run printed (stdout and stderr) and what its tasks returned, whole (pytest
cuts a message that is not a string to 240 characters); and no test asserts on a run, or on a
value taken from one, without such a message (read from the sources: no playbook runs here)."""
import ast
import glob
import os
import re
import subprocess
import sys
import textwrap

from helpers import Run, as_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "*.py"))
                 + glob.glob(os.path.join(ROOT, "tests", "cluster", "*.py")))
# What runs a playbook or the stack: helpers' two and the stack's logic itself (tests/cluster); a
# call that names an ansible executable; a function of a test file (or one it imports from another)
# that returns what one of these gives, or whose code names an executable.
RUNNERS = {"playbook", "run_playbook", "run_stack"}
EXECUTABLES = ("ansible-playbook", "ansible-galaxy", "ansible-doc", "ansible-vault", "ansible-navigator")


def _finished(stdout, stderr, code):
    return subprocess.CompletedProcess(["ansible-playbook", "play.yml"], code, stdout, stderr)


def test_the_message_holds_stdout_stderr_and_every_result_whole():
    stdout = "TASK [Converge stack showcase]\n" + "ok: [localhost]\n" * 400 + "fatal: [localhost]: FAILED!"
    run = Run(_finished(stdout, "[WARNING]: the engine said 500", 2),
              [{"_task": "stack : Converge stack showcase", "changed": True, "actions": ["recreate"] * 100}])
    for message in (run.output, run.details):
        assert stdout in message and "[WARNING]: the engine said 500" in message
    assert "exit code 2" in run.details and '"recreate"' in run.details and run.details.count("recreate") == 100
    assert as_text({"checks": [{"ok": False, "name": "x" * 300}]}).count("x") == 300


def test_pytest_shows_the_whole_message_of_a_failed_assertion(tmp_path):
    """As a test of the suite fails: the run's stdout, its stderr and its task results are in
    pytest's report, not cut (a playbook's output is often longer than the 640 characters pytest
    keeps of its own explanation)."""
    (tmp_path / "test_fails.py").write_text(textwrap.dedent("""
        import subprocess
        from helpers import Run

        def test_a_failed_run():
            proc = subprocess.run(["sh", "-c", "seq 1 500; echo printed-last; echo said-on-stderr >&2; exit 2"],
                                  capture_output=True, text=True)
            run = Run(proc, [{"_task": "box", "changed": True, "reasons": ["env MODE"]}])
            assert run.rc == 0, run.output

        def test_a_changed_result():
            proc = subprocess.run(["sh", "-c", "seq 1 500; echo said-on-stderr >&2"], capture_output=True, text=True)
            run = Run(proc, [{"_task": "box", "changed": True, "reasons": ["env MODE"]}])
            assert run.result("box")["changed"] is False, run.details
    """))
    # Not on CI (pytest's CI and BUILD_NUMBER lift its limits), with no options from outside.
    env = dict((k, v) for k, v in os.environ.items() if k not in ("CI", "BUILD_NUMBER", "PYTEST_ADDOPTS"))
    env["PYTHONPATH"] = os.path.join(ROOT, "tests", "integration")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "--rootdir", str(tmp_path), "test_fails.py"], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=120, env=env)
    report = proc.stdout + proc.stderr
    assert "2 failed" in report, report
    # The message's lines as pytest prints them: "E" and an indent before each.
    first, second = ([re.sub(r"^E\s+(AssertionError: )?", "", line).strip() for line in part.splitlines()]
                     for part in report.split("test_a_changed_result", 1))
    for lines, wanted in ((first, ["printed-last", "said-on-stderr"]),
                          (second, ["said-on-stderr", "exit code 0", '"env MODE"'])):
        missing = [w for w in [str(n) for n in range(1, 501)] + wanted if w not in lines]
        assert not missing, "%s not in:\n%s" % (missing, report)


# --- the sources: no assertion on a run without the run in its message ---------------------------

def _names(node):
    return set(n.id for n in ast.walk(node) if isinstance(n, ast.Name))


def _called(node):
    """The names of the functions `node` calls (a method by its name only when it is one of
    RUNNERS: subprocess.run is not a test's own run), and whether it names an ansible executable."""
    names, executable = set(), False
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Name):
                names.add(n.func.id)
            elif isinstance(n.func, ast.Attribute) and n.func.attr in RUNNERS:
                names.add(n.func.attr)
            executable = executable or any(isinstance(c, ast.Constant) and isinstance(c.value, str) and any(
                e in c.value for e in EXECUTABLES) for arg in n.args for c in ast.walk(arg))
    return names, executable


def _names_an_executable(function):
    """Whether a function's code (its docstring aside) names an ansible executable: it runs one,
    as a shell command line or in a container, and what it returns is that run."""
    body = function.body[1:] if ast.get_docstring(function) else function.body
    return any(isinstance(c, ast.Constant) and isinstance(c.value, str) and any(e in c.value for e in EXECUTABLES)
               for statement in body for c in ast.walk(statement))


class _Scope(object):
    """A top-level function (with what it nests) or the module's own statements."""

    def __init__(self, node, statements):
        self.node, self.statements, self.runs = node, statements, set()

    def walk(self):
        for statement in self.statements:
            for n in ast.walk(statement):
                yield n


def _targets(node):
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets, value = getattr(node, "targets", None) or [node.target], node.value
    elif isinstance(node, ast.For):   # a comprehension's names stay in it: its iterable is in the expression
        targets, value = [node.target], node.iter
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        targets, value = [node.optional_vars], node.context_expr
    elif isinstance(node, ast.NamedExpr):
        targets, value = [node.target], node.value
    else:
        return [], None
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)], value


def _scopes(tree):
    module = [s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    scopes = [_Scope(tree, module)]
    for node in tree.body:
        for f in ([node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else
                  [m for m in getattr(node, "body", []) if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]):
            scopes.append(_Scope(f, [f]))
    return scopes


def _imported_runners(tree):
    """The names a test file imports from another of tests/integration that give a run there."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            path = os.path.join(ROOT, "tests", "integration", node.module + ".py")
            if os.path.exists(path):
                found.update(a.asname or a.name for a in node.names if a.name in _runners_of(path))
    return found


_RUNNERS_OF = {}


def _runners_of(path):
    if path not in _RUNNERS_OF:
        _RUNNERS_OF[path] = set()   # an import circle ends here
        with open(path) as handle:
            _RUNNERS_OF[path] = _analyse(ast.parse(handle.read()))[0]
    return _RUNNERS_OF[path]


def _analyse(tree):
    """(runners, scopes): the functions that give a run, and in each scope the names that hold a
    run or a value taken from one (a result, its output, a message), to a fixed point."""
    runners = set(RUNNERS) | _imported_runners(tree)
    scopes = _scopes(tree)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def from_run(node, scope):
        called, executable = _called(node)
        return executable or bool(called & runners) or bool(_names(node) & scope.runs)

    # First what the functions make themselves, then what they are given: a function is a runner
    # by what it runs, not by what a caller passes it (run(cmd) in tests/compat runs docker too).
    for given in (False, True):
        grew = True
        while grew:
            grew = False
            for scope in scopes:
                for n in scope.walk():
                    names, value = _targets(n)
                    if value is not None and from_run(value, scope) and not set(names) <= scope.runs:
                        scope.runs.update(names)
                        grew = True
                    # A list a run is added to holds one.
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                            and isinstance(n.func.value, ast.Name) and n.func.value.id not in scope.runs \
                            and n.func.attr in ("append", "extend", "add", "insert") \
                            and any(from_run(arg, scope) for arg in n.args):
                        scope.runs.add(n.func.value.id)
                        grew = True
                    # A function of the file called with a run: its parameter holds one.
                    if given and isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                        for f in functions:
                            if f.name == n.func.id:
                                params = [a.arg for a in f.args.args]
                                for param, arg in zip(params, n.args):
                                    if from_run(arg, scope) and param not in _owner(scopes, f).runs:
                                        _owner(scopes, f).runs.add(param)
                                        grew = True
                for n in scope.walk():
                    if not given and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                            and n.name not in runners and (_names_an_executable(n) or any(
                                isinstance(r, ast.Return) and r.value is not None and from_run(r.value, scope)
                                for r in ast.walk(n))):
                        runners.add(n.name)
                        grew = True
    return runners, scopes


def _owner(scopes, function):
    return next(s for s in scopes[1:] if function in list(ast.walk(s.node)))


TEXT_CALLS = {"as_text", "str", "join", "format", "repr", "dumps"}


def _is_text(node):
    """Whether a message is text, which pytest prints whole (any other object it cuts to 240
    characters): a string or a formatted one, an attribute (run.output), a name or an item at an
    index (taken as text: their type is not written here), a slice, a result's msg, or what
    as_text, str and join give."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Attribute, ast.Name)):
        return True
    if isinstance(node, ast.Subscript):
        key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        return isinstance(node.slice, ast.Slice) or key == "msg" or isinstance(key, int)
    if isinstance(node, ast.Call):
        return getattr(node.func, "id", getattr(node.func, "attr", None)) in TEXT_CALLS
    return False


def _shows_run(runners, scope):
    """Whether an expression shows a run: it runs a command, calls a runner, or reads a run of `scope`."""
    def shows_run(node):
        called, executable = _called(node)
        return executable or bool(called & runners) or bool(_names(node) & scope.runs)
    return shows_run


def offenders(path):
    """file:line of each assertion on a run (or a value taken from one) whose message does not
    show the run: no message, one that names no run nor anything taken from one, or one that is
    not text (a tuple, a dict, a list: cut by pytest)."""
    with open(path) as handle:
        source = handle.read()
    tree = ast.parse(source)
    runners, scopes = _analyse(tree)
    found = []
    for scope in scopes:
        shows_run = _shows_run(runners, scope)
        for n in scope.walk():
            if isinstance(n, ast.Assert) and shows_run(n.test) and (
                    n.msg is None or not shows_run(n.msg) or not _is_text(n.msg)):
                found.append("%s:%d: %s" % (os.path.relpath(path, ROOT), n.lineno,
                                            source.splitlines()[n.lineno - 1].strip()))
    return sorted(set(found), key=lambda line: (line.split(":")[0], int(line.split(":")[1])))


def test_every_assertion_on_a_run_shows_the_run():
    found = [line for path in SOURCES for line in offenders(path)]
    assert not found, "%d assertions on a playbook run would fail without its output (add `, run.output`, or " \
        "`, run.details` for a task's result):\n%s" % (len(found), "\n".join(found))


COMPAT = os.path.join(ROOT, "tests", "compat", "run.py")


def compat_offenders(path=COMPAT):
    """make compat checks with expect(condition, message, play): file:line of each expect about a
    run (its condition reads one, or a value taken from one) that is not given that run to show."""
    with open(path) as handle:
        source = handle.read()
    runners, scopes = _analyse(ast.parse(source))
    found = []
    for scope in scopes:
        shows_run = _shows_run(runners, scope)
        for n in scope.walk():
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "expect" and n.args:
                play = n.args[2] if len(n.args) > 2 else next((k.value for k in n.keywords if k.arg == "play"), None)
                if shows_run(n.args[0]) and (play is None or not shows_run(play)):
                    found.append("%s:%d: %s" % (os.path.relpath(path, ROOT), n.lineno,
                                                source.splitlines()[n.lineno - 1].strip()))
    return found


def test_every_compat_check_on_a_run_shows_the_run():
    found = compat_offenders()
    assert not found, "%d checks of tests/compat/run.py on a run would fail without its output (pass the " \
        "play to expect):\n%s" % (len(found), "\n".join(found))


def test_the_source_check_finds_what_it_should(tmp_path):
    path = tmp_path / "test_example.py"
    path.write_text(textwrap.dedent("""
        def deploy(stack):
            return playbook([stack])

        def report(run):
            assert run.rc == 0
            return run.result("stack")

        def test_it(stack):
            run = deploy(stack)
            assert run.rc == 0
            assert run.rc == 0, run.output
            result = run.result("stack")
            assert result["changed"] is False
            assert result["changed"] is False, run.details
            assert report(deploy(stack))["changed"], "no message of the run"
            assert inspect("container", stack)["Id"]
            for line in run.output.splitlines():
                assert "secret" not in line
            runs = []
            runs.append(deploy(stack))
            for each in runs:
                assert each.rc == 0, (each.output, "a tuple pytest cuts")
    """))
    assert [line.split(":", 2)[1] for line in offenders(str(path))] == ["6", "11", "14", "16", "19", "23"]
