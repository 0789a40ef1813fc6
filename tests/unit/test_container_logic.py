"""Pure logic of the container module: normalising and comparing (no Docker)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, env_name
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    ContainerSpec, drift, duration_ns, normalise_healthcheck, parse_port, running_config)


@pytest.mark.parametrize("port, expected", [
    (8000, ("8000/tcp", "", None)),
    ("53/udp", ("53/udp", "", None)),
    ("8080:80", ("80/tcp", "", "8080")),
    ("127.0.0.1:8080:80/tcp", ("80/tcp", "127.0.0.1", "8080")),
    ("127.0.0.1::80", ("80/tcp", "127.0.0.1", "")),
    ({"container_port": 80, "host_port": 8080}, ("80/tcp", "", "8080")),
    ({"container_port": 80}, ("80/tcp", "", None)),
    ({"container_port": 80, "host_ip": "127.0.0.1"}, ("80/tcp", "127.0.0.1", "")),
])
def test_parse_port_forms(port, expected):
    assert parse_port(port) == expected


@pytest.mark.parametrize("port", ["http", "80/icmp", "1:2:3:4", {"host_port": 80}])
def test_parse_port_rejects_nonsense(port):
    with pytest.raises(ClockworkError):
        parse_port(port)


def test_durations():
    assert duration_ns("30s") == 30 * 10 ** 9
    assert duration_ns("1m30s") == 90 * 10 ** 9
    assert duration_ns("500ms") == 500 * 10 ** 6
    assert duration_ns(2) == 2 * 10 ** 9
    with pytest.raises(ClockworkError):
        duration_ns("soon")


def test_healthcheck_forms():
    assert normalise_healthcheck({"test": "curl x"})["test"] == ["CMD-SHELL", "curl x"]
    assert normalise_healthcheck({"test": ["pg_isready"]})["test"] == ["CMD", "pg_isready"]
    assert normalise_healthcheck({"test": ["CMD", "true"]})["test"] == ["CMD", "true"]


@pytest.mark.parametrize("name, expected", [
    ("redis", "REDIS"), ("backend-api", "BACKEND_API"), ("api.v2", "API_V2"), ("Db1", "DB1")])
def test_env_name_rule(name, expected):
    assert env_name(name) == expected


IMAGE = {"Id": "sha256:img", "Config": {"Env": ["PATH=/bin"], "Cmd": ["nginx"], "Labels": {"maintainer": "x"}}}


def running_from(spec_params, **changes):
    """An inspected container as Docker would report the spec, then changed."""
    attrs = {
        "Image": "sha256:img",
        "Config": {"Env": ["B=2", "PATH=/bin", "A=1"], "Cmd": ["nginx"],
                   "Labels": {"maintainer": "x", "io.clockwork.stack": "s",
                              "io.clockwork.resource": "web", "io.clockwork.ports": "80/tcp"}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                       "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}],
                       "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        attrs[section][key] = value
    return attrs


PARAMS = {"name": "web", "image": "nginx", "env": {"A": 1, "B": "2"}, "ports": ["8080:80"],
          "mounts": [{"source": "data", "target": "/data"}]}


def test_matching_configuration_has_no_drift():
    spec = ContainerSpec(PARAMS, "s")
    assert drift(spec.comparable(IMAGE), running_config(running_from(PARAMS))) == []


def test_env_change_is_named():
    spec = ContainerSpec(dict(PARAMS, env={"A": "1", "B": "3"}), "s")
    assert drift(spec.comparable(IMAGE), running_config(running_from(PARAMS))) == ["env B"]


def test_image_by_id_mount_and_port_drift():
    spec = ContainerSpec(dict(PARAMS, ports=["9090:80"]), "s")
    running = running_from(PARAMS, HostConfig__Mounts=[])
    running["Image"] = "sha256:old"
    assert drift(spec.comparable(IMAGE), running_config(running)) == ["image", "ports", "mounts"]


def test_duplicate_mount_target_is_an_error():
    with pytest.raises(ClockworkError, match="same target twice"):
        ContainerSpec(dict(PARAMS, mounts=[{"source": "a", "target": "/x"}, {"source": "b", "target": "/x"}]), "s")
