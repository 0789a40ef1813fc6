"""A run from a controller whose engine is another machine's (DOCKER_HOST=tcp://... or ssh://...): the files
the stack writes for its containers to mount (file resources' content, password files, TLS material) would be
written on the controller, where no container sees them. Refused in the pre-flight, naming the engine and the
files, before anything is touched; a bind mount of the engine's own host path is not looked for here."""
import os

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway

import memory_stacks as ms
from memory_stacks import NGINX, base, home, instant_waits  # noqa: F401  (fixtures; home, instant_waits autouse)


def remote_engine():
    """A memory engine standing for another machine's: its host files are not this process's."""
    engine = ms.new_engine()
    engine.files_here = False
    return engine


def with_a_file(base):
    resources = [{"name": "motd", "type": "file", "path": "motd.txt", "content": "hello\n"},
                 {"name": "web", "image": NGINX}]
    connections = [{"type": "file", "from": "web", "to": "motd", "mount_path": "/etc/motd.txt"}]
    return ms.params(base, resources, connections)


def test_files_the_stack_writes_are_refused_on_another_machines_engine_before_anything(base):
    engine = remote_engine()
    dry = dry_run_gateway(live=engine)
    dry.created = None   # a dry run's lock is in its own memory: the engine sees no write at all
    for gateway in (dry, ms.RecordingGateway(engine)):
        with pytest.raises(ClockworkError) as refused:
            ms.run_stack(gateway, with_a_file(base))
        message = refused.value.msg
        assert "engine: memory://engine is another machine's engine" in message, message
        assert os.path.join(str(base), "motd.txt") in message and "run the task on the Docker host" in message
        assert ms.stack_writes(engine, 0, gateway) == [] if gateway.created is not None else engine.writes() == [], \
            "nothing but the stack's lock, taken and let go"
        assert not os.path.exists(os.path.join(str(base), "motd.txt"))


def test_the_same_stack_on_this_machines_engine_is_made(base):
    engine = ms.new_engine()
    report, _gateway = ms.run(engine, with_a_file(base))
    assert report["changed"] and open(os.path.join(str(base), "motd.txt")).read() == "hello\n"


def test_a_bind_mount_of_the_engines_own_path_is_not_looked_for_on_this_machine(base):
    mount = {"type": "bind", "source": "/srv/only-there", "target": "/data"}
    resources = [{"name": "web", "image": NGINX, "mounts": [mount]}]
    report, _gateway = ms.run(remote_engine(), ms.params(base, resources, []))
    assert report["changed"], report
    with pytest.raises(ClockworkError) as refused:
        ms.run(ms.new_engine(), ms.params(base, resources, []))
    assert "bind source /srv/only-there does not exist on the Docker host" in refused.value.msg
