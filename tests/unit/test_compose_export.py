"""to_compose: a declared stack as a Compose file; and the round trip from_compose(to_compose(stack))."""
import os
import shutil
import stat
import textwrap

import pytest
import yaml
from jinja2 import Environment

from ansible.errors import AnsibleFilterError

from ansible_collections.clockwork.connections.plugins.filter.compose import FilterModule
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import from_compose

import test_compose_import as imports
from test_compose_import import quiet_fallback  # noqa: F401  (autouse: the compact schema's warning left out)
import test_plan as plans

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILTERS = FilterModule().filters()
PASSWORD = "pa$$ 'w0rd'/x"  # pragma: allowlist secret


def _rendered(node, variables):
    """Jinja in a vars file, rendered as Ansible would for these simple values."""
    if isinstance(node, dict):
        return dict((k, _rendered(v, variables)) for k, v in node.items())
    if isinstance(node, list):
        return [_rendered(v, variables) for v in node]
    if isinstance(node, str) and "{{" in node:
        text = Environment().from_string(node).render(**variables)
        return int(text) if text.isdigit() and node.startswith("{{") else text   # a number, as Ansible templates it
    return node


def showcase():
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/showcase/defaults/main.yml")))
    return ({"name": "showcase", "resources": _rendered(defaults["showcase_resources"], defaults),
             "connections": _rendered(defaults["showcase_connections"], defaults)},
            os.path.join(ROOT, "roles/showcase/files"))


def wordpress():
    play = yaml.safe_load(open(os.path.join(ROOT, "playbooks/examples/wordpress.yml")))[0]
    variables = dict(play["vars"], wordpress_app_image=play["vars"]["wordpress_mariadb_image"])
    role = play["roles"][0]["vars"]
    return ({"name": "wordpress", "resources": _rendered(role["clockwork_resources"], variables),
             "connections": _rendered(role["clockwork_connections"], variables)},
            os.path.join(ROOT, "playbooks/examples/files"))


def seed():
    """tests/unit/test_plan.py's seed: schema content, TLS."""
    return {"name": "seed", "resources": plans.SEED_RESOURCES, "connections": plans.SEED_CONNECTIONS}, "/srv/play"


def imported(text, **options):
    declaration = imports.imported(text, **options)
    return {"name": "shop", "resources": declaration["resources"], "connections": declaration["connections"]}, None


EVERY_FIELD = {"name": "every", "resources": [
    {"name": "db", "image": "clockwork-test/postgres:15", "ports": ["127.0.0.1:15432:5432", "5433"],
     "env": {"POSTGRES_PASSWORD": PASSWORD, "PRICE": "$5", "EMPTY": ""}, "restart_policy": "unless-stopped",
     "labels": {"team": "data"}, "healthcheck": {"test": ["CMD", "pg_isready"], "timeout": "5s"}},
    {"name": "data", "type": "volume", "volume_name": "every-data", "driver": "local"},
    {"name": "web", "image": "nginx:1.27", "command": "nginx -g 'daemon off;'", "ports": ["8080:80", "9000/udp"],
     "mounts": [{"type": "bind", "source": "site", "target": "/srv/site", "read_only": True},
                {"type": "volume", "source": "cache", "target": "/var/cache/nginx"}],
     "networks": [{"name": "outside", "aliases": ["www"]}], "healthcheck": {"test": ["NONE"]},
     "state": "started", "timeout": 90, "wait": False},
    {"name": "worker", "image": "python:3.12", "command": ["python", "-m", "worker", "--token", PASSWORD],
     "env": {"API_TOKEN": PASSWORD}},
], "connections": [
    {"type": "file", "from": "db", "to": "data", "mount_path": "/var/lib/postgresql/data"},
    {"type": "database", "from": "worker", "to": "db", "password": PASSWORD, "username": "postgres",
     "database_name": "jobs", "schema_content": "CREATE TABLE jobs (id int);", "description": "the job queue"},
    {"type": "database", "from": "web", "to": "db", "password": PASSWORD, "password_delivery": "file",
     "env_var_name": "", "env": {"PGHOST": "{host}", "PGPASSWORD": "{password}", "PGPORT": "{port}"}},
    {"type": "network", "from": "worker", "to": "web", "network_name": "jobs-net", "internal": True,
     "subnet": "172.31.250.0/24", "aliases": ["front"]},
    {"type": "service_mesh", "from": "worker", "to": "web", "service_name": "frontdoor", "health_check_path": "/"},
    {"type": "dependency", "from": "web", "to": "db", "condition": "started"},
]}

REPLICATED = {"name": "replicated", "resources": [
    {"name": "api", "image": "nginx:1.27", "ports": ["8000"], "replicas": 3, "update_order": "start-first",
     "stop_grace_period": "30s", "env": {"MODE": "web"}},
    {"name": "web", "image": "nginx:1.27", "ports": ["8080:80"], "replicas": 1, "update_order": "stop-first",
     "stop_grace_period": "1m30s"},
    {"name": "worker", "image": "python:3.12", "replicas": 2},
], "connections": [
    {"type": "service_mesh", "from": "web", "to": "api", "service_name": "api", "health_check_path": "/"},
    {"type": "dependency", "from": "worker", "to": "api"},
]}

STACKS = {
    "replicated": lambda: (REPLICATED, "/srv/replicated"),
    "showcase": showcase,
    "wordpress": wordpress,
    "seed": seed,
    "every field": lambda: (EVERY_FIELD, "/srv/every"),
    "imported shop": lambda: imported(imports.SHOP, env={"DB_PASSWORD": imports.PASSWORD}),
    "imported wordpress": lambda: imported(imports.WORDPRESS),
}


def written(result, directory):
    """The compose file and the files beside it, as playbooks/compose_export.yml writes them."""
    (directory / "compose.yaml").write_text(result["text"])
    for path, entry in result["files"].items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(entry["mode"], 8))
    return str(directory)


def as_declared(connections, directory):
    """The connections with the controller paths the import made absolute (under the compose
    file's directory, where they were checked) relative again, as the stack declared them."""
    prefix = str(directory) + os.sep
    return [dict((k, v[len(prefix):] if k in ("schema_file", "migrations_dir") and str(v).startswith(prefix) else v)
                 for k, v in c.items()) for c in connections]


def extension_free(warnings):
    """The warnings but those listing what x-clockwork adds (every import says them)."""
    return [w for w in warnings if not w.startswith(("x-clockwork", "service")) or "x-clockwork" not in w]


@pytest.mark.parametrize("name", sorted(STACKS))
def test_the_round_trip_gives_the_same_declaration(name, tmp_path):
    stack, base_dir = STACKS[name]()
    for engine in ("docker", "swarm"):
        if engine == "swarm" and name == "every field":
            continue   # a bridge network's subnet: Swarm refuses none of it, but makes it overlay
        result = export(stack, engine=engine, base_dir=base_dir)
        back = from_compose(result["text"], base_dir=written(result, tmp_path))   # the secrets from the .env
        assert back["resources"] == stack["resources"], engine
        assert as_declared(back["connections"], tmp_path) == stack["connections"], engine
        assert extension_free(back["warnings"]) == [], engine


@pytest.mark.parametrize("name", sorted(STACKS))
def test_no_secret_is_written_in_the_compose_file(name, tmp_path):
    stack, base_dir = STACKS[name]()
    result = export(stack, base_dir=base_dir)
    secrets = [PASSWORD, imports.PASSWORD, "secret123", "wp-s3cret", "r3dis-s3cret", "wp-pass", "pw"]  # pragma: allowlist secret
    document = yaml.safe_load(result["text"])
    for secret in secrets:
        assert secret not in str(document) or secret == "pw" and "pw" not in str(stack), secret
    env = result["files"].get(".env")
    if env is not None:
        assert env["mode"] == "0600" and env["secret"]
        directory = written(result, tmp_path)
        assert stat.S_IMODE(os.stat(os.path.join(directory, ".env")).st_mode) == 0o600


def services(stack, base_dir=None, engine="docker"):
    return yaml.safe_load(export(stack, engine=engine, base_dir=base_dir)["text"])


def test_the_showcase_containers_get_every_contribution():
    stack, base_dir = showcase()
    document = services(stack, base_dir)
    api, frontend, redis = (document["services"][n] for n in ("api", "frontend", "redis"))
    assert api["environment"]["DATABASE_URL"].startswith("postgresql://postgres:${")
    assert api["environment"]["DATABASE_URL"].endswith("}@postgres:5432/appdb")
    assert api["environment"]["REDIS_HOST"] == "redis"
    assert frontend["environment"] == {"API_URL": "http://api:8000"}
    assert set(api["networks"]) == set(redis["networks"]) == {"default", "backend-network"}
    assert document["networks"]["backend-network"] == {"name": "backend-network", "driver": "bridge"}
    assert {"type": "bind", "source": "./config.json", "target": "/etc/app/config.json", "read_only": True} \
        in api["volumes"]
    assert {"type": "volume", "source": "app-shared-data", "target": "/data/shared"} \
        in document["services"]["storage"]["volumes"]
    assert api["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                 "redis": {"condition": "service_healthy"},
                                 "storage": {"condition": "service_started"}}
    assert api["healthcheck"] == {"test": "curl -fsS http://localhost:8000/health", "interval": "1s",
                                  "timeout": "30s", "retries": 30, "start_period": "0s"}
    assert api["container_name"] == "api" and api["expose"] == ["8000"]
    # The schema, mounted where the postgres image runs it on a fresh data directory.
    assert document["services"]["postgres"]["volumes"] == [{
        "type": "bind", "source": "./initdb/postgres/01-api-schema.sql",
        "target": "/docker-entrypoint-initdb.d/01-api-schema.sql", "read_only": True}]


def test_what_compose_cannot_do_is_said_in_comments_and_files():
    stack, base_dir = showcase()
    result = export(stack, base_dir=base_dir)
    header = [line for line in result["text"].splitlines() if line.startswith("#")]
    assert any("schema schema.sql is mounted into /docker-entrypoint-initdb.d of postgres" in line for line in header)
    assert any("connection network api -> redis: its checks are run by the stack" in line for line in header)
    schema = open(os.path.join(base_dir, "schema.sql")).read()
    assert result["files"]["initdb/postgres/01-api-schema.sql"] == {"content": schema, "mode": "0644"}
    assert result["files"]["config.json"] == {"content": '{"log_level": "info"}', "mode": "0644"}
    seed_stack, seed_dir = seed()
    seed_header = export(seed_stack, base_dir=seed_dir)["text"]
    assert "resource api: /etc/clockwork/tls/tls.crt, /etc/clockwork/tls/tls.key, made by the stack's run (TLS " \
        "material), not exported" in seed_header
    assert "resource frontend: /etc/clockwork/tls/ca.crt, made by the stack's run" in seed_header
    frontend = yaml.safe_load(seed_header)["services"]["frontend"]
    assert "API_CA_FILE" not in frontend["environment"] and "volumes" not in frontend
    assert "/srv/tls" not in seed_header.split("x-clockwork:")[0].split("# What")[0]


def test_every_field_in_compose_form():
    document = services(EVERY_FIELD, "/srv/every")
    db, web, worker = (document["services"][n] for n in ("db", "web", "worker"))
    assert db["ports"] == ["127.0.0.1:15432:5432"] and db["expose"] == ["5433"]
    assert db["environment"]["PRICE"] == "$$5", "a literal $ is doubled"
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${DB_POSTGRES_PASSWORD:?")
    assert db["restart"] == "unless-stopped" and db["labels"] == {"team": "data"}
    assert db["healthcheck"]["test"] == ["CMD", "pg_isready"]
    assert web["healthcheck"] == {"disable": True}
    assert web["ports"] == ["8080:80"] and web["expose"] == ["9000/udp"]
    assert web["command"] == "nginx -g 'daemon off;'"
    assert {"type": "bind", "source": "./site", "target": "/srv/site", "read_only": True} in web["volumes"]
    assert web["networks"]["outside"] == {"aliases": ["www"]}
    assert document["networks"]["outside"] == {"name": "outside", "external": True}
    assert document["networks"]["jobs-net"] == {"name": "jobs-net", "driver": "bridge", "internal": True,
                                                "ipam": {"config": [{"subnet": "172.31.250.0/24"}]}}
    assert sorted(web["networks"]["jobs-net"]["aliases"]) == ["front"]
    assert web["networks"]["default"] == {"aliases": ["frontdoor"]}, "service_name: an alias on the stack's network"
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}, "the database connection waits for it"
    # Password files are Compose secrets, mounted where the stack mounts them.
    assert web["secrets"] == [{"source": "web_PGPASSWORD", "target": "PGPASSWORD"}]
    assert web["environment"]["PGPASSWORD_FILE"] == "/run/secrets/PGPASSWORD"
    assert document["secrets"] == {"web_PGPASSWORD": {"file": "./secrets/web_PGPASSWORD"}}
    assert worker["environment"]["FRONTDOOR_URL"] == "http://frontdoor:80"
    assert worker["environment"]["WEB_HOST"] == "web"
    assert worker["command"][-1] == "${DB_POSTGRES_PASSWORD:?set it in .env}", "one variable per secret"
    assert document["x-clockwork"]["order"] == ["db", "data", "web", "worker"]


def test_the_secrets_are_in_the_dotenv_and_password_files_only():
    result = export(EVERY_FIELD, base_dir="/srv/every")
    assert result["files"]["secrets/web_PGPASSWORD"] == {"content": PASSWORD, "mode": "0600", "secret": True}
    text = result["text"]
    assert PASSWORD not in text and "pa$$" not in text.replace("$$", "")
    assert "DB_POSTGRES_PASSWORD=" in result["files"][".env"]["content"]


def test_a_secret_a_dotenv_line_cannot_keep_is_refused_without_the_secret():
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["to_compose_files"]({"name": "q", "resources": [{"name": "db", "image": "x", "env": {
            "DB_PASSWORD": "a${b}c"}}]})  # pragma: allowlist secret
    assert "secret DB_DB_PASSWORD holds ${ or a line break" in str(error.value) and "a${b}c" not in str(error.value)


def test_swarm_gives_a_docker_stack_deploy_file():
    stack, base_dir = showcase()
    stack = dict(stack, resources=[dict(r, replicas=3, endpoint_mode="dnsrr", max_replicas_per_node=2)
                                   if r["name"] == "api" else r for r in stack["resources"]])
    document = services(stack, base_dir, engine="swarm")
    api = document["services"]["api"]
    assert document["version"] == "3.8"
    assert api["deploy"] == {"replicas": 3, "endpoint_mode": "dnsrr", "placement": {"max_replicas_per_node": 2}}
    assert "container_name" not in api and "depends_on" not in api
    assert document["networks"]["backend-network"] == {"name": "backend-network", "driver": "overlay",
                                                       "attachable": True}
    assert "docker stack deploy reads no .env" in export(stack, engine="swarm", base_dir=base_dir)["text"]


@pytest.mark.parametrize("engine", ["docker", "swarm"])
def test_replicas_update_order_and_grace_period_in_compose_form(engine):
    document = services(REPLICATED, "/srv/replicated", engine=engine)
    api, web, worker = (document["services"][n] for n in ("api", "web", "worker"))
    assert api["deploy"] == {"replicas": 3, "update_config": {"order": "start-first"}}
    assert api["stop_grace_period"] == "30s" and web["stop_grace_period"] == "1m30s"
    assert web["deploy"] == {"replicas": 1, "update_config": {"order": "stop-first"}}
    assert worker["deploy"] == {"replicas": 2}
    # Compose refuses container_name on a replicated service: it names them <project>-<name>-<k>, and the
    # service name answers for all of them, as the stack's alias <name> does.
    assert "container_name" not in api and "container_name" not in worker
    assert web.get("container_name") == ("web" if engine == "docker" else None)
    for service in (api, web, worker):
        assert "replicas" not in (service.get("x-clockwork") or {}).get("fields", {})


def test_the_filters_give_the_text_and_the_files():
    stack, base_dir = showcase()
    assert FILTERS["to_compose"](stack, base_dir=base_dir) == export(stack, base_dir=base_dir)["text"]
    assert FILTERS["to_compose_files"](stack, base_dir=base_dir) == export(stack, base_dir=base_dir)["files"]
    role_form = {"clockwork_stack_name": stack["name"], "clockwork_resources": stack["resources"],
                 "clockwork_connections": stack["connections"]}
    assert FILTERS["to_compose"](role_form, base_dir=base_dir) == export(stack, base_dir=base_dir)["text"]


@pytest.mark.parametrize("stack, expected", [
    ("not a stack", "the stack must be a mapping with name, resources and connections, got str"),
    ({"resources": []}, "stack: name: is required"),
    ({"name": "x", "resources": "app"}, "stack: resources: must be a list"),
    ({"name": "x", "resources": ["app"]}, "resource #1: must be a mapping, got str"),
    ({"name": "x", "resources": [{"name": "app"}]}, "resource app: image: is required"),
    ({"name": "x", "resources": [{"name": "app", "image": "x", "ports": ["80:80:80:80"]}]},
     "resource app: ports: invalid port"),
    ({"name": "x", "resources": [{"name": "app", "image": "x"}, {"name": "web", "image": "x"}],
      "connections": [{"type": "service_mesh", "from": "app", "to": "web"}]},
     "connection service_mesh app -> web: no port for web: it declares none and its image exposes none; set port"),
    ({"name": "x", "resources": [{"name": "app", "image": "x"}],
      "connections": [{"type": "dependency", "from": "app", "to": "ghost"}]},
     "connection dependency app -> ghost: to: unknown resource ghost"),
])
def test_bad_input_is_one_clear_error_naming_the_entry_and_field(stack, expected):
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["to_compose"](stack)
    assert expected in str(error.value)
    assert "Traceback" not in str(error.value)


def test_the_engine_is_docker_or_swarm():
    with pytest.raises(AnsibleFilterError, match="engine: must be docker or swarm, got 'k8s'"):
        FILTERS["to_compose"](EVERY_FIELD, engine="k8s")


def test_a_hand_edited_extension_is_refused_naming_the_key():
    text = export(EVERY_FIELD, base_dir="/srv/every")["text"]
    document = yaml.safe_load(text)
    document["x-clockwork"]["version"] = 7
    document["x-clockwork"]["connections"] = "all of them"
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS["from_compose"](yaml.safe_dump(document), env=dict.fromkeys(
            ["DB_POSTGRES_PASSWORD", "DB_POSTGRES_PASSWORD_URLENCODED", "DB_POSTGRES_PASSWORD_URLENCODED2",
             "DB_POSTGRES_PASSWORD_URLENCODED3", "WORKER_COMMAND_SECRET_1"], "x"))
    assert "x-clockwork.version: must be 1, got 7" in str(error.value)
    assert "x-clockwork.connections: must be a list" in str(error.value)


def test_an_edit_of_the_exported_file_is_an_edit_of_the_declaration(tmp_path):
    stack, base_dir = showcase()
    result = export(stack, base_dir=base_dir)
    text = result["text"].replace("      POSTGRES_DB: appdb\n", "      POSTGRES_DB: appdb\n      TZ: UTC\n")
    back = from_compose(textwrap.dedent(text), base_dir=written(result, tmp_path))
    postgres = [r for r in back["resources"] if r["name"] == "postgres"][0]
    assert postgres["env"]["TZ"] == "UTC"
    assert as_declared(back["connections"], tmp_path) == stack["connections"]



def _tree(directory):
    """Every path under `directory` with its content and mode."""
    found = {}
    for top, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(top, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, directory)] = (handle.read(), stat.S_IMODE(os.stat(path).st_mode))
    return found


@pytest.mark.parametrize("name", ["every field", "seed", "showcase"])
def test_the_export_changes_nothing_and_asks_no_docker_engine(name, tmp_path, monkeypatch):
    """Offline: the types converge on a dry run over an engine with nothing on it; what they would
    write (password files, a file connection's content, TLS material, a network) is only recorded."""
    monkeypatch.setenv("DOCKER_HOST", "unix://%s" % (tmp_path / "no-engine.sock"))
    stack, files = STACKS[name]()
    base_dir = tmp_path / "stack"
    if os.path.isdir(files):
        shutil.copytree(files, str(base_dir))   # what the plan reads (schema, migrations, config)
    before = _tree(str(tmp_path))
    assert export(stack, base_dir=str(base_dir))["text"]
    assert _tree(str(tmp_path)) == before and sorted(os.listdir(str(tmp_path))) == (["stack"] if before else [])
