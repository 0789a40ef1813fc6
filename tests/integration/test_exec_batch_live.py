"""docker/exec_batch.py's script on the real engine: the programs of one batch run in one exec,
each value reaches its program as one argument, never as shell text (hostile values and
Hypothesis), and a missing program is said as the engine says it, so exec_in reads it alike."""
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.clockwork.connections.plugins.module_utils.docker.exec_batch import (
    batch_argv, parse_output)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    EXEC_NOT_FOUND, DockerGateway, exec_alone, exec_in)

from helpers import NGINX_IMAGE, docker

HOSTILE = ["$(touch /tmp/pwned)", "`touch /tmp/pwned`", "a b  c", "'quoted'", '"double"', "back\\slash",
           "semi;touch /tmp/pwned", "line\nbreak", "*", "$HOME", "${PATH}", "-n", "%s%d", "&& touch /tmp/pwned",
           "|cat", "<in", ">/tmp/pwned", "é ünïcode ✓"]


@pytest.fixture(scope="module")
def container():
    name = "cwtest-batch-" + uuid.uuid4().hex[:8]
    docker("run", "-d", "--name", name, "--label", "io.clockwork.stack=" + name, NGINX_IMAGE)
    yield name
    docker("rm", "-fv", name, check=False)


def batch(container, programs):
    boundary = uuid.uuid4().hex
    code, output = exec_alone(DockerGateway(), container, batch_argv(boundary, programs), 30)
    assert code == 0, output
    results = parse_output(boundary, output, len(programs))
    assert results is not None, output
    return results


def test_hostile_values_reach_their_program_as_one_argument_each(container):
    results = batch(container, [["printf", "[%s]", value] for value in HOSTILE])
    assert [out for _code, out in results] == ["[%s]" % value for value in HOSTILE]
    assert all(code == 0 for code, _out in results)
    code, _out = exec_in(DockerGateway(), container, ["test", "-e", "/tmp/pwned"])
    assert code == 1, "a value ran as a command"


def test_exit_codes_outputs_and_a_missing_program(container):
    results = batch(container, [["sh", "-c", "echo out; echo err >&2; exit 3"], ["no-such-program", "x"],
                                ["timeout", "10", "no-such-program"], ["true"]])
    assert results[0] == (3, "out\nerr")
    assert results[1][0] == EXEC_NOT_FOUND and "executable file not found" in results[1][1], results
    assert results[2][0] == 127 and results[2][1].startswith("timeout:"), results
    assert results[3] == (0, "")


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
                min_size=1, max_size=4))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_value_is_passed_as_it_is(container, values):
    results = batch(container, [["printf", "[%s]", value] for value in values])
    assert results == [(0, "[%s]" % value) for value in values]
