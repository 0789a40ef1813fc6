"""Pure logic shared by the connections: contribution merging, network settings."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.contribution import Contribution, merge
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import (
    actual_settings, settings_drift, wanted_settings)


def test_merge_adds_env_mounts_networks_and_secrets():
    db = Contribution("database api -> postgres", env={"DATABASE_URL": "postgresql://x"},
                      secret_env=["DATABASE_URL"])
    net = Contribution("network api -> redis", env={"REDIS_HOST": "redis"},
                       networks=[{"name": "backend", "aliases": ["api"]}])
    vol = Contribution("file api -> storage", mounts=[{"type": "volume", "source": "data",
                                                       "target": "/data", "read_only": False}])
    env, mounts, networks, secret = merge({"LOG": "1"}, [], [{"name": "default", "aliases": ["api"]}],
                                          [db, net, vol])
    assert env == {"LOG": "1", "DATABASE_URL": "postgresql://x", "REDIS_HOST": "redis"}
    assert [m["target"] for m in mounts] == ["/data"]
    assert [n["name"] for n in networks] == ["default", "backend"]
    assert secret == ["DATABASE_URL"]


def test_env_conflict_names_both_connections():
    first = Contribution("network api -> redis", env={"REDIS_HOST": "redis"})
    second = Contribution("network api -> cache", env={"REDIS_HOST": "cache"})
    with pytest.raises(ClockworkError) as error:
        merge({}, [], [], [first, second])
    assert "network api -> redis" in error.value.msg and "network api -> cache" in error.value.msg


def test_declared_env_conflicts_with_a_contribution():
    with pytest.raises(ClockworkError, match="the container's own env"):
        merge({"REDIS_HOST": "elsewhere"}, [], [], [Contribution("network a -> redis", env={"REDIS_HOST": "redis"})])


def test_same_mount_twice_is_fine_a_different_one_is_not():
    mount = {"type": "volume", "source": "data", "target": "/data", "read_only": False}
    merge({}, [], [], [Contribution("a", mounts=[mount]), Contribution("b", mounts=[dict(mount)])])
    with pytest.raises(ClockworkError, match="/data"):
        merge({}, [], [], [Contribution("a", mounts=[mount]), Contribution("b", mounts=[dict(mount, source="x")])])


def test_network_aliases_merge():
    _env, _mounts, networks, _secret = merge({}, [], [{"name": "n", "aliases": ["a"]}],
                                             [Contribution("c", networks=[{"name": "n", "aliases": ["b"]}])])
    assert networks == [{"name": "n", "aliases": ["a", "b"]}]


ATTRS = {"Driver": "bridge", "Internal": False, "EnableIPv6": False,
         "IPAM": {"Config": [{"Subnet": "10.1.2.0/24", "Gateway": "10.1.2.1"}]}}


def test_network_without_subnet_leaves_the_engine_choice_alone():
    assert settings_drift(wanted_settings({"driver": "bridge"}), actual_settings(ATTRS)) == []


def test_network_drift_names_settings():
    wanted = wanted_settings({"internal": True, "subnet": "10.9.9.0/24", "gateway": "10.9.9.1"})
    assert settings_drift(wanted, actual_settings(ATTRS)) == ["internal", "subnet", "gateway"]


@pytest.mark.parametrize("kind, params, names", [
    ("network", {}, ["REDIS_HOST"]),
    ("network", {"env_var_name": "WP_REDIS_HOST"}, ["WP_REDIS_HOST"]),
    ("network", {"env_var_name": ""}, []),
    ("service_mesh", {}, ["REDIS_URL"]),
    ("service_mesh", {"service_name": "cache-svc"}, ["CACHE_SVC_URL"]),
    ("service_mesh", {"env_var_name": "UPSTREAM_URL", "tls_enabled": True}, ["UPSTREAM_URL", "REDIS_CA_FILE"]),
    ("service_mesh", {"env_var_name": ""}, []),
])
def test_network_and_service_mesh_env_names(kind, params, names):
    """The app's own variable name (env_var_name), the type's default, or none."""
    assert CONNECTION_TYPES[kind].injected_env(dict(params, to_resource="redis"), "redis") == names


@pytest.mark.parametrize("kind", ["network", "service_mesh"])
def test_env_var_name_must_be_a_variable_name(kind):
    problems = CONNECTION_TYPES[kind].validate({"network_name": "n", "env_var_name": "1-bad"})
    assert ("env_var_name", "1-bad is not an environment variable name") in problems
