"""The policy every completed value passes, whoever produced it (no Docker, no model)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.plugin_utils import completion_policy
from ansible_collections.clockwork.connections.plugins.plugin_utils.completion_policy import (
    EngineView, Situation, is_system_path, problems, template_problem)


class FakeEngine(object):
    """Volumes and networks by name -> labels."""

    def __init__(self, **objects):
        self.objects = objects

    def labels(self, what, name):
        return self.objects.get("%s:%s" % (what, name))


def situation(**kwargs):
    kwargs.setdefault("params", {})
    return Situation("shop", **kwargs)


@pytest.mark.parametrize("template, engine", [
    ("postgresql://{user}:{password}@{host}:{port}/{database}", "postgresql"),
    ("postgres://{user}:{password}@{host}:{port}/{database}?sslmode=disable", "postgresql"),
    ("postgresql://{user}@{host}:{port}/{database}?sslmode=require&connect_timeout=5", "postgresql"),
    ("postgresql://app:{password}@{host}:{port}/appdb", "postgresql"),
    ("redis://:{password}@{host}:{port}/{database}", "redis"),
    ("redis://{host}:{port}/{database}", "redis"),
    ("rediss://{host}:{port}/0", "redis"),
])
def test_templates_that_keep_the_server_a_placeholder_pass(template, engine):
    assert template_problem(template, engine) is None


@pytest.mark.parametrize("template, engine, why", [
    ("postgresql://{user}:{password}@elsewhere.example:5432/{database}", "postgresql", "names the server"),
    ("postgresql://{user}:{password}@{host}.evil.example:{port}/{database}", "postgresql", "names the server"),
    ("postgresql://{user}:{password}@10.0.0.9:{port}/{database}", "postgresql", "names the server"),
    ("postgresql://{user}:{password}@{host}:5432/{database}", "postgresql", "names the server"),
    ("postgresql://{user}:{password}@{host}:{port}@evil.example/{database}", "postgresql", "not a connection URL"),
    ("postgresql://{user}:{password}@{host}:{port}/{database}?host=evil.example", "postgresql", "option"),
    ("postgresql://{user}:{password}@{host}:{port}/{database}?hostaddr=10.0.0.9", "postgresql", "option"),
    ("postgresql://{user}:{password}@{host}:{port}/{database}#x", "postgresql", "not a connection URL"),
    ("postgresql://{user}:{password}@{host}:{port}/{password}", "postgresql", "in its path"),
    ("postgresql://{user}:{host}@{host}:{port}/{database}", "postgresql", "in its userinfo"),
    ("http://{user}:{password}@{host}:{port}/{database}", "postgresql", "scheme http"),
    ("redis://{host}:{port}/0", "postgresql", "scheme redis"),
    ("postgresql://{host}:{port}/{database}", "redis", "scheme postgresql"),
    ("redis://{host}:{port}/0?password=x", "redis", "takes no options"),
    ("postgresql://{user}:{secret}@{host}:{port}/{database}", "postgresql", "placeholder {secret}"),
    ("postgresql://{user}:{password!r}@{host}:{port}/{database}", "postgresql", "placeholder {password!r}"),
    ("postgresql://{user}:{password:>99}@{host}:{port}/{database}", "postgresql", "placeholder"),
    ("postgresql://{user}:{password}@{host}:{port}/{database", "postgresql", "not a template"),
    ("{host}:{port}", "postgresql", "not a connection URL"),
])
def test_templates_that_name_a_server_or_leak_are_refused(template, engine, why):
    problem = template_problem(template, engine)
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize("path", [
    "/", "/etc", "/etc/app", "/bin", "/sbin/x", "/usr", "/usr/local/data", "/lib", "/lib64", "/lib/x86_64-linux-gnu",
    "/libx32", "/proc", "/proc/1", "/sys", "/dev", "/dev/shm", "/boot", "/run", "/run/secrets", "/var/run",
    "/var", "/var/run/docker.sock", "/run/docker.sock",
])
def test_system_paths_their_parents_and_children_are_refused(path):
    assert is_system_path(path)
    [(field, why)] = problems("file", {"mount_path": path}, situation())
    assert field == "mount_path" and "system path" in why


@pytest.mark.parametrize("path", ["/data/uploads", "/var/lib/postgresql/data", "/srv/files", "/home/app/uploads",
                                  "/opt/app/cache", "/app"])
def test_ordinary_paths_pass(path):
    assert not is_system_path(path) and problems("file", {"mount_path": path}, situation()) == []


@pytest.mark.parametrize("path, why", [
    ("data/uploads", "not an absolute path"),
    ("/data/../etc", "not a normalised path"),
    ("/data/uploads/", "not a normalised path"),
    ("//data", "not a normalised path"),
    ("/data/./x", "not a normalised path"),
    ("/data:/etc", "not a normalised path"),
    ("/data\nx", "not a normalised path"),
])
def test_paths_must_be_absolute_and_normalised(path, why):
    [(_field, problem)] = problems("file", {"mount_path": path}, situation())
    assert why in problem


def test_a_mount_path_must_not_collide_with_another_mount_of_the_container():
    occupied = [("/data/uploads", "other-volume", "file api -> storage"), ("/srv/www", "/host/www", "api's declared mount")]
    place = situation(occupied=occupied)
    for path in ("/data/uploads", "/data/uploads/inner", "/data", "/srv/www/x"):
        [(field, why)] = problems("file", {"mount_path": path, "volume_name": "mine"}, place)
        assert field == "mount_path" and "collides with" in why, path
    assert problems("file", {"mount_path": "/data/reports", "volume_name": "mine"}, place) == []
    # The same volume at the same place is this very mount (a rerun), not a collision.
    assert problems("file", {"mount_path": "/data/uploads", "volume_name": "other-volume"}, place) == []


@pytest.mark.parametrize("field", ["volume_name", "network_name", "service_name"])
@pytest.mark.parametrize("name", ["bad name", "x", "-leading", "a/b", "../up", "a" * 64, 5])
def test_names_follow_dockers_rules(field, name):
    [(_field, why)] = problems("network" if field == "network_name" else "file", {field: name}, situation())
    assert "not a valid Docker name" in why


def test_volumes_and_networks_must_be_new_or_this_stacks():
    engine = FakeEngine(**{"volume:foreign": {}, "volume:theirs": {"io.clockwork.stack": "other"},
                           "volume:ours": {"io.clockwork.stack": "shop"}, "network:bridge": {},
                           "network:ours-net": {"io.clockwork.stack": "shop"}})
    place = situation(engine=engine)
    assert "not the collection's" in problems("file", {"volume_name": "foreign"}, place)[0][1]
    assert "stack other's" in problems("file", {"volume_name": "theirs"}, place)[0][1]
    assert problems("file", {"volume_name": "ours"}, place) == []
    assert problems("file", {"volume_name": "brand-new"}, place) == []
    assert problems("network", {"network_name": "bridge"}, place)[0][0] == "network_name"
    assert problems("network", {"network_name": "ours-net"}, place) == []


def test_a_service_alias_must_not_take_another_resources_name():
    place = situation(reserved={"postgres", "frontend"})
    [(field, why)] = problems("service_mesh", {"service_name": "postgres", "port": 8000}, place)
    assert field == "service_name" and "taken over" in why
    assert problems("service_mesh", {"service_name": "api", "port": 8000}, place) == []


@pytest.mark.parametrize("values, field", [
    ({"port": 0}, "port"), ({"port": 70000}, "port"), ({"port": True}, "port"),
    ({"username": "bad user"}, "username"), ({"username": ""}, "username"),
    ({"database_name": "x" * 64}, "database_name"),
])
def test_ranges_and_words(values, field):
    kind = "service_mesh" if "port" in values else "database"
    assert [f for f, _why in problems(kind, values, situation())] == [field]


def test_redis_database_is_a_number():
    redis = Situation("shop", params={"engine": "redis"})
    assert problems("database", {"database_name": "0"}, redis) == []
    assert problems("database", {"database_name": "16"}, redis)[0][0] == "database_name"
    assert problems("database", {"database_name": "user_data"}, redis)[0][0] == "database_name"


class ReadOnlyEngine(object):
    """What a DockerGateway asks of the engine for the controller's reads; counts the questions."""

    def __init__(self, objects, containers=()):
        self.objects, self.listed, self.asked = objects, list(containers), []

    def inspect_or_none(self, kind, name):
        self.asked.append((kind, name))
        if name == "refused":
            raise APIError("500 Server Error", explanation="the engine broke")
        return self.objects.get("%s:%s" % (kind, name))

    def containers(self, all=False, filters=None):  # pylint: disable=redefined-builtin
        self.asked.append(("containers", all, filters))
        return self.listed


def test_the_controller_reads_the_engine_through_a_gateway_once_per_object():
    engine = ReadOnlyEngine({"volume:ours": {"Labels": {"io.clockwork.stack": "shop"}}, "network:bare": {"Labels": None},
                             "container:api": {"Config": {"Image": "api:1"}}},
                            containers=[{"Names": ["/api"]}, {"Names": []}])
    view = EngineView(DockerGateway(api=engine))
    assert view.labels("volume", "ours") == {"io.clockwork.stack": "shop"}
    assert view.labels("network", "bare") == {}
    assert view.labels("volume", "brand-new") is None
    assert view.labels("network", "refused") is None   # an engine that refuses knows nothing here
    assert view.container("api") == {"Config": {"Image": "api:1"}}
    assert view.stack_containers("shop") == ["api"]
    for _again in range(2):
        view.labels("volume", "ours"), view.container("api"), view.stack_containers("shop")
    assert engine.asked == [("volume", "ours"), ("network", "bare"), ("volume", "brand-new"), ("network", "refused"),
                            ("container", "api"), ("containers", True, {"label": "io.clockwork.stack=shop"})]


def test_without_a_gateway_the_controllers_own_engine_is_asked_and_none_there_knows_nothing(monkeypatch):
    made = []

    def unreachable():
        made.append(True)
        raise ClockworkError("cannot reach the Docker engine")

    monkeypatch.setattr(completion_policy, "DockerGateway", unreachable)
    view = EngineView()
    assert made == [], "the engine is reached on the first question, not before"
    assert view.labels("volume", "data") is None and view.container("api") is None
    assert view.stack_containers("shop") == [] and made == [True]
