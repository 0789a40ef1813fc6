import os
import uuid

import pytest

import helpers
from helpers import engine_leaks, engine_objects, remove_stack  # noqa: E402  (tests/integration is on sys.path)

# fail (default): fail the session on what its own stacks left; strict: on anything new
# (an engine used by this session alone, as in CI); report: only print; off: no check.
LEAK_CHECK = os.environ.get("CLOCKWORK_LEAK_CHECK", "fail")


@pytest.fixture(scope="session", autouse=True)
def engine_left_as_found():
    """Tests leave the engine as they found it: no container, network or volume (anonymous
    ones included) that the session made is left at its end."""
    helpers.EVENTS = helpers.EventLog()
    before = engine_objects()
    try:
        yield
        if LEAK_CHECK == "off":
            return
        leaks, others = engine_leaks(before, helpers.EVENTS, helpers.STACKS_SEEN, strict=LEAK_CHECK == "strict")
    finally:
        helpers.EVENTS.stop()
    if others:
        print("\nalso new on the engine, not traceable to this session's stacks (another client of the "
              "engine, or a test that names objects outside its stack):\n  " + "\n  ".join(others))
    if leaks:
        message = "the tests left %d object%s on the engine:\n  %s" % (
            len(leaks), "" if len(leaks) == 1 else "s", "\n  ".join(leaks))
        if LEAK_CHECK == "report":
            print("\n" + message)
        else:
            pytest.fail(message, pytrace=False)


@pytest.fixture
def stack():
    """A stack name of the test's own, removed (containers, networks, volumes) afterwards."""
    name = "cwtest-" + uuid.uuid4().hex[:8]
    helpers.STACKS_SEEN.add(name)
    yield name
    remove_stack(name)
