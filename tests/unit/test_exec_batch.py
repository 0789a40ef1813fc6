"""docker/exec_batch.py: execs asked for at the same moment run as one exec per container; the
script's output read back program by program; a container without sh gets each program alone."""
import threading
import time

from hypothesis import given, settings, strategies as st

from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.docker.exec_batch import (
    SCRIPT, BatchedGateway, ExecBatch, batch_argv, batch_output, parse_output, split_batch)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    DockerGateway, exec_in)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CHECKS

NGINX = "clockwork-test/nginx:1.22"
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@given(st.lists(st.lists(texts, min_size=1, max_size=4), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_a_batch_argv_gives_back_its_programs(programs):
    boundary, read = split_batch(batch_argv("b0undary", programs))
    assert boundary == "b0undary" and read == programs
    assert batch_argv("b", programs)[:3] == ["sh", "-c", SCRIPT], "the script is fixed text: no value is in it"


@given(st.lists(st.tuples(st.integers(0, 255), texts.map(str.strip)), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_the_script_output_is_read_back_program_by_program(results):
    boundary = "9f3c"
    output = batch_output(boundary, results).strip()   # an exec's output comes stripped
    assert parse_output(boundary, output, len(results)) == results


def test_a_batch_cut_short_is_not_read():
    output = batch_output("b", [(0, "one"), (0, "two")])
    assert parse_output("b", output[:len(output) // 2], 2) is None
    assert parse_output("b", "b not-a-number", 1) is None


def runners_at_once(batch, jobs):
    """Run each job (a function of the batch) in a thread of its own, as run_checks does."""
    results = [None] * len(jobs)

    def run(index):
        with batch.runner():
            results[index] = jobs[index](batch)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads), "a runner never got its exec"
    return results


class Recorder(object):
    """run_alone that answers each program by its first word and records every exec made."""

    def __init__(self, sh=True):
        self.calls, self.sh, self.lock = [], sh, threading.Lock()

    def __call__(self, container, argv, seconds):
        with self.lock:
            self.calls.append((container, list(argv)))
        batch = split_batch(argv)
        if batch is None:
            return 0, "%s in %s" % (argv[0], container)
        if not self.sh:
            return 126, 'exec: "sh": executable file not found in $PATH'
        boundary, programs = batch
        return 0, batch_output(boundary, [(0, "%s in %s" % (p[0], container)) for p in programs]).strip()


def test_execs_asked_at_once_run_as_one_exec_per_container():
    recorder = Recorder()
    batch = ExecBatch(recorder, runners=4)
    jobs = [lambda b, p=p, c=c: b.run(c, [p], 10) for p, c in (("nc", "api"), ("sha256sum", "api"),
                                                                  ("touch", "api"), ("curl", "frontend"))]
    results = runners_at_once(batch, jobs)
    assert results == [(0, "nc in api"), (0, "sha256sum in api"), (0, "touch in api"), (0, "curl in frontend")]
    assert sorted(c for c, _argv in recorder.calls) == ["api", "frontend"], recorder.calls
    assert [split_batch(a)[1] for c, a in recorder.calls if c == "api"] == [[["nc"], ["sha256sum"], ["touch"]]]


def test_a_container_without_sh_gets_each_program_alone():
    recorder = Recorder(sh=False)
    results = runners_at_once(ExecBatch(recorder, runners=2), [lambda b: b.run("distroless", ["a"], 5),
                                                               lambda b: b.run("distroless", ["b"], 5)])
    assert results == [(0, "a in distroless"), (0, "b in distroless")]
    assert [a for _c, a in recorder.calls if split_batch(a) is None] == [["a"], ["b"]]


def test_a_runner_busy_aside_does_not_hold_the_others_up():
    recorder = Recorder()
    batch = ExecBatch(recorder, runners=2)
    released = threading.Event()

    def slow(b):
        b.aside(released.wait, 5)   # an exec of its own (env) or a sleep between tries
        return "slow"

    def quick(b):
        result = b.run("api", ["nc"], 5)
        released.set()
        return result
    started = time.monotonic()
    assert runners_at_once(batch, [slow, quick]) == ["slow", (0, "nc in api")]
    assert time.monotonic() - started < 4, "the exec waited for the runner that was busy aside"


def test_the_checks_of_one_container_share_one_exec_on_the_memory_engine():
    engine = MemoryEngine(images=[NGINX], execs={"cat": (0, "hello"), "nc": (0, ""), "false": (1, "no")})
    for name in ("api", "web"):
        engine.start(engine.create_container(NGINX, name=name)["Id"])
    gateway = DockerGateway(api=engine)
    checks = [{"kind": "file", "connection": "f", "container": "api", "path": "/etc/hostname"},
              {"kind": "dns_tcp", "connection": "n", "container": "api", "host": "web", "port": 80},
              {"kind": "dns_tcp", "connection": "m", "container": "web", "host": "api", "port": 80}]
    assert all(kind in CHECKS for kind in ("file", "dns_tcp"))
    reports = run_checks(gateway, checks, parallel=8)
    assert [r["ok"] for r in reports] == [True, True, True], reports
    execs = [c.args[1] for c in engine.calls if c.method == "exec_create"]
    assert sum(1 for argv in execs if split_batch(argv)) == 1 and len(execs) == 2, execs


def test_exec_in_through_a_batched_gateway_is_exec_in():
    engine = MemoryEngine(images=[NGINX], execs={"cat": (0, "hello\n")})
    engine.start(engine.create_container(NGINX, name="api")["Id"])
    gateway = DockerGateway(api=engine)
    alone = exec_in(gateway, "api", ["cat", "/x"])
    batch = ExecBatch(lambda c, a, s: (0, ""), runners=1)
    with batch.runner():
        assert BatchedGateway(gateway, batch).container("api")["Name"] == "/api", "reads are the gateway's"
    assert alone == (0, "hello")
