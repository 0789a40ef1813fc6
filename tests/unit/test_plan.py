"""The plan: a declaration validated and turned into the desired state, without Docker."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CHECKS, CONNECTION_TYPES

SEED_RESOURCES = [
    {"name": "postgres", "image": "postgres:15", "ports": ["5432"], "env": {"POSTGRES_PASSWORD": "pw"}},
    {"name": "redis", "image": "redis:7", "ports": ["6379"]},
    {"name": "config_file", "type": "file", "path": "config.json", "content": "{}"},
    {"name": "storage", "image": "nginx:1.27"},
    {"name": "api", "image": "nginx:1.27", "ports": ["8000"]},
    {"name": "frontend", "image": "nginx:1.27", "ports": ["80"]},
]
SEED_CONNECTIONS = [
    {"type": "database", "from": "api", "to": "postgres", "password": "pw", "database_name": "appdb",
     "schema_content": "CREATE TABLE users (id int);", "schema_file": "schema.sql"},
    {"type": "network", "from": "api", "to": "redis", "network_name": "backend-network"},
    {"type": "file", "from": "api", "to": "config_file", "mount_path": "/etc/app/config.json", "read_only": True},
    {"type": "file", "from": "api", "to": "storage", "mount_path": "/data/shared", "volume_name": "app-shared-data"},
    {"type": "service_mesh", "from": "frontend", "to": "api", "tls_enabled": True, "tls_dir": "/srv/tls"},
    {"type": "dependency", "from": "frontend", "to": "redis"},
]


def problems_of(resources, connections, name="shop"):
    with pytest.raises(ClockworkError) as error:
        Plan(name, resources, connections, base_dir="/srv/play")
    return error.value.details["problems"], error.value.msg


def test_the_seed_plans_with_both_sides_of_every_connection():
    plan = Plan("showcase", SEED_RESOURCES, SEED_CONNECTIONS, base_dir="/srv/play")
    assert plan.order == ["postgres", "redis", "config_file", "storage", "api", "frontend"]
    # Contributions to `to`: the shared volume in storage, the network in redis, TLS files in api.
    storage = plan.specs["storage"]
    assert {"type": "volume", "source": "app-shared-data", "target": "/data/shared", "read_only": False} \
        in storage.mounts
    assert {"name": "backend-network", "aliases": ["redis"]} in plan.specs["redis"].networks
    assert [m["source"] for m in plan.specs["api"].mounts] == ["/srv/tls/api.crt", "/srv/tls/api.key"]
    # Every container joins the stack's network under its own name.
    assert plan.specs["api"].networks[0] == {"name": "showcase_default", "aliases": ["api"]}
    shown = plan.as_dict()
    assert shown["networks"] == ["showcase_default", "backend-network"]
    assert shown["volumes"] == ["app-shared-data"]
    assert shown["files"] == ["config.json"]
    assert shown["sql"]["connection database api -> postgres"][0]["name"] == "schema.sql"
    assert len(shown["sql"]["connection database api -> postgres"][0]["sha256"]) == 64
    assert "pw" not in str(shown), "the plan as data shows env names, never values"
    # A file connection to a file resource takes its path, resolved under base_dir.
    config = [c for c in plan.connections if c["type"] == "file"][0]
    assert config["source_path"] == "/srv/play/config.json" and config["content"] == "{}"


BAD = [
    # (resources, connections, the problem's text), one class of bad input each
    ([], [], "stack: name: stack name 'Bad Stack!' must be lower-case", "Bad Stack!"),
    ([{"name": "app", "image": "x"}], [{"type": "dependency", "from": "app", "to": "ghost"}],
     "connection dependency app -> ghost: to: unknown resource ghost", None),
    ([{"name": "app", "image": "x"}, {"name": "app", "image": "x"}], [], "resource app: name: declared twice", None),
    ([{"name": "app", "type": "vm"}], [], "resource app: type: unknown type vm", None),
    ([{"name": "app", "image": "x"}], [{"type": "telepathy", "from": "app", "to": "app"}],
     "connection telepathy app -> app: type: unknown type telepathy", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "dependency", "from": "app", "to": "web", "network_name": "n"}],
     "connection dependency app -> web: network_name: not a field of this type", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "database", "from": "app", "to": "web", "engine": "oracle"}],
     "connection database app -> web: value of engine must be one of: postgresql, redis, mysql, mariadb, got: oracle",
     None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "network", "from": "app", "to": "web", "network_name": "n"}, {"type": "dependency", "from": "web", "to": "app"}],
     "the connections form a cycle: app -> web -> app", None),
    ([{"name": "app", "image": "x"}, {"name": "db", "image": "x"}],
     [{"type": "database", "from": "app", "to": "db", "connection_string_template": "postgresql://{user}@{hots}/x"}],
     "connection database app -> db: connection_string_template: has an unknown placeholder {hots}", None),
    ([{"name": "app", "image": "x"}, {"name": "db", "image": "x"}],
     [{"type": "database", "from": "app", "to": "db", "schema_file": "missing.sql"}],
     "connection database app -> db: schema_file: /srv/play/missing.sql does not exist", None),
    ([{"name": "app", "image": "x"}, {"name": "db", "image": "x"}],
     [{"type": "database", "from": "app", "to": "db", "migrations_dir": "nowhere"}],
     "connection database app -> db: migrations_dir: /srv/play/nowhere is not a directory", None),
    ([{"name": "app", "image": "x"}, {"name": "db", "image": "x"}],
     [{"type": "database", "from": "app", "to": "db", "engine": "redis", "schema_content": "x", "schema_file": "s.sql"}],
     "connection database app -> db: schema_file: schema_file and migrations_dir are for PostgreSQL", None),
    ([{"name": "bad name!", "image": "x"}], [], "resource bad name!: name: 'bad name!' is not a valid Docker name",
     None),
    ([{"name": "app"}], [], "resource app: image: is required", None),
    ([{"name": "app", "image": "x", "ports": ["80:80:80:80"]}], [], "resource app: ports: invalid port", None),
    ([{"name": "app", "image": "x", "healthcheck": {"test": "true", "interval": "soon"}}], [],
     "resource app: healthcheck.interval: invalid duration 'soon'", None),
    ([{"name": "app", "image": "x", "ports": ["8080:80"]}, {"name": "web", "image": "x", "ports": ["8080:8000"]}], [],
     "resource web: ports: 8080:8000/tcp publishes host port 8080/tcp, which resource app publishes too (8080:80/tcp)", None),
    ([{"name": "app", "image": "x"}, {"name": "v", "type": "volume"}],
     [{"type": "file", "from": "app", "to": "v", "mount_path": "data"}],
     "connection file app -> v: mount_path: data must be an absolute path inside the container", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "file", "from": "app", "to": "web", "mount_path": "/d", "volume_name": "x y"}],
     "connection file app -> web: volume_name: 'x y' is not a valid Docker name", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "service_mesh", "from": "app", "to": "web", "load_balancing": "least_conn"}],
     "connection service_mesh app -> web: load_balancing: least_conn cannot be honoured", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "network", "from": "app", "to": "web", "network_name": "n", "subnet": "10.0.0.0/33"}],
     "connection network app -> web: subnet: 10.0.0.0/33 is not a network", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "network", "from": "app", "to": "web", "network_name": "n", "subnet": "172.30.0.0/16",
       "gateway": "10.0.0.1"}],
     "connection network app -> web: gateway: 10.0.0.1 is outside subnet 172.30.0.0/16", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "network", "from": "app", "to": "web"}],
     "connection network app -> web: network_name: is required (or a description to complete it from)", None),
    ([{"name": "app", "image": "x", "env": {"WEB_HOST": "elsewhere"}}, {"name": "web", "image": "x"}],
     [{"type": "network", "from": "app", "to": "web", "network_name": "n"}],
     "env WEB_HOST is set differently by the container's own env and by connection network app -> web", None),
    ([{"name": "app", "image": "x", "mounts": [{"source": "v1", "target": "/data"}]}, {"name": "web", "image": "x"}],
     [{"type": "file", "from": "app", "to": "web", "mount_path": "/data", "volume_name": "v2"}],
     "connection file app -> web: mount_path: /data is mounted by the container's own mounts already", None),
    ([{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
     [{"type": "dependency", "from": "app", "to": "web", "timeout": 0}],
     "connection dependency app -> web: timeout: must be a positive number", None),
]


@pytest.mark.parametrize("resources, connections, expected, name", BAD, ids=[b[2][:40] for b in BAD])
def test_each_class_of_bad_input_names_entry_and_field(resources, connections, expected, name):
    problems, msg = problems_of(resources, connections, name or "shop")
    assert any(expected in p for p in problems), "%r not in %s" % (expected, problems)
    assert "nothing was changed" in msg


def test_all_problems_are_reported_at_once():
    problems, msg = problems_of(
        [{"name": "app", "image": "x", "ports": ["8080:80"]}, {"name": "web", "image": "x", "ports": ["8080:80"]},
         {"name": "c!"}],
        [{"type": "database", "from": "app", "to": "web", "connection_string_template": "{nope}"},
         {"type": "file", "from": "app", "to": "web", "mount_path": "relative", "volume_name": "vol"},
         {"type": "service_mesh", "from": "app", "to": "web", "load_balancing": "random"}],
        name="Bad Stack!")
    assert len(problems) == 7, problems
    assert msg.startswith("invalid stack Bad Stack!: 7 problems found, nothing was changed:\n- stack: name:")


def test_two_connections_of_one_label_are_numbered():
    problems, _msg = problems_of(
        [{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
        [{"type": "file", "from": "app", "to": "web", "mount_path": "x", "volume_name": "vol"},
         {"type": "file", "from": "app", "to": "web", "mount_path": "/ok", "volume_name": "vol"}])
    assert problems == ["connection file app -> web (#1): mount_path: x must be an absolute path inside the container"]


def test_the_registry_says_everything_about_each_type():
    assert sorted(CONNECTION_TYPES) == ["database", "dependency", "file", "network", "service_mesh"]
    for kind in CONNECTION_TYPES.values():
        assert kind.args and callable(kind.converge) and callable(kind.validate) and kind.checks
        assert set(kind.completable) <= set(kind.args)
        assert set(kind.controller_files) <= set(kind.args)
    assert CONNECTION_TYPES["network"].injected_env({}, "backend-api") == ["BACKEND_API_HOST"]
    assert CONNECTION_TYPES["service_mesh"].injected_env({"tls_enabled": True}, "api") == ["API_URL", "API_CA_FILE"]
    assert CONNECTION_TYPES["database"].injected_env({"engine": "redis"}, "cache") == ["REDIS_URL"]
    assert sorted(CHECKS) == ["database", "dns_tcp", "file", "http", "no_route_out", "running", "shared_volume"]


def test_secret_flags_in_commands_are_masked():
    from ansible_collections.clockwork.connections.plugins.module_utils.masking import (
        command_secrets, masked_command)
    command = ["redis-server", "--requirepass", "s3cr@t", "--port", "6379", "--masterauth=m4ster"]
    assert masked_command(command) == ["redis-server", "--requirepass", "********", "--port", "6379",
                                       "--masterauth=********"]
    assert {"s3cr@t", "s3cr%40t", "m4ster"} <= command_secrets(command)
    assert command_secrets("redis-server --requirepass 'a b'") >= {"a b", "a%20b"}


def test_build_args_that_name_a_secret_are_secrets_of_the_declaration():
    from ansible_collections.clockwork.connections.plugins.module_utils.masking import declared_secrets
    resources = [{"name": "web", "build": {"context": "web", "args": {"NPM_TOKEN": "t0ken", "NODE_ENV": "prod"}}}]
    found = declared_secrets(resources, [])
    assert "t0ken" in found and "prod" not in found


def test_default_network_false_keeps_a_container_on_its_named_networks_only():
    """A Compose service on named networks only: off `<stack>_default`, on the networks its
    network connections name; with none at all, the plan says so."""
    resources = [{"name": "worker", "image": "x", "default_network": False},
                 {"name": "queue", "image": "x", "default_network": False}, {"name": "web", "image": "x"}]
    plan = Plan("shop", resources, [{"type": "network", "from": "worker", "to": "queue", "network_name": "jobs"}],
                base_dir="/srv")
    assert [n["name"] for n in plan.specs["queue"].networks] == ["jobs"]
    assert [n["name"] for n in plan.specs["web"].networks] == ["shop_default"]
    problems, _msg = problems_of([{"name": "alone", "image": "x", "default_network": False}], [])
    assert problems == ["resource alone: default_network: false leaves the container on no network: list its "
                        "networks, or connect it with a network connection that names one (network_name)"]


def test_a_resource_named_as_another_resources_replica_is_refused_naming_both():
    """`api` with 3 replicas runs api-1, api-2, api-3: a resource `api-2` would claim one of them."""
    problems, msg = problems_of(
        [{"name": "api", "image": "x", "replicas": 3}, {"name": "api-2", "image": "x"},
         {"name": "api-3", "image": "x", "ports": ["8080:80"]}, {"name": "web", "image": "x", "ports": ["8080:80"]}],
        [])
    assert sorted(problems) == [
        "resource api-2: name: api-2 is also the container of replica 2 of resource api (replicas: 3); rename it, "
        "or give api fewer replicas",
        "resource api-3: name: api-3 is also the container of replica 3 of resource api (replicas: 3); rename it, "
        "or give api fewer replicas",
        "resource web: ports: 8080:80/tcp publishes host port 8080/tcp, which resource api-3 publishes too "
        "(8080:80/tcp)"], problems   # every problem at once
    assert "3 problems found, nothing was changed" in msg


@pytest.mark.parametrize("resources, engine", [
    ([{"name": "api", "image": "x", "replicas": 3}, {"name": "api-4", "image": "x"}], "docker"),
    ([{"name": "api", "image": "x", "replicas": 3}, {"name": "api-2", "image": "x", "replicas": 2}], "docker"),
    ([{"name": "api", "image": "x", "replicas": 1}, {"name": "api-1", "image": "x"}], "docker"),
    ([{"name": "api", "image": "x", "replicas": 3}, {"name": "api-2", "type": "volume"}], "docker"),
    ([{"name": "api", "image": "x", "replicas": 3}, {"name": "api-2", "image": "x"}], "swarm"),   # tasks: api.2.<id>
], ids=["beyond the replicas", "replicated itself", "one replica", "not a container", "swarm"])
def test_names_beside_replicas_that_claim_no_one_elses_container_plan(resources, engine):
    plan = Plan("shop", resources, [], base_dir="/srv/play", engine=engine)
    assert [r["name"] for r in plan.resources] == [r["name"] for r in resources]


@pytest.mark.parametrize("label", ["io.clockwork.stack", "io.clockwork.connection-mounts", "io.clockwork.anything"])
def test_a_declared_label_with_the_reserved_prefix_is_refused_naming_resource_and_label(label):
    problems, _msg = problems_of(
        [{"name": "app", "image": "x", "labels": {"com.example.team": "a", label: "shop"}},
         {"name": "web", "image": "x", "labels": {"io.clockwork.resource": "app", "io.clockwork.replica": "1"}}], [])
    assert problems == [
        "resource app: labels: %s: the io.clockwork. prefix is reserved for the labels the collection sets itself"
        % label,
        "resource web: labels: io.clockwork.replica: the io.clockwork. prefix is reserved for the labels the "
        "collection sets itself",
        "resource web: labels: io.clockwork.resource: the io.clockwork. prefix is reserved for the labels the "
        "collection sets itself"], problems


def test_labels_of_other_prefixes_pass_and_are_set():
    plan = Plan("shop", [{"name": "app", "image": "x", "labels": {"io.clockwork": "x", "com.example.io.clockwork.a": "b",
                                                                   "io.clockworks.x": "y"}}], [], base_dir="/srv/play")
    labels = plan.specs["app"].labels
    assert labels["io.clockwork"] == "x" and labels["io.clockworks.x"] == "y" and labels["io.clockwork.stack"] == "shop"


@pytest.mark.parametrize("image", ["nginx:{{ x }}", "Nginx", "nginx:", "a b", "nginx@sha256:short"])
def test_an_image_that_is_no_reference_is_refused_naming_resource_and_field(image):
    problems, _message = problems_of([{"name": "web", "image": image}], [])
    assert "resource web: image: %r is not an image reference" % image in "\n".join(problems)


@pytest.mark.parametrize("image", ["nginx", "nginx:1.27-alpine", "clockwork-test/postgres:15", "localhost:5000/a/b:t",
                                   "ghcr.io/x/y@sha256:" + "a" * 64, "[::1]:5000/x:1"])
def test_image_references_of_every_form_plan(image):
    assert Plan("shop", [{"name": "web", "image": image}], [])
