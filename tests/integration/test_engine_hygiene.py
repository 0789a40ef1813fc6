"""The test harness leaves the engine as it found it: what remove_stack and the session's
leak check (conftest.py) see and remove."""
import helpers
from helpers import POSTGRES_IMAGE, docker, engine_leaks, engine_objects, inspect, remove_stack


def anonymous_volume_of(container):
    return [m["Name"] for m in inspect("container", container)["Mounts"] if m["Type"] == "volume"][0]


def test_remove_stack_takes_anonymous_volumes_even_of_containers_already_removed(stack):
    before = engine_objects()
    kept, dropped = stack + "-kept", stack + "-dropped"
    for name in (kept, dropped):
        docker("run", "-d", "--name", name, "--label", "io.clockwork.stack=" + stack, "-e", "POSTGRES_PASSWORD=x",
               POSTGRES_IMAGE)
    volumes = [anonymous_volume_of(kept), anonymous_volume_of(dropped)]
    docker("rm", "-f", dropped)   # as the collection's destroy does: without -v
    assert inspect("volume", volumes[1]) is not None
    leaks, _others = engine_leaks(before, helpers.EVENTS, {stack})
    assert "volume %s (anonymous, mounted by %s)" % (volumes[1], dropped) in leaks
    assert "container " + kept in leaks

    remove_stack(stack)
    assert [inspect("volume", v) for v in volumes] == [None, None]
    assert engine_leaks(before, helpers.EVENTS, {stack})[0] == []
