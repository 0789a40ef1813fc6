"""The Compose side of the option table (plugin_utils/compose/options.py): every option with a
Compose key has its converter, each key imports as its field without a warning, and to_compose
writes it back so that it imports as the same field again."""
import textwrap

import pytest
import yaml

from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import TABLE
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import ComposeError, from_compose
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.options import (
    CONVERTERS, ELSEWHERE, compose_keys)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.rules import MAPPED
from test_compose_import import quiet_fallback  # noqa: F401  (the compact schema's warning left out where it validates)


def test_every_option_with_a_compose_key_has_a_converter_and_every_converter_an_option():
    with_keys = set(o.name for o in TABLE if o.compose)
    assert sorted(with_keys - set(CONVERTERS)) == [], "options with a Compose key but no converter"
    assert sorted(set(CONVERTERS) - set(o.name for o in TABLE)) == [], "converters of no option"
    for name, converter in CONVERTERS.items():
        assert converter.by or (converter.load and converter.dump), name
        assert converter.by is None or name in ELSEWHERE


def test_every_compose_key_of_the_table_is_mapped():
    assert set(compose_keys()) <= set(MAPPED)
    assert "deploy" in compose_keys() and "environment" in compose_keys()


# One value of each option a converter reads: (the compose text of the service's key, the field's value).
SAMPLES = {
    "tmpfs": ("tmpfs: /run", ["/run"]),
    "shm_size": ("shm_size: 256m", "256m"),
    "network_mode": ("network_mode: none", "none"),
    "hostname": ("hostname: app.local", "app.local"),
    "domainname": ("domainname: example.org", "example.org"),
    "mac_address": ("mac_address: 02:42:ac:11:00:02", "02:42:ac:11:00:02"),
    "extra_hosts": ("extra_hosts: ['db.local:10.0.0.5']", ["db.local:10.0.0.5"]),
    "dns": ("dns: 9.9.9.9", ["9.9.9.9"]),
    "dns_search": ("dns_search: [example.org]", ["example.org"]),
    "dns_opt": ("dns_opt: ['ndots:2']", ["ndots:2"]),
    "cap_drop": ("cap_drop: [ALL]", ["ALL"]),
    "read_only": ("read_only: true", True),
    "security_opt": ("security_opt: ['no-new-privileges:true']", ["no-new-privileges:true"]),
    "user": ("user: postgres", "postgres"),
    "working_dir": ("working_dir: /srv", "/srv"),
    "entrypoint": ("entrypoint: [/bin/sh, -c]", ["/bin/sh", "-c"]),
    "init": ("init: true", True),
    "stop_signal": ("stop_signal: SIGQUIT", "SIGQUIT"),
    "group_add": ("group_add: [mail, 1001]", ["mail", "1001"]),
    "pull_policy": ("pull_policy: never", "never"),
    "platform": ("platform: linux/amd64", "linux/amd64"),
    "mem_limit": ("mem_limit: 512m", "512m"),
    "mem_reservation": ("mem_reservation: 128m", "128m"),
    "cpus": ("cpus: 0.5", 0.5),
    "cpu_shares": ("cpu_shares: 512", 512),
    "pids_limit": ("pids_limit: 100", 100),
    "oom_score_adj": ("oom_score_adj: -500", -500),
    "ulimits": ("ulimits: {nofile: {soft: 20000, hard: 40000}, nproc: 65535}",
                {"nofile": {"soft": 20000, "hard": 40000}, "nproc": 65535}),
    "sysctls": ("sysctls: [net.core.somaxconn=1024]", {"net.core.somaxconn": "1024"}),
    "logging": ("logging: {driver: json-file, options: {max-size: 10m}}",
                {"driver": "json-file", "options": {"max-size": "10m"}}),
    "pid_mode": ("pid: 'service:other'", "container:other"),
    "ipc_mode": ("ipc: shareable", "shareable"),
}


def imported(text, **options):
    options.setdefault("project_name", "opts")
    return from_compose(textwrap.dedent(text), **options)


def app_of(result):
    return next(r for r in result["resources"] if r["name"] == "app")


def test_every_converter_that_reads_has_a_sample():
    readers = set(name for name, c in CONVERTERS.items() if c.load)
    assert sorted(readers - set(SAMPLES)) == []


@pytest.mark.parametrize("option", sorted(SAMPLES))
def test_a_key_imports_as_its_field_and_exports_back(option):
    text, value = SAMPLES[option]
    result = imported("services:\n  other: {image: x}\n  app:\n    image: x\n    %s\n" % text)
    assert result["warnings"] == []
    assert app_of(result)[option] == value
    Plan("opts", result["resources"], result["connections"], base_dir="/srv/opts")
    exported = export({"name": "opts", "resources": result["resources"], "connections": result["connections"]},
                      base_dir="/srv/opts")
    again = imported(exported["text"], base_dir="/srv/opts")
    assert app_of(again)[option] == value


@pytest.mark.parametrize("text, fields", [
    ("deploy: {resources: {limits: {memory: 1g, cpus: '0.25', pids: 50}, reservations: {memory: 64m}}}",
     {"mem_limit": "1g", "cpus": 0.25, "pids_limit": 50, "mem_reservation": "64m"}),
    ("mem_limit: 1g\n    deploy: {resources: {limits: {memory: 1g}}}", {"mem_limit": "1g"}),
    ("deploy: {restart_policy: {condition: on-failure}}", {"restart_policy": "on-failure"}),
    ("deploy: {restart_policy: {condition: any}}", {"restart_policy": "always"}),
])
def test_deploy_resources_and_restart_policy_are_fields(text, fields):
    result = imported("services:\n  app:\n    image: x\n    %s\n" % text)
    assert result["warnings"] == []
    assert dict((k, app_of(result)[k]) for k in fields) == fields


def test_what_deploy_resources_has_no_field_for_is_a_warning():
    result = imported("services:\n  app:\n    image: x\n    deploy: {resources: {reservations: {cpus: '1', devices: "
                      "[{capabilities: [gpu]}]}}, restart_policy: {condition: any, delay: 5s}}\n")
    assert sorted(result["warnings"]) == [
        "service app: deploy.resources.reservations.cpus: no field for it; left out",
        "service app: deploy.resources.reservations.devices: no field for it; left out",
        "service app: deploy.restart_policy.delay: no field for it; left out"]


def test_a_memory_limit_given_twice_differently_is_refused():
    with pytest.raises(ComposeError) as error:
        imported("services:\n  app:\n    image: x\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}\n")
    assert "service app: deploy.resources.limits.memory: 2g differs from mem_limit 1g, which Compose refuses" in str(error.value)


def test_a_security_option_that_takes_the_confinement_away_is_a_grant():
    text = "services:\n  app: {image: x, security_opt: ['seccomp=unconfined', 'no-new-privileges:true']}\n"
    with pytest.raises(ComposeError) as error:
        imported(text)
    assert "service app: security_opt: security_opt seccomp=unconfined takes the container's confinement away; " \
           "refused: add privileged to clockwork_compose_allow" in str(error.value)
    kept = imported(text, allow=["privileged"])
    assert app_of(kept)["security_opt"] == ["seccomp=unconfined", "no-new-privileges:true"]


def test_network_mode_host_stays_refused_and_service_is_a_container():
    with pytest.raises(ComposeError) as error:
        imported("services:\n  app: {image: x, network_mode: host}\n", allow=["host_namespaces"])
    assert "network_mode: host is allowed, but the stack puts every container on its own networks" in str(error.value)
    result = imported("services:\n  other: {image: x}\n  app: {image: x, network_mode: 'service:other'}\n")
    assert app_of(result)["network_mode"] == "container:other"


def test_anonymous_volumes_tmpfs_mounts_and_mount_options_come_back_from_the_export(tmp_path):
    result = imported("""
        services:
          app:
            image: x
            volumes:
              - /code/node_modules
              - {type: tmpfs, target: /cache, tmpfs: {size: 1048576, mode: 1777}}
              - {type: volume, source: data, target: /data, volume: {nocopy: true}}
              - {type: bind, source: ./shared, target: /shared, bind: {propagation: rshared}}
        volumes: {data: {}}
    """, base_dir=str(tmp_path))
    mounts = app_of(result)["mounts"]
    assert mounts == [{"type": "volume", "target": "/code/node_modules"},
                      {"type": "tmpfs", "target": "/cache", "tmpfs_size": 1048576, "tmpfs_mode": 1777},
                      {"type": "volume", "source": "opts_data", "target": "/data", "nocopy": True},
                      {"type": "bind", "source": str(tmp_path / "shared"), "target": "/shared", "propagation": "rshared"}]
    assert result["warnings"] == []
    exported = export({"name": "opts", "resources": result["resources"], "connections": result["connections"]},
                      base_dir=str(tmp_path))
    volumes = yaml.safe_load(exported["text"])["services"]["app"]["volumes"]
    assert {"type": "volume", "target": "/code/node_modules"} in volumes
    assert {"type": "tmpfs", "target": "/cache", "tmpfs": {"size": 1048576, "mode": 1777}} in volumes
    assert {"type": "bind", "source": "./shared", "target": "/shared", "bind": {"propagation": "rshared"}} in volumes
    again = app_of(imported(exported["text"], base_dir=str(tmp_path)))["mounts"]
    assert sorted(again, key=lambda m: m["target"]) == sorted(
        [dict(m, source="shared") if m["type"] == "bind" else m for m in mounts], key=lambda m: m["target"]), \
        "a bind of the exported file's directory is relative to it, as the export's other binds"


def test_the_readme_table_has_a_row_for_every_option_with_a_compose_key():
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.options import (
        README_BEGIN, README_END, README_NOTES, readme_table)
    table = readme_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split(" | ")[1].strip("`") for row in rows] == [o.name for o in TABLE if o.compose] + ["build"]
    for option in TABLE:
        if option.grant:
            assert option.name in README_NOTES, "the opt-in of %s is said in its row" % option.name
    assert table.startswith(README_BEGIN) and table.rstrip().endswith(README_END)


def test_the_readme_s_table_is_the_generated_one():
    """README.md's table between the markers is readme_table()'s text (until README has the markers, skipped)."""
    import os
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.options import (
        README_BEGIN, README_END, readme_table)
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    if README_BEGIN not in readme:
        pytest.skip("README.md has no generated table of compose keys yet")
    start = readme.index(README_BEGIN)
    assert readme[start:readme.index(README_END) + len(README_END)] + "\n" == readme_table(), \
        "README's table of compose keys differs from the option table: run scripts/compose_readme_table.py"


def test_a_network_s_address_and_priority_are_fields_and_come_back():
    result = imported("""
        services:
          app:
            image: x
            environment: {API_HOST: api}
            networks:
              back: {aliases: [web], ipv4_address: 10.9.0.5, priority: 10}
          api: {image: x, networks: [back]}
        networks:
          back: {ipam: {config: [{subnet: 10.9.0.0/24}]}}
    """)
    assert result["warnings"] == []
    assert app_of(result)["networks"] == [{"name": "opts_back", "aliases": ["app", "web"], "ipv4_address": "10.9.0.5",
                                           "priority": 10}]
    exported = export({"name": "opts", "resources": result["resources"], "connections": result["connections"]},
                      base_dir="/srv/opts")
    assert yaml.safe_load(exported["text"])["services"]["app"]["networks"]["opts_back"] == {
        "aliases": ["app", "web"], "ipv4_address": "10.9.0.5", "priority": 10}
    assert app_of(imported(exported["text"], base_dir="/srv/opts"))["networks"] == app_of(result)["networks"]


NAMED_NETWORKS = """
    services:
      nc: {image: x, networks: [redisnet, dbnet], environment: {REDIS_HOST: redis}}
      redis: {image: redis, networks: [redisnet]}
      db: {image: mariadb, networks: {dbnet: {aliases: [database]}}}
      both: {image: x, networks: [default, dbnet]}
    networks:
      dbnet: {internal: true}
      redisnet:
"""


def test_a_named_network_of_the_file_is_a_network_resource():
    result = imported(NAMED_NETWORKS)
    networks = dict((r["name"], r) for r in result["resources"] if r.get("type") == "network")
    assert networks == {"opts_redisnet": {"name": "opts_redisnet", "type": "network", "network_name": "opts_redisnet",
                                          "driver": "bridge"},
                        "opts_dbnet": {"name": "opts_dbnet", "type": "network", "network_name": "opts_dbnet",
                                       "driver": "bridge", "internal": True}}
    resources = dict((r["name"], r) for r in result["resources"])
    assert resources["nc"]["networks"] == [{"name": "opts_redisnet", "aliases": ["nc"]},
                                           {"name": "opts_dbnet", "aliases": ["nc"]}], "its name on each, as in Compose"
    assert resources["nc"]["default_network"] is False and resources["db"]["default_network"] is False
    assert resources["db"]["networks"] == [{"name": "opts_dbnet", "aliases": ["db", "database"]}]
    assert "default_network" not in resources["both"], "on the default network too, as it says"
    assert not [w for w in result["warnings"] if "networks" in w], result["warnings"]
    plan = Plan("opts", result["resources"], result["connections"])
    assert sorted(n["name"] for n in plan.networks if n.get("resource")) == ["opts_dbnet", "opts_redisnet"]


def test_a_network_resource_comes_back_from_its_export_once(tmp_path):
    result = imported(NAMED_NETWORKS)
    exported = export({"name": "opts", "resources": result["resources"], "connections": result["connections"]},
                      base_dir=str(tmp_path))
    document = yaml.safe_load(exported["text"])
    assert document["networks"]["opts_dbnet"] == {"name": "opts_dbnet", "driver": "bridge", "internal": True}
    again = imported(exported["text"])
    networks = sorted((r["name"], r["network_name"], r.get("internal")) for r in again["resources"]
                      if r.get("type") == "network")
    assert networks == [("opts_dbnet", "opts_dbnet", True), ("opts_redisnet", "opts_redisnet", None)]
    Plan("opts", again["resources"], again["connections"])


def test_a_secret_build_argument_is_a_secret_of_the_vars_file_and_of_the_export(tmp_path):
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.declaration import vars_file
    text = "services:\n  app: {build: {context: ., args: {NPM_TOKEN: npm-s3cret, MODE: prod}}}\n"
    written = vars_file(text, stack="opts", base_dir=str(tmp_path), secrets_file="secrets.yml")
    assert "npm-s3cret" not in written["text"] and "npm-s3cret" in written["secrets"]
    assert "NPM_TOKEN: '{{ opts_app_build_npm_token }}'" in written["text"], written["text"]
    result = imported(text, base_dir=str(tmp_path))
    exported = export({"name": "opts", "resources": result["resources"], "connections": result["connections"]},
                      base_dir=str(tmp_path))
    assert "npm-s3cret" not in exported["text"] and "npm-s3cret" in exported["files"][".env"]["content"]
    assert yaml.safe_load(exported["text"])["services"]["app"]["build"]["args"] == {
        "NPM_TOKEN": "${APP_BUILD_NPM_TOKEN:?set it in .env}", "MODE": "prod"}
