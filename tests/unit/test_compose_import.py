"""from_compose: a compose file read into the stack's declaration, without Docker. Where the
declaration must be one the stack takes, the stack's own plan (no engine) checks it."""
import os
import textwrap
import time

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.clockwork.connections.plugins.filter.compose import FilterModule
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose import schema as compose_schema, spec as compose_spec
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import ComposeError, from_compose

PASSWORD = "s3cr3t pw"  # pragma: allowlist secret
# What a named network nothing makes becomes before the plan has network resources (then: one of them,
# tests/unit/test_compose_options.py).
SCHEMA_ERRORS = compose_schema.schema_errors


@pytest.fixture(autouse=True)
def quiet_fallback(monkeypatch):
    """Where check-jsonschema is not installed, every import says that the compact schema validated:
    the tests of everything else read the warnings without that line (one test below reads it)."""
    if compose_spec.spec_validator()[0] is None:
        monkeypatch.setattr(compose_schema, "schema_errors",
                            lambda document, use_jsonschema=True, report=None: SCHEMA_ERRORS(document, use_jsonschema))


def imported(text, **options):
    options.setdefault("project_name", "shop")
    return from_compose(textwrap.dedent(text), **options)


def failure(text, **options):
    with pytest.raises(ComposeError) as error:
        imported(text, **options)
    return str(error.value)


def by_name(result):
    return dict((r["name"], r) for r in result["resources"])


def connections(result, kind=None, source=None):
    return [c for c in result["connections"] if (kind is None or c["type"] == kind) and (source is None or c["from"] == source)]


def planned(result, name="shop", base_dir="/srv/play"):
    """The stack's own plan of the declaration: raises when the stack would refuse it."""
    return Plan(name, result["resources"], result["connections"], base_dir=base_dir)


def has_warning(result, *words):
    return any(all(w in line for w in words) for line in result["warnings"])


# -- the declaration of a whole file ----------------------------------------------

SHOP = """
    x-restart: &restart
      restart: unless-stopped
    services:
      db:
        <<: *restart
        image: postgres:16
        environment:
          POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD}
          POSTGRES_DB: shop
        healthcheck:
          test: ["CMD-SHELL", "pg_isready -U postgres"]
          interval: 2s
          retries: 20
        volumes: [dbdata:/var/lib/postgresql/data]
      cache:
        image: redis:7
        expose: ["6379"]
      api:
        <<: *restart
        image: nginx:1.27
        ports: ["8000:8000"]
        environment:
          - DATABASE_URL=postgres://shop:${DB_PASSWORD}@db:5432/shop
          - CACHE_HOST=cache
          - LOG_LEVEL=info
        depends_on:
          db: {condition: service_healthy}
        volumes: [uploads:/srv/uploads]
        x-note: ignored
      web:
        image: nginx:1.27
        ports: ["8080:80"]
        environment: {API_URL: "http://api:8000"}
        depends_on: [api]
        volumes: ["uploads:/usr/share/nginx/html/uploads:ro", "./site.conf:/etc/nginx/conf.d/default.conf:ro"]
    volumes:
      dbdata:
      uploads: {}
"""


def test_a_whole_file_becomes_a_declaration_the_stack_plans():
    result = imported(SHOP, env={"DB_PASSWORD": PASSWORD})
    resources = by_name(result)
    assert [r["name"] for r in result["resources"]] == ["db", "cache", "api", "web", "shop_dbdata", "shop_uploads",
                                                        "site.conf"]
    assert resources["db"] == {
        "name": "db", "image": "postgres:16", "env": {"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "shop"},
        "mounts": [{"type": "volume", "source": "shop_dbdata", "target": "/var/lib/postgresql/data"}],
        "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U postgres"], "interval": "2s", "retries": 20},
        "restart_policy": "unless-stopped"}
    assert resources["api"]["env"] == {"LOG_LEVEL": "info"}, "DATABASE_URL and CACHE_HOST are the connections' now"
    assert resources["shop_uploads"] == {"name": "shop_uploads", "type": "volume", "volume_name": "shop_uploads",
                                         "driver": "local"}
    assert resources["site.conf"] == {"name": "site.conf", "type": "file", "path": "site.conf"}
    assert [(c["type"], c["from"], c["to"]) for c in result["connections"]] == [
        ("dependency", "api", "db"), ("database", "api", "db"), ("network", "api", "cache"), ("file", "api", "shop_uploads"),
        ("dependency", "web", "api"), ("service_mesh", "web", "api"), ("file", "web", "shop_uploads"),
        ("file", "web", "site.conf")]
    assert all(c["description"].startswith("from compose: ") for c in result["connections"])
    assert result["warnings"] == []
    plan = planned(result)
    assert plan.order == ["db", "cache", "shop_dbdata", "shop_uploads", "api", "site.conf", "web"]
    assert plan.specs["api"].networks == [{"name": "shop_default", "aliases": ["api"]}]


def test_the_small_validator_reads_a_good_file_as_jsonschema_does():
    assert imported(SHOP, env={"DB_PASSWORD": PASSWORD}, use_jsonschema=False) == imported(SHOP, env={"DB_PASSWORD": PASSWORD})


def test_the_same_file_gives_the_same_declaration():
    first = imported(SHOP, env={"DB_PASSWORD": PASSWORD})
    assert imported(SHOP, env={"DB_PASSWORD": PASSWORD}) == first


# -- YAML ---------------------------------------------------------------------------

def test_anchors_merge_keys_and_extension_fields():
    result = imported("""
        x-base: &base
          image: nginx:1.27
          labels: {team: core}
        x-env: &env
          LOG_LEVEL: debug
        services:
          one:
            <<: *base
            environment:
              <<: *env
              EXTRA: "1"
            x-custom: {anything: [1, 2]}
          two: *base
    """)
    resources = by_name(result)
    assert resources["one"] == {"name": "one", "image": "nginx:1.27", "env": {"LOG_LEVEL": "debug", "EXTRA": "1"},
                                "labels": {"team": "core"}}
    assert resources["two"]["labels"] == {"team": "core"}
    assert result["warnings"] == []


def test_scalars_are_read_as_compose_reads_them():
    result = imported("""
        services:
          ssh:
            image: sshd
            ports: [22:22, 2222]
            restart: no
            environment: {FLAG: yes, DEBUG: true, RATIO: 1.5, COUNT: 3, EMPTY: "", OFF: off}
    """)
    ssh = by_name(result)["ssh"]
    assert ssh["ports"] == ["22:22", ":2222"], "22:22 is not the sexagesimal 1342; 2222 alone publishes on a random port"
    assert ssh["restart_policy"] == "no"
    assert ssh["env"] == {"FLAG": "yes", "DEBUG": "true", "RATIO": "1.5", "COUNT": "3", "EMPTY": "", "OFF": "off"}


# -- interpolation ---------------------------------------------------------------------

@pytest.mark.parametrize("template, expected", [
    ("${SET}", "value"), ("$SET", "value"), ("${SET}-$SET", "value-value"), ("$$SET", "$SET"), ("$${SET}", "${SET}"),
    ("${UNSET:-fallback}", "fallback"), ("${EMPTY:-fallback}", "fallback"), ("${EMPTY-fallback}", ""),
    ("${UNSET-fallback}", "fallback"), ("${SET:-fallback}", "value"), ("${SET:+other}", "other"),
    ("${EMPTY:+other}", ""), ("${EMPTY+other}", "other"), ("${UNSET+other}", ""), ("${UNSET:-${SET}}", "value"),
    ("${UNSET:-a${UNSET2:-b}c}", "abc"), ("${SET?unused}", "value"), ("${EMPTY?unused}", ""), ("cost: 5$", "cost: 5$"),
])
def test_interpolation(template, expected):
    text = "services:\n  app:\n    image: x\n    environment:\n      VALUE: '%s'\n" % template
    result = from_compose(text, project_name="shop", env={"SET": "value", "EMPTY": ""})
    assert by_name(result)["app"]["env"] == {"VALUE": expected}
    assert result["warnings"] == []


def test_an_unset_variable_is_blank_with_a_warning_naming_service_and_key():
    result = imported("""
        services:
          app: {image: "nginx:${TAG}"}
    """)
    assert by_name(result)["app"]["image"] == "nginx:"
    assert result["warnings"] == ["service app: image: variable TAG is not set: a blank string"]


def test_env_wins_over_the_dot_env_file_of_base_dir(tmp_path):
    (tmp_path / ".env").write_text("# defaults\nTAG=1.25\nexport PORT=8080\nNAME='lit${TAG}'\nBOTH=\"${TAG}-x\"\n")
    text = "services:\n  web: {image: 'nginx:${TAG}', ports: ['${PORT}:80'], environment: [N=$NAME, B=$BOTH]}\n"
    web = by_name(from_compose(text, project_name="shop", base_dir=str(tmp_path)))["web"]
    assert web == {"name": "web", "image": "nginx:1.25", "ports": ["8080:80"], "env": {"N": "lit${TAG}", "B": "1.25-x"}}
    web = by_name(from_compose(text, project_name="shop", base_dir=str(tmp_path), env={"TAG": "1.27"}))["web"]
    assert web["image"] == "nginx:1.27"
    assert by_name(from_compose(text, project_name="shop", env={"PORT": 1}))["web"]["image"] == "nginx:", \
        "without base_dir no .env is read"


def test_a_bad_line_of_the_dot_env_file_fails(tmp_path):
    (tmp_path / ".env").write_text("GOOD=1\nnot a line\n")
    with pytest.raises(ComposeError) as error:
        from_compose("services: {}\n", base_dir=str(tmp_path))
    assert str(error.value) == "compose file: .env: line 2 is not NAME=VALUE"


@pytest.mark.parametrize("template, env, words", [
    ("${DB_PASSWORD:?the database needs a password}", {}, "required variable DB_PASSWORD is not set: the database needs"),
    ("${DB_PASSWORD:?}", {"DB_PASSWORD": ""}, "required variable DB_PASSWORD is empty: no message"),
    ("${DB_PASSWORD?must be given}", {}, "required variable DB_PASSWORD is not set: must be given"),
    ("${DB_PASSWORD", {}, "unclosed ${"),
    ("${DB PASSWORD}", {}, "invalid interpolation: ${ must be followed by NAME}"),
])
def test_a_required_variable_or_a_bad_expression_fails_naming_source_service_and_key(template, env, words):
    message = failure("""
        services:
          db:
            image: postgres
            environment: {POSTGRES_PASSWORD: "%s"}
    """ % template, env=env, source="docker-compose.yml")
    assert message.startswith("docker-compose.yml: service db: environment.POSTGRES_PASSWORD: "), message
    assert words in message


# -- environment and env_file ----------------------------------------------------------

def test_environment_list_and_map_forms_and_bare_names():
    result = imported("""
        services:
          a: {image: x, environment: [A=1, "B=two words", C=, FROM_ENV, MISSING]}
          b: {image: x, environment: {A: 1, FROM_ENV: null, MISSING: null}}
    """, env={"FROM_ENV": "given"})
    assert by_name(result)["a"]["env"] == {"A": "1", "B": "two words", "C": "", "FROM_ENV": "given"}
    assert by_name(result)["b"]["env"] == {"A": "1", "FROM_ENV": "given"}
    assert has_warning(result, "service a: environment.MISSING: no value and not in env: left out")
    assert has_warning(result, "service b: environment.MISSING")


def test_env_file_string_list_and_long_forms(tmp_path):
    (tmp_path / "common.env").write_text("A=from-file\nB=\"quoted # not a comment\"\nC=plain # a comment\n")
    (tmp_path / "more.env").write_text("B=overridden\nD=${HOST_VAR}\n")
    text = """
        services:
          s1: {image: x, env_file: common.env}
          s2: {image: x, env_file: [common.env, more.env], environment: {A: own}}
          s3:
            image: x
            env_file: [{path: common.env, required: true}, {path: absent.env, required: false}]
    """
    result = imported(text, base_dir=str(tmp_path), env={"HOST_VAR": "h"})
    resources = by_name(result)
    assert resources["s1"]["env"] == {"A": "from-file", "B": "quoted # not a comment", "C": "plain"}
    assert resources["s2"]["env"] == {"A": "own", "B": "overridden", "C": "plain", "D": "h"}
    assert resources["s3"]["env"] == resources["s1"]["env"]
    assert result["warnings"] == []
    without = imported(text)
    assert has_warning(without, "service s1: env_file: common.env not read: no base_dir")
    assert "env" not in by_name(without)["s1"]


def test_a_required_env_file_that_is_missing_fails(tmp_path):
    message = failure("""
        services:
          s1: {image: x, env_file: [absent.env]}
          s2: {image: x, env_file: [{path: gone.env}]}
    """, base_dir=str(tmp_path))
    assert "service s1: env_file: absent.env does not exist" in message
    assert "service s2: env_file: gone.env does not exist" in message


# -- ports, expose, command, healthcheck, restart, labels, deploy --------------------------------

def test_ports_in_every_form_and_expose():
    result = imported("""
        services:
          app:
            image: x
            ports:
              - "8080:80"
              - "127.0.0.1:8443:443/tcp"
              - "127.0.0.1:5353:53/udp"
              - "9000"
              - "3000-3001:4000-4001"
              - "[::1]:6001:6001"
              - 7000
              - {target: 5000, published: 5001, host_ip: 0.0.0.0, protocol: udp}
              - {target: 6000}
              - {target: "7100", published: "7101", mode: host}
            expose: ["9000", "9100", 9200, "9300/udp", "9400-9401"]
    """)
    assert by_name(result)["app"]["ports"] == [
        "8080:80", "127.0.0.1:8443:443", "127.0.0.1:5353:53/udp", ":9000", "3000:4000", "3001:4001",
        {"container_port": 6001, "host_port": "6001", "host_ip": "::1", "protocol": "tcp"}, ":7000",
        "0.0.0.0:5001:5000/udp", ":6000", "7101:7100", "9100", "9200", "9300/udp", "9400", "9401"]
    assert result["warnings"] == ["service app: ports[9].mode: no field for it; left out"]
    planned(result)


def test_command_healthcheck_restart_labels_and_deploy():
    result = imported("""
        services:
          a:
            image: x
            command: ["sh", "-c", "echo $$HOME"]
            healthcheck: {test: curl -f http://localhost/, interval: 1m30s, timeout: 5s, retries: 3, start_period: 500ms}
            restart: on-failure:3
            labels: ["com.example.team=core", "flag"]
            deploy: {replicas: 1, endpoint_mode: dnsrr, placement: {max_replicas_per_node: 1}, resources: {limits: {cpus: "1"}}}
          b:
            image: x
            command: echo hello
            entrypoint: ["/bin/tini", "--"]
            healthcheck: {test: ["CMD", "true"], start_interval: 1s}
            restart: always
            scale: 2
          c: {image: x, healthcheck: {disable: true}}
          d: {image: x, healthcheck: {test: [NONE]}}
          e: {image: x, healthcheck: {interval: 5s}}
    """)
    resources = by_name(result)
    assert resources["a"] == {
        "name": "a", "image": "x", "command": ["sh", "-c", "echo $HOME"],
        "healthcheck": {"test": "curl -f http://localhost/", "interval": "1m30s", "timeout": "5s", "retries": 3,
                        "start_period": "500ms"},
        "restart_policy": "on-failure", "labels": {"com.example.team": "core", "flag": ""},
        "replicas": 1, "endpoint_mode": "dnsrr", "max_replicas_per_node": 1, "cpus": 1.0}
    assert resources["b"] == {"name": "b", "image": "x", "command": "echo hello", "healthcheck": {"test": ["CMD", "true"]},
                              "restart_policy": "always", "replicas": 2, "entrypoint": ["/bin/tini", "--"]}
    assert resources["c"]["healthcheck"] == {"test": ["NONE"]} == resources["d"]["healthcheck"]
    assert "healthcheck" not in resources["e"]
    for words in (("service a: restart:", "on-failure"), ("service e: healthcheck: no test",),
                  ("service b: healthcheck.start_interval",)):
        assert has_warning(result, *words), (words, result["warnings"])
    assert not has_warning(result, "replicas")


def test_replicas_update_order_and_stop_grace_period_are_fields_of_both_engines():
    result = imported("""
        services:
          api:
            image: x
            expose: ["8000"]
            stop_grace_period: 1m30s
            deploy:
              replicas: 3
              update_config: {order: start-first, parallelism: 1, delay: 5s}
          worker: {image: x, scale: 2, deploy: {update_config: {order: stop-first}}}
          both: {image: x, scale: 2, deploy: {replicas: 2}}
    """)
    resources = by_name(result)
    assert resources["api"] == {"name": "api", "image": "x", "ports": ["8000"], "replicas": 3,
                                "update_order": "start-first", "stop_grace_period": "1m30s"}
    assert resources["worker"] == {"name": "worker", "image": "x", "replicas": 2, "update_order": "stop-first"}
    assert resources["both"]["replicas"] == 2
    assert has_warning(result, "service api: deploy.update_config.delay: no field for it")
    assert has_warning(result, "service api: deploy.update_config.parallelism: no field for it")
    assert not has_warning(result, "replicas") and not has_warning(result, "stop_grace_period")
    for engine in ("docker", "swarm"):
        Plan("shop", result["resources"], result["connections"], base_dir="/srv/play", engine=engine)


@pytest.mark.parametrize("text, problem", [
    ("services:\n  app: {image: x, scale: 2, deploy: {replicas: 3}}\n",
     "service app: deploy.replicas: 3 differs from scale 2, which Compose refuses"),
    ("services:\n  app: {image: x, scale: two}\n", "service app: scale: 'two' is not a number"),
    ("services:\n  app: {image: x, stop_grace_period: soon}\n", "service app: stop_grace_period: invalid duration 'soon'"),
])
def test_bad_replicas_or_grace_period_names_the_key(text, problem):
    assert problem in failure(text)


@pytest.mark.parametrize("key", ["container_name", "links", "cgroup_parent", "blkio_config"])
def test_a_key_without_a_field_is_a_warning_naming_service_and_key(key):
    value = {"container_name": "my-app", "links": "[db]", "cgroup_parent": "/custom",
             "blkio_config": "{weight: 300}"}[key]
    result = imported("services:\n  app:\n    image: x\n    %s: %s\n" % (key, value))
    assert [line for line in result["warnings"] if line.startswith("service app: %s: " % key)], result["warnings"]
    assert by_name(result)["app"] == {"name": "app", "image": "x"}


@pytest.mark.parametrize("key, value, field", [
    ("logging", "{driver: json-file}", {"logging": {"driver": "json-file"}}),
    ("user", "'1000'", {"user": "1000"}),
    ("network_mode", "none", {"network_mode": "none"}),
    ("working_dir", "/app", {"working_dir": "/app"}),
    ("tmpfs", "[/run]", {"tmpfs": ["/run"]}),
    ("ulimits", "{nofile: 1024}", {"ulimits": {"nofile": 1024}}),
])
def test_a_key_of_the_option_table_is_its_field_without_a_warning(key, value, field):
    result = imported("services:\n  app:\n    image: x\n    %s: %s\n" % (key, value))
    assert result["warnings"] == []
    assert by_name(result)["app"] == dict({"name": "app", "image": "x"}, **field)


def test_what_the_stack_would_refuse_or_has_no_field_for_is_a_warning():
    result = imported("""
        include: [other.yml]
        services:
          a: {image: x, networks: {default: {aliases: [alias]}, back: {ipv4_address: 10.0.0.5}}}
          bb: {image: x, networks: [back], environment: {A_HOST: a}}
        networks:
          back:
            driver_opts: {mtu: "1400"}
            labels: [x=y]
            ipam: {driver: default, config: [{subnet: 10.0.0.0/24, ip_range: 10.0.0.0/25}, {subnet: 10.1.0.0/24}]}
    """)
    for words in (("include: other files are not read",), ("service a: the stack refuses it as a resource name",),
                  ("service a: networks.default.aliases: on the stack's default network",),
                  ("networks.back.driver_opts: no field",),
                  ("networks.back.labels",), ("networks.back.ipam.driver",), ("networks.back.ipam.config.ip_range",),
                  ("networks.back.ipam.config: only the first pool",)):
        assert has_warning(result, *words), (words, result["warnings"])
    assert connections(result, "network")[0]["subnet"] == "10.0.0.0/24"
    assert by_name(result)["a"]["networks"] == [{"name": "shop_back", "aliases": ["a"], "ipv4_address": "10.0.0.5"}]


def test_build_is_the_build_field_with_or_without_image(tmp_path):
    result = imported("""
        services:
          app: {build: .}
          web:
            image: shop-web:1
            build: {context: ./web, dockerfile: Dockerfile.prod, target: run, args: [MODE=prod], ssh: [default]}
    """, base_dir=str(tmp_path))
    assert by_name(result)["app"] == {"name": "app", "build": {"context": str(tmp_path)}}
    assert by_name(result)["web"]["build"] == {"context": str(tmp_path / "web"), "dockerfile": "Dockerfile.prod",
                                               "target": "run", "args": {"MODE": "prod"}}
    assert result["warnings"] == ["service web: build.ssh: no field for it; left out"]


# -- profiles and extends -----------------------------------------------------------------

PROFILES = """
    services:
      app: {image: x, depends_on: [debugger]}
      debugger: {image: y, profiles: [debug]}
      docs: {image: z, profiles: [docs, all]}
"""


def test_a_service_with_profiles_only_when_one_is_selected():
    result = imported(PROFILES)
    assert [r["name"] for r in result["resources"]] == ["app"]
    assert has_warning(result, "service debugger: profiles: none selected of debug; left out")
    assert has_warning(result, "service app: depends_on: debugger is not selected")
    assert connections(result) == []
    assert [r["name"] for r in imported(PROFILES, profiles=["debug"])["resources"]] == ["app", "debugger"]
    assert connections(imported(PROFILES, profiles=["debug"]), "dependency")[0]["to"] == "debugger"
    assert [r["name"] for r in imported(PROFILES, profiles=["*"])["resources"]] == ["app", "debugger", "docs"]
    assert [r["name"] for r in imported(PROFILES, env={"COMPOSE_PROFILES": "all"})["resources"]] == ["app", "docs"]


def test_extends_merges_the_base_service():
    result = imported("""
        services:
          base:
            image: x
            environment: {A: "1", B: "1"}
            ports: ["80"]
            labels: [tier=web]
            volumes: ["/srv/a:/data"]
          mid:
            extends: base
            environment: [B=2]
            command: run
          app:
            extends: {service: mid}
            ports: ["81"]
            volumes: ["/srv/b:/data", "/srv/c:/other"]
            depends_on: [base]
    """)
    app = by_name(result)["app"]
    assert app["env"] == {"A": "1", "B": "2"}
    assert app["ports"] == [":80", ":81"] and app["command"] == "run" and app["labels"] == {"tier": "web"}
    mounts = [(c["from"], c["to"], c["mount_path"]) for c in connections(result, "file", "app")]
    assert mounts == [("app", "srv-b", "/data"), ("app", "srv-c", "/other")], "a mount is merged by its target"


def test_extends_of_another_file_is_a_warning():
    result = imported("services:\n  app: {image: x, extends: {file: other.yml, service: base}}\n")
    assert has_warning(result, "service app: extends.file: other.yml not read")


def test_extends_of_an_unknown_service_or_in_a_cycle_fails():
    message = failure("""
        services:
          a: {image: x, extends: ghost}
          b: {extends: c}
          c: {extends: b}
    """)
    assert "service a: extends.service: unknown service ghost" in message
    assert "extends: cycle b -> c -> b" in message


# -- project name ------------------------------------------------------------------------

def test_the_project_name_and_what_it_prefixes(tmp_path):
    text = "services:\n  db: {image: postgres, volumes: [data:/d]}\nvolumes:\n  data:\n"
    assert by_name(imported(text))["shop_data"]["volume_name"] == "shop_data"
    assert "named_data" in by_name(from_compose("name: named\n" + text))
    assert "fromenv_data" in by_name(from_compose(text, env={"COMPOSE_PROJECT_NAME": "fromenv"}))
    project = tmp_path / "My Project"
    project.mkdir()
    assert "myproject_data" in by_name(from_compose(text, base_dir=str(project)))
    fallback = from_compose(text)
    assert "compose_data" in by_name(fallback) and has_warning(fallback, "the project is named compose")
    assert "project_name: 'Bad Name'" in failure(text, project_name="Bad Name")


def test_named_and_external_volumes_and_networks():
    result = imported("""
        version: "3.8"
        services:
          a: {image: x, volumes: [data:/d, old:/o], networks: [front], environment: {B_HOST: b}}
          b: {image: x, networks: [front]}
        volumes:
          data: {name: exact-data, driver: local, driver_opts: {type: tmpfs}}
          old: {external: true}
          unused:
        networks:
          front: {name: exact-front, external: true}
    """)
    resources = by_name(result)
    assert resources["exact-data"]["volume_name"] == "exact-data" and resources["old"]["volume_name"] == "old"
    assert resources["old"]["external"] is True and "driver" not in resources["old"]
    assert resources["exact-front"] == {"name": "exact-front", "type": "network", "network_name": "exact-front",
                                        "external": True}
    assert connections(result, "network")[0]["network_name"] == "exact-front"
    assert "external" not in connections(result, "network")[0]
    for words in (("version: obsolete",), ("volumes.data.driver_opts",),
                  ("volumes.unused: used by no selected service",)):
        assert has_warning(result, *words), (words, result["warnings"])
    assert not [w for w in result["warnings"] if "external" in w], "Compose's meaning, kept: no warning"


# -- volumes and bind mounts -------------------------------------------------------------------

def test_volumes_in_short_and_long_forms(tmp_path):
    result = imported("""
        services:
          app:
            image: x
            volumes:
              - data:/data:ro
              - ./conf:/etc/app
              - /var/log/app:/logs:rw
              - type: volume
                source: cache
                target: /cache
                volume: {nocopy: true}
              - {type: bind, source: ./site, target: /srv, read_only: true}
              - {type: tmpfs, target: /tmp}
              - /anonymous
              - ./conf:/etc/app2:z
        volumes: {data: {}, cache: {driver: local}}
    """, base_dir=str(tmp_path))
    app = by_name(result)["app"]
    assert app["mounts"] == [{"type": "volume", "source": "shop_data", "target": "/data", "read_only": True},
                             {"type": "volume", "source": "shop_cache", "target": "/cache", "nocopy": True},
                             {"type": "tmpfs", "target": "/tmp"}, {"type": "volume", "target": "/anonymous"}]
    files = [r for r in result["resources"] if r.get("type") == "file"]
    assert files == [{"name": "conf", "type": "file", "path": str(tmp_path / "conf")},
                     {"name": "var-log-app", "type": "file", "path": "/var/log/app"},
                     {"name": "site", "type": "file", "path": str(tmp_path / "site")}]
    assert [(c["to"], c["mount_path"], c.get("read_only")) for c in connections(result, "file")] == [
        ("conf", "/etc/app", None), ("var-log-app", "/logs", None), ("site", "/srv", True), ("conf", "/etc/app2", None)]
    assert result["warnings"] == ["service app: volumes[7].z: no field for it; left out"]
    planned(result, base_dir=str(tmp_path))


def test_a_named_volume_of_two_services_is_shared_by_file_connections():
    result = imported("""
        services:
          writer: {image: x, volumes: ["shared:/out"]}
          reader: {image: x, volumes: [{type: volume, source: shared, target: /in, read_only: true}]}
          alone: {image: x, volumes: ["own:/own"]}
        volumes: {shared: {driver: local}, own: {}}
    """)
    assert connections(result, "file") == [
        {"type": "file", "from": "writer", "to": "shop_shared", "mount_path": "/out", "volume_name": "shop_shared",
         "volume_driver": "local", "description": "from compose: volume shared is shared by writer, reader"},
        {"type": "file", "from": "reader", "to": "shop_shared", "mount_path": "/in", "volume_name": "shop_shared",
         "volume_driver": "local", "read_only": True, "description": "from compose: volume shared is shared by writer, reader"}]
    assert by_name(result)["alone"]["mounts"] == [{"type": "volume", "source": "shop_own", "target": "/own"}]
    planned(result)


# -- depends_on --------------------------------------------------------------------------------

def test_depends_on_list_and_map_with_every_condition():
    result = imported("""
        services:
          migrate: {image: x}
          db: {image: postgres}
          cache: {image: redis}
          app:
            image: x
            depends_on:
              db: {condition: service_healthy}
              cache: {condition: service_started, restart: true}
              migrate: {condition: service_completed_successfully}
          web: {image: x, depends_on: [app]}
    """)
    assert [(c["from"], c["to"], c["condition"], c["description"]) for c in connections(result, "dependency")] == [
        ("app", "db", "healthy", "from compose: depends_on app -> db (service_healthy)"),
        ("app", "cache", "started", "from compose: depends_on app -> cache (service_started)"),
        ("app", "migrate", "completed_successfully", "from compose: depends_on app -> migrate (service_completed_successfully)"),
        ("web", "app", "started", "from compose: depends_on web -> app (service_started)")]
    assert result["warnings"] == ["service app: depends_on.cache.restart: no field for it; left out"]
    planned(result)


def test_depends_on_an_unknown_service_or_a_cycle_fails():
    assert "service app: depends_on: unknown service ghost" in failure("services:\n  app: {image: x, depends_on: [ghost]}\n")
    message = failure("""
        services:
          a: {image: x, depends_on: [b]}
          b: {image: x, depends_on: {c: {condition: service_started}}}
          c: {image: x, depends_on: [a]}
    """)
    assert "service a: depends_on: cycle a -> b -> c -> a" in message


# -- database connections -------------------------------------------------------------------------

@pytest.mark.parametrize("url, engine, template, fields", [
    ("postgres://app:p%40ss@db:5432/shop", "postgresql", "postgres://{user}:{password}@{host}:{port}/{database}",
     {"username": "app", "password": "p@ss", "database_name": "shop"}),
    ("postgresql://app@db/shop?sslmode=disable", "postgresql", "postgresql://{user}@{host}/{database}?sslmode=disable",
     {"username": "app", "database_name": "shop"}),
    ("mysql://root:pw@db:3306/wp", "mysql", "mysql://{user}:{password}@{host}:{port}/{database}",
     {"username": "root", "password": "pw", "database_name": "wp"}),
    ("mariadb://u:pw@db/wp", "mysql", "mariadb://{user}:{password}@{host}/{database}",
     {"username": "u", "password": "pw", "database_name": "wp"}),
    ("redis://:pw@db:6379/0", "redis", "redis://:{password}@{host}:{port}/{database}", {"password": "pw", "database_name": "0"}),
    ("redis://db:6379", "redis", "redis://{host}:{port}", {}),
])
def test_a_database_url_naming_a_service(url, engine, template, fields):
    image = {"postgresql": "postgres:16", "mysql": "mysql:8", "redis": "redis:7"}[engine]
    result = imported("""
        services:
          db: {image: "%s"}
          app: {image: x, environment: {STORE_URL: "%s", OTHER: "1"}}
    """ % (image, url))
    expected = dict({"type": "database", "from": "app", "to": "db", "engine": engine, "connection_string_template": template,
                     "env_var_name": "STORE_URL", "description": "from compose: environment STORE_URL of app is a %s URL "
                     "naming service db" % url.split(":")[0]}, **fields)
    assert connections(result) == [expected]
    assert by_name(result)["app"]["env"] == {"OTHER": "1"}
    assert result["warnings"] == []
    planned(result)


def test_a_url_port_other_than_the_servers_is_a_warning():
    result = imported("""
        services:
          db: {image: postgres, expose: ["5432"]}
          app: {image: x, environment: {DATABASE_URL: "postgres://u:p@db:6543/x"}}
    """)
    assert has_warning(result, "service app: environment.DATABASE_URL: says port 6543; the stack fills {port} with 5432")


WORDPRESS = """
    services:
      db:
        image: mariadb:11
        environment: {MARIADB_DATABASE: wordpress, MARIADB_USER: wp, MARIADB_PASSWORD: wp-pass}
      wordpress:
        image: wordpress:6
        ports: ["8080:80"]
        environment:
          WORDPRESS_DB_HOST: db:3306
          WORDPRESS_DB_USER: wp
          WORDPRESS_DB_PASSWORD: wp-pass
          WORDPRESS_DB_NAME: wordpress
          WORDPRESS_TABLE_PREFIX: wp_
        depends_on: [db]
"""


def test_parts_naming_a_database_server_are_a_database_connection_with_env():
    result = imported(WORDPRESS)
    database = connections(result, "database")
    assert database == [{
        "type": "database", "from": "wordpress", "to": "db", "engine": "mysql",
        "description": "from compose: environment WORDPRESS_DB_HOST of wordpress names the mysql server db, with "
                       "WORDPRESS_DB_NAME, WORDPRESS_DB_PASSWORD, WORDPRESS_DB_USER",
        "env": {"WORDPRESS_DB_HOST": "{host}:{port}", "WORDPRESS_DB_NAME": "{database}",
                "WORDPRESS_DB_PASSWORD": "{password}", "WORDPRESS_DB_USER": "{user}"},
        "env_var_name": "", "username": "wp", "password": "wp-pass", "database_name": "wordpress"}]  # pragma: allowlist secret
    assert by_name(result)["wordpress"]["env"] == {"WORDPRESS_TABLE_PREFIX": "wp_"}
    assert result["warnings"] == []
    planned(result)


@pytest.mark.parametrize("server, engine", [
    ("{image: 'registry.example.com:5000/clockwork-test/postgres:15'}", "postgresql"),
    ("{image: 'docker.io/library/mysql:8@sha256:0123'}", "mysql"),
    ("{image: custom-db, environment: {POSTGRES_PASSWORD: x}}", "postgresql"),
    ("{image: custom-db, environment: {MYSQL_ROOT_PASSWORD: x}}", "mysql"),
    ("{image: custom-db, environment: {MARIADB_ROOT_PASSWORD: x}}", "mysql"),
    ("{image: bitnami/redis}", "redis"),
])
def test_a_database_server_is_known_by_its_image_or_its_env(server, engine):
    result = imported("""
        services:
          store: %s
          app: {image: x, environment: {DB_HOST: store, DB_PORT: "%d", DB_DATABASE: app, DB_DB: other}}
    """ % (server, {"postgresql": 5432, "mysql": 3306, "redis": 6379}[engine]))
    database = connections(result, "database")[0]
    assert database["engine"] == engine
    assert database["env"] == {"DB_HOST": "{host}", "DB_PORT": "{port}", "DB_DATABASE": "{database}"}
    assert by_name(result)["app"]["env"] == {"DB_DB": "other"}, "one variable names the database"


def test_a_host_without_siblings_or_not_a_database_server_is_a_network_connection():
    result = imported("""
        services:
          db: {image: postgres}
          api: {image: x}
          app: {image: x, environment: {DB_HOST: db, API_HOST: api, API_USER: me}}
    """)
    assert [(c["type"], c["to"]) for c in connections(result)] == [("network", "db"), ("network", "api")]
    assert by_name(result)["app"]["env"] == {"API_USER": "me"}


SECRETS = """
    services:
      db:
        image: mysql:8
        environment: {MYSQL_DATABASE: wp, MYSQL_USER: wp, MYSQL_PASSWORD_FILE: /run/secrets/db_password}
        secrets: [db_password]
      wordpress:
        image: wordpress:6
        environment:
          WORDPRESS_DB_HOST: db
          WORDPRESS_DB_USER: wp
          WORDPRESS_DB_NAME: wp
          WORDPRESS_DB_PASSWORD_FILE: /run/secrets/db_password
        secrets: [db_password, {source: api_token, target: token}]
        configs: [site, {source: site, target: /etc/site.conf}]
    secrets:
      db_password: {file: ./secrets/db_password.txt}
      api_token: {file: /etc/tokens/api}
      from_env: {environment: TOKEN}
    configs:
      site: {file: site.conf}
"""


def test_a_password_secret_of_a_database_connection_is_delivered_as_a_file(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db_password.txt").write_text(PASSWORD + "\n")
    result = imported(SECRETS, base_dir=str(tmp_path), allowed_paths=["/etc/tokens"])
    database = connections(result, "database")[0]
    assert database["password_delivery"] == "file" and database["password"] == PASSWORD
    assert database["env"] == {"WORDPRESS_DB_HOST": "{host}", "WORDPRESS_DB_NAME": "{database}",
                               "WORDPRESS_DB_PASSWORD": "{password}", "WORDPRESS_DB_USER": "{user}"}
    assert "env" not in by_name(result)["wordpress"], "WORDPRESS_DB_PASSWORD_FILE is the connection's to set"
    files = [(c["from"], c["to"], c["mount_path"], c.get("read_only")) for c in connections(result, "file")]
    assert files == [("db", "secret-db_password", "/run/secrets/db_password", True),
                     ("wordpress", "secret-api_token", "/run/secrets/token", True),
                     ("wordpress", "config-site", "/site", True),
                     ("wordpress", "config-site", "/etc/site.conf", True)]
    assert by_name(result)["secret-db_password"]["path"] == str(tmp_path / "secrets" / "db_password.txt")
    assert by_name(result)["config-site"]["path"] == str(tmp_path / "site.conf")
    assert by_name(result)["db"]["env"]["MYSQL_PASSWORD_FILE"] == "/run/secrets/db_password", "the server reads its file"
    assert result["warnings"] == []
    planned(result, base_dir=str(tmp_path))


def test_without_base_dir_a_password_secret_is_a_placeholder_with_a_warning():
    result = imported(SECRETS)
    assert connections(result, "database")[0]["password"] == "<secret db_password>"
    assert has_warning(result, "service wordpress: secrets: the password of secret db_password is not read (no base_dir)")


def test_a_password_secret_that_cannot_be_read_is_a_placeholder_with_the_reason(tmp_path):
    result = imported(SECRETS, base_dir=str(tmp_path), allowed_paths=["/etc/tokens"])
    assert connections(result, "database")[0]["password"] == "<secret db_password>"
    assert has_warning(result, "service wordpress: secrets: the password of secret db_password is not read "
                               "(./secrets/db_password.txt cannot be read: No such file or directory)")


def test_a_secret_that_is_not_a_file_is_a_warning():
    result = imported("""
        services:
          app: {image: x, secrets: [token, {source: ext, uid: "1000"}]}
        secrets:
          token: {environment: TOKEN}
          ext: {external: true}
    """)
    assert has_warning(result, "service app: secrets[0]: secret token comes from environment")
    assert has_warning(result, "service app: secrets[1]: secret ext comes from external")


# -- service mesh and network connections ----------------------------------------------------------

def test_an_http_url_of_a_service_is_a_service_mesh_connection():
    result = imported("""
        services:
          api: {image: x, expose: ["8000"]}
          admin: {image: x}
          web:
            image: x
            environment:
              API_URL: http://api:8000
              BACKEND_URL: http://api:8000/v1/
              ADMIN: https://admin/panel
              SELF: http://web:80
              ELSEWHERE: https://example.com/x
              AMQP: amqp://guest:guest@rabbit:5672/
    """)
    assert connections(result) == [
        {"type": "service_mesh", "from": "web", "to": "api", "protocol": "http", "port": 8000, "service_name": "api",
         "health_check_path": "/", "description": "from compose: environment API_URL of web is an http URL of service api"},
        {"type": "service_mesh", "from": "web", "to": "admin", "protocol": "https", "port": 443, "service_name": "admin",
         "health_check_path": "/panel",
         "description": "from compose: environment ADMIN of web is an https URL of service admin",
         "env_var_name": ""}]
    assert by_name(result)["web"]["env"] == {"BACKEND_URL": "http://api:8000/v1/", "ADMIN": "https://admin/panel",
                                             "SELF": "http://web:80", "ELSEWHERE": "https://example.com/x",
                                             "AMQP": "amqp://guest:guest@rabbit:5672/"}
    assert result["warnings"] == ["service web: environment.ADMIN: port 443 is neither exposed nor published by admin"]
    planned(result)


def test_a_connection_whose_env_would_differ_from_the_services_sets_none():
    result = imported("""
        services:
          api: {image: x, ports: ["8000:8000"]}
          cache: {image: redis}
          web: {image: x, environment: {API_URL: "http://api:8000/v1", CACHE_HOST: "cache:6379"}}
    """)
    # The connections are made, and set no variable: the service's own values stay as compose has them.
    assert [(c["type"], c["to"], c["env_var_name"]) for c in connections(result)] == [
        ("service_mesh", "api", ""), ("network", "cache", "")]
    assert by_name(result)["web"]["env"] == {"API_URL": "http://api:8000/v1", "CACHE_HOST": "cache:6379"}
    assert result["warnings"] == []
    planned(result)


def test_a_host_or_host_port_value_is_a_network_connection_on_a_shared_network():
    result = imported("""
        services:
          broker: {image: x, networks: {back: {aliases: [mq]}, front: null}}
          worker: {image: x, networks: [back], environment: {QUEUE: "broker:5672", BROKER_HOST: broker}}
          web: {image: x, networks: [front], environment: {UPSTREAM: "worker:80"}}
          plain: {image: x, environment: {X: "broker:notaport"}}
        networks:
          back: {driver: bridge, internal: true, ipam: {config: [{subnet: 172.30.0.0/16, gateway: 172.30.0.1}]}}
          front:
    """)
    assert connections(result) == [
        {"type": "network", "from": "worker", "to": "broker", "network_name": "shop_back", "driver": "bridge",
         "internal": True, "subnet": "172.30.0.0/16", "gateway": "172.30.0.1",
         "description": "from compose: environment QUEUE of worker names service broker", "env_var_name": ""}]
    resources = by_name(result)
    assert resources["worker"]["env"] == {"QUEUE": "broker:5672", "BROKER_HOST": "broker"}, \
        "one network connection per pair, setting no variable (QUEUE came first): both stay as compose has them"
    assert resources["broker"]["networks"] == [{"name": "shop_back", "aliases": ["broker", "mq"]},
                                               {"name": "shop_front", "aliases": ["broker"]}], \
        "its own name first, as Compose gives it on each of its networks"
    assert resources["plain"]["env"] == {"X": "broker:notaport"}
    assert has_warning(result, "service web: environment.UPSTREAM: names service worker, but they share no network")
    assert [w for w in result["warnings"] if "networks" in w] == [], "every named network is a network resource"
    assert [(r["name"], r.get("internal")) for r in result["resources"] if r.get("type") == "network"] == [
        ("shop_back", True), ("shop_front", None)]
    planned(result)


NAMED_ONLY = """
    services:
      broker: {image: x, networks: [back, front]}
      worker: {image: x, networks: [back], environment: {BROKER_HOST: broker}}
      web: {image: x, networks: [front]}
      api: {image: x}
    networks: {back: {}, front: {}}
"""


def test_on_named_networks_only_default_network_false():
    """A service on named networks only is off the default network (as in Compose), whether or not a
    connection needs its networks: each is a network resource of the stack."""
    result = imported(NAMED_ONLY)
    resources = by_name(result)
    for name in ("broker", "worker", "web"):
        assert resources[name]["default_network"] is False, name
    assert resources["worker"]["networks"] == [{"name": "shop_back", "aliases": ["worker"]}]
    assert resources["web"]["networks"] == [{"name": "shop_front", "aliases": ["web"]}]
    assert "default_network" not in resources["api"]
    assert sorted(n["network_name"] for n in result["resources"] if n.get("type") == "network") == [
        "shop_back", "shop_front"]
    assert not has_warning(result, "networks")
    plan = planned(result)
    assert [n["name"] for n in plan.networks] == ["shop_default", "shop_back", "shop_front"]


def test_the_default_network_when_none_is_named():
    result = imported("""
        services:
          cache: {image: redis}
          app: {image: x, environment: {REDIS_HOST: cache, CACHE: "cache:6379"}}
        networks:
          default: {driver: bridge}
    """)
    assert [(c["network_name"], c["description"]) for c in connections(result)] == [
        ("shop_default", "from compose: environment REDIS_HOST of app names service cache")]
    assert by_name(result)["app"]["env"] == {"CACHE": "cache:6379"}, "the connection sets REDIS_HOST; CACHE stays"
    assert connections(result)[0]["env_var_name"] == "REDIS_HOST"
    planned(result)


def test_a_connection_that_would_close_a_cycle_is_not_made():
    result = imported("""
        services:
          aa: {image: x, expose: ["80"], environment: {BB_URL: "http://bb:80"}}
          bb: {image: x, expose: ["80"], environment: {AA_URL: "http://aa:80"}, depends_on: [cc]}
          cc: {image: x, environment: {BB_HOST: bb}}
    """)
    made = [(c["type"], c["from"], c["to"]) for c in connections(result)]
    assert made == [("service_mesh", "aa", "bb"), ("dependency", "bb", "cc")]
    assert has_warning(result, "service bb: environment.AA_URL: a service_mesh connection to aa would close a cycle")
    assert has_warning(result, "service cc: environment.BB_HOST: a network connection to bb would close a cycle")
    planned(result)


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("services: [unclosed", "docker-compose.yml: invalid YAML (line 2, column 1): did not find expected ',' or ']'"),
    ("services:\n  a: 1\n b: 2\n", "docker-compose.yml: invalid YAML (line 3, column 2)"),
    ("- a\n- b\n", "docker-compose.yml: the top level must be a mapping, got a list"),
    ("just text\n", "docker-compose.yml: the top level must be a mapping, got a string"),
    ("", "docker-compose.yml: the top level must be a mapping, got null"),
])
def test_text_that_is_no_compose_file(text, words):
    with pytest.raises(ComposeError) as error:
        from_compose(text, source="docker-compose.yml")
    assert str(error.value).startswith(words), str(error.value)


BAD = """
    servics: {}
    services:
      api:
        image: [nginx]
        imag: nginx
        ports: {web: 80}
        environment: "A=1"
        restart: sometimes
        depends_on: {db: {condition: service_ready}}
        healthcheck: {test: true, retries: 3}
        volumes: [{source: x}]
      db:
        image: postgres
        networks: [nowhere]
    networks:
      backend: {driver: 7}
"""
BAD_PROBLEMS = [
    "servics: unknown key",
    "service api: imag: unknown key",
    "service api: image: must be a string, got a list",
    "service api: ports: must be a list, got a mapping",
    "service api: environment: must be a mapping or a list, got a string",
    "service api: depends_on.db.condition: must be one of service_started, service_healthy, service_completed_successfully",
    "service api: healthcheck.test: must be a string or a list",
    "service api: volumes[0].type: is required",
    "networks.backend.driver: must be a string, got an integer",
]
# compose-spec's schema leaves it to Compose's later checks (so does the importer: read_mounts)
COMPACT_ONLY = [
    "service api: volumes[0].target: is required",
]
LATER_PROBLEMS = [
    "service db: expose[0]: invalid port 'not-a-port'",
    "service db: volumes[0]: undefined volume undeclared",
    "service db: volumes[1]: invalid volume 'relative:path:x:y'",
    "service db: secrets[0]: undefined secret missing",
    "service db: configs[0]: undefined config absent",
    "service db: networks: undefined network nowhere",
    "service db: healthcheck.interval: invalid duration 'soon'",
]


def spec_schema():
    validator, where = compose_spec.spec_validator()
    if validator is None:
        pytest.skip(where)
    return where


@pytest.mark.parametrize("use_jsonschema", [True, False], ids=["compose-spec", "compact"])
def test_every_structural_problem_at_once_naming_source_service_and_key(use_jsonschema):
    if use_jsonschema:
        spec_schema()
    with pytest.raises(ComposeError) as error:
        imported(BAD, source="stack.yml", use_jsonschema=use_jsonschema)
    assert str(error.value).startswith("stack.yml: ")
    expected = BAD_PROBLEMS + ([] if use_jsonschema else COMPACT_ONLY)
    for problem in expected:
        assert any(p.startswith(problem) for p in error.value.problems), (problem, error.value.problems)
    assert len(error.value.problems) == len(expected), error.value.problems


def test_compose_specs_own_schema_is_read_from_the_package_that_ships_it():
    where = spec_schema()
    assert where.endswith(os.path.join("check_jsonschema", "builtin_schemas", "vendor", "compose-spec.json"))
    assert imported("services:\n  app: {image: x}\n")["warnings"] == []


@pytest.mark.parametrize("text, problems", [
    ("services:\n  app: {image: x, user: 1000}\n", ["service app: user: must be a string, got an integer"]),
    ("services:\n  app: {image: x, deploy: {update_config: {order: sideways}}}\n",
     ["service app: deploy.update_config.order: must be one of start-first, stop-first, got 'sideways'"]),
    ("services:\n  app: {image: x, deploy: {replicas: [2]}}\n",
     ["service app: deploy.replicas: must be an integer or a string, got a list"]),
    ("services:\n  app: {image: x, cap_add: NET_ADMIN, logging: {drivr: x}}\n",
     ["service app: cap_add: must be a list, got a string", "service app: logging.drivr: unknown key"]),
    ("services:\n  app: {image: x, networks: {front: {alias: [x]}}}\nnetworks: {front: {}}\n",
     ["service app: networks.front.alias: unknown key"]),
    ("services:\n  app: {image: x}\nvolumes: {'bad vol': {}}\n", ["volumes.bad vol: is not a valid name"]),
])
def test_what_compose_spec_refuses_the_compact_schema_let_through_is_refused(text, problems):
    spec_schema()
    with pytest.raises(ComposeError) as error:
        imported(text, source="compose.yaml")
    for problem in problems:
        assert any(p.startswith(problem) for p in error.value.problems), (problem, error.value.problems)
    assert len(error.value.problems) == len(problems), error.value.problems


def test_todays_compose_keys_pass_compose_spec():
    spec_schema()
    result = imported("""
        name: shop
        services:
          app:
            image: x
            healthcheck: {test: [CMD, "true"], start_interval: 1s}
            develop: {watch: [{path: ./src, action: sync, target: /app}]}
            post_start: [{command: [echo, up]}]
            deploy: {replicas: "${N:-2}", update_config: {order: start-first}}
            ports: [{target: "80", published: "${PORT:-8080}"}]
            stop_grace_period: 30s
    """)
    assert has_warning(result, "service app: develop") and has_warning(result, "service app: post_start")


def test_without_compose_specs_schema_the_compact_one_validates_and_says_so(monkeypatch):
    monkeypatch.setattr(compose_spec, "_LOADED", {"validator": (None, "check-jsonschema is not installed")})
    monkeypatch.setattr(compose_schema, "schema_errors", SCHEMA_ERRORS)
    result = imported("services:\n  app: {image: x, cgroup_parent: 1000}\n")
    assert result["warnings"] == ["validated by the importer's compact schema, not compose-spec's (check-jsonschema "
                                  "is not installed): a file Compose refuses may pass", "service app: cgroup_parent: "
                                  "the container resource has no field for it; left out"]
    assert "service app: imag: unknown key" in failure("services:\n  app: {imag: x}\n")


def test_the_problems_of_the_services_come_together_once_the_structure_is_right():
    message = failure("""
        services:
          db:
            image: postgres
            networks: [nowhere]
            volumes: [undeclared:/data, "relative:path:x:y"]
            secrets: [missing]
            configs: [{source: absent}]
            expose: ["not-a-port"]
            healthcheck: {test: x, interval: soon}
    """, source="stack.yml")
    assert message.startswith("stack.yml: ")
    for problem in LATER_PROBLEMS:
        assert problem in message, (problem, message)


@pytest.mark.parametrize("text, problem", [
    ("services:\n  app: {image: x, ports: ['1:2:3:4']}\n", "service app: ports[0]: invalid port '1:2:3:4'"),
    ("services:\n  app: {image: x, ports: ['70000:80']}\n", "service app: ports[0]: invalid port '70000:80': ports are 1-65535"),
    ("services:\n  app: {image: x, ports: ['8000-8001:80']}\n", "the host and container ranges differ"),
    ("services:\n  app: {image: x, ports: ['80/ftp']}\n", "protocol ftp is not tcp, udp or sctp"),
    ("services:\n  app: {image: x, volumes: ['data:relative']}\nvolumes: {data: {}}\n",
     "service app: volumes[0]: target relative must be an absolute path"),
    ("services:\n  app: {image: x, volumes: [{type: bind, target: /x}]}\n", "service app: volumes[0]: a bind mount needs a source"),
    ("services:\n  app: {image: x, healthcheck: {test: x, retries: many}}\n", "service app: healthcheck.retries: 'many' is not a number"),
    ("services:\n  app: {image: x, deploy: {replicas: two}}\n", "service app: deploy.replicas: 'two' is not a number"),
    ("services:\n  'bad name': {image: x}\n", "service bad name: is not a valid"),
    ("services:\n  app: {image: x, restart: sometimes}\n", "service app: restart: 'sometimes' is not a restart policy"),
    ("services:\n  app: {image: x, volumes: [{type: tmpfs}]}\n", "service app: volumes[0].target: is required"),
    ("services:\n  app: {image: x, depends_on: [app]}\n", "service app: depends_on: cycle app -> app"),
])
def test_a_bad_value_names_the_service_and_the_key(text, problem):
    assert problem in failure(text)


def test_a_non_string_input_is_refused():
    with pytest.raises(ComposeError) as error:
        from_compose({"services": {}})
    assert str(error.value) == "compose file: must be the compose file's text, got a mapping"


# -- the filter ---------------------------------------------------------------------------

def test_the_filter_gives_the_declaration_and_turns_errors_into_filter_errors():
    from_compose_filter = FilterModule().filters()["from_compose"]
    result = from_compose_filter("services:\n  app: {image: x}\n", "shop")
    assert result == {"resources": [{"name": "app", "image": "x"}], "connections": [], "warnings": []}
    with pytest.raises(AnsibleFilterError) as error:
        from_compose_filter("services:\n  app: {imag: x}\n", "shop", source="mine.yml")
    assert "mine.yml: service app: imag: unknown key" in str(error.value)


# -- speed -----------------------------------------------------------------------------------

def fifty_services():
    lines = ["x-common: &common", "  restart: unless-stopped", "services:",
             "  db:", "    image: postgres:16", "    environment: {POSTGRES_PASSWORD: pw}", "    expose: ['5432']"]
    for index in range(1, 50):
        lines += ["  svc%d:" % index, "    <<: *common", "    image: nginx:1.27", "    ports: ['%d:80']" % (10000 + index),
                  "    environment:", "      DATABASE_URL: postgres://app:pw@db:5432/app%d" % index,
                  "      PREVIOUS_URL: http://svc%d:80/health" % max(index - 1, 1), "      LOG_LEVEL: info",
                  "    depends_on: {db: {condition: service_healthy}}", "    volumes: ['shared:/data', 'own%d:/own']" % index,
                  "    healthcheck: {test: [CMD, curl, -f, http://localhost], interval: 5s}"]
    lines += ["volumes:", "  shared:"] + ["  own%d:" % index for index in range(1, 50)]
    return "\n".join(lines) + "\n"


def test_fifty_services_import_in_under_a_fifth_of_a_second():
    text = fifty_services()
    result = from_compose(text, project_name="big")
    assert len([r for r in result["resources"] if r.get("type") is None]) == 50
    assert len(connections(result, "database")) == 49 and len(connections(result, "service_mesh")) == 48
    timings = []
    for _run in range(5):
        start = time.perf_counter()
        from_compose(text, project_name="big")
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.2, "best of 5: %.3f s" % min(timings)
    planned(result, name="big")


def test_no_file_is_read_without_base_dir(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("TAG=from-dot-env\n")
    monkeypatch.chdir(tmp_path)
    result = imported("services:\n  app: {image: 'x:${TAG:-none}', env_file: .env}\n")
    assert by_name(result)["app"]["image"] == "x:none"
    assert os.path.exists(".env")


def test_an_undefined_variable_and_a_cycle_are_told_together():
    with pytest.raises(ComposeError) as raised:
        imported("""
            services:
              a: {image: x, depends_on: [b], environment: {TOKEN: "${API_TOKEN:?give the API token}"}}
              b: {image: x, depends_on: [a]}
        """)
    problems = raised.value.problems
    assert any("environment.TOKEN" in p and "API_TOKEN" in p for p in problems), problems
    assert any("cycle" in p for p in problems), problems


@pytest.mark.parametrize("context, words", [
    ("../elsewhere", "is outside the compose file's directory"),
    ("/etc", "is outside the compose file's directory"),
    ("https://github.com/example/app.git", "not a remote context"),
])
def test_a_build_context_out_of_the_file_s_directory_is_refused(tmp_path, context, words):
    message = failure("services:\n  app: {build: {context: '%s'}}\n" % context, base_dir=str(tmp_path))
    assert "service app: build.context: " in message and words in message, message


def test_a_build_arg_without_a_value_is_left_out_with_a_warning(tmp_path):
    result = imported("services:\n  app: {build: {context: ., args: [TOKEN, MODE=prod]}}\n", base_dir=str(tmp_path))
    assert by_name(result)["app"]["build"] == {"context": str(tmp_path), "args": {"MODE": "prod"}}
    assert has_warning(result, "service app: build.args.TOKEN: no value")
