"""Compose files deployed through the stack role (clockwork_compose_file) on the real engine, with
the local images: check -> apply -> idempotent -> check, --check changes nothing, every inferred
connection's check passes, and the end state is the one `docker compose up` (Compose v2) gives for the
same file (containers compared field by field, every field of compose_compare's full snapshot).
Bad compose files fail through the role with one message naming the file, the service and the
key, before any change. playbooks/compose_import.yml writes a vars file with no password in it.

Service names carry the stack's unique tag: the stack names its containers after them, and the
engine is shared with other tests."""
import os
import socket
import subprocess
import textwrap

import pytest
import yaml

from compose_compare import compose_v2, compose_v2_missing, differences, snapshot
from helpers import (LOCAL_IMAGES, NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, ROOT, VENV_BIN, as_text, docker,
                     engine_state, inspect, playbook, run_playbook)
from test_rotation import stack  # noqa: F401  (the stack fixture that also removes carried anonymous volumes)

MARIADB_IMAGE = LOCAL_IMAGES["mariadb_image"]
DB_PASSWORD = "app-s3cret"  # pragma: allowlist secret
WP_PASSWORD = "wp-s3cret"  # pragma: allowlist secret


def state_of(tag):
    """engine_state() limited to what carries the test's tag: the engine is shared with others."""
    return dict((kind, [line for line in lines if tag in line]) for kind, lines in engine_state().items())


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shop(tag):
    """An application with PostgreSQL through DATABASE_URL and Redis through REDIS_URL, a worker
    sharing a named volume with it, a bind-mounted config directory, a published port, and
    depends_on with conditions; the password comes from interpolation."""
    return textwrap.dedent("""\
        services:
          web-{t}:
            image: {nginx}
            ports: ["{port}:80"]
            environment:
              DATABASE_URL: postgresql://shop:${{DB_PASSWORD:?set DB_PASSWORD}}@db-{t}:5432/shop
              REDIS_URL: redis://cache-{t}:6379/0
              LOG_LEVEL: info
            volumes:
              - uploads:/srv/uploads
              - ./config:/etc/shop:ro
            healthcheck:
              test: ["CMD", "curl", "-fsS", "http://localhost/"]
              interval: 1s
              retries: 30
            depends_on:
              db-{t}: {{condition: service_healthy}}
              cache-{t}: {{condition: service_started}}
          worker-{t}:
            image: {nginx}
            environment: [QUEUE=default]
            volumes: [uploads:/srv/uploads]
            depends_on: [web-{t}]
          db-{t}:
            image: {postgres}
            environment:
              POSTGRES_USER: shop
              POSTGRES_PASSWORD: ${{DB_PASSWORD:?set DB_PASSWORD}}
              POSTGRES_DB: shop
            healthcheck:
              test: ["CMD-SHELL", "pg_isready -U shop -d shop"]
              interval: 1s
              retries: 30
          cache-{t}:
            image: {redis}
            expose: ["6379"]
        volumes:
          uploads:
        """).format(t=tag, nginx=NGINX_IMAGE, postgres=POSTGRES_IMAGE, redis=REDIS_IMAGE, port=free_port())


def blog(tag):
    """WordPress-shaped: MariaDB reached as parts (WORDPRESS_DB_HOST, _USER, _PASSWORD, _NAME), Redis
    as WP_REDIS_HOST, MariaDB's data in a named volume, a proxy reaching the application over HTTP."""
    return textwrap.dedent("""\
        services:
          db-{t}:
            image: {mariadb}
            environment:
              MARIADB_ROOT_PASSWORD: {pw}
              MARIADB_DATABASE: wordpress
            volumes: ["db_data:/var/lib/mysql"]
            expose: ["3306"]
            healthcheck:
              test: [CMD, healthcheck.sh, --connect, --innodb_initialized]
              interval: 1s
              start_period: 60s
          cache-{t}:
            image: {redis}
            expose: ["6379"]
          wordpress-{t}:
            image: {nginx}
            expose: ["80"]
            environment:
              WORDPRESS_DB_HOST: db-{t}:3306
              WORDPRESS_DB_USER: root
              WORDPRESS_DB_PASSWORD: {pw}
              WORDPRESS_DB_NAME: wordpress
              WP_REDIS_HOST: cache-{t}
            depends_on:
              db-{t}:
                condition: service_healthy
          proxy-{t}:
            image: {nginx}
            environment:
              UPSTREAM_URL: http://wordpress-{t}:80
            depends_on: [wordpress-{t}]
        volumes:
          db_data: {{}}
        """).format(t=tag, mariadb=MARIADB_IMAGE, redis=REDIS_IMAGE, nginx=NGINX_IMAGE, pw=WP_PASSWORD)


PROJECTS = {"shop": (shop, {"DB_PASSWORD": DB_PASSWORD}, DB_PASSWORD),
            "blog": (blog, {}, WP_PASSWORD)}


def write_project(workdir, text):
    (workdir / "compose.yaml").write_text(text)
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "shop.json").write_text('{"currency": "EUR"}\n')


def role_task(stack_name, env=None, state="present", **extra):
    values = {"clockwork_stack_name": stack_name, "clockwork_compose_file": "compose.yaml",
              "clockwork_compose_env": env or {}, "clockwork_state": state}
    values.update(extra)
    return {"name": "Deploy the compose file", "ansible.builtin.include_role": {"name": "clockwork.connections.stack"},
            "vars": values}


def deploy(workdir, stack_name, env=None, check=False, diff=False, verbose=False, **extra):
    return playbook([role_task(stack_name, env, **extra)], check=check, diff=diff, verbose=verbose,
                    workdir=str(workdir))


def converged(run, stack_name):
    return run.result("Converge stack %s" % stack_name)


def compose(project, workdir, env, *args, check=True):
    """Compose v2 on the file, with `env` as its environment (what the role's clockwork_compose_env gives)."""
    proc = compose_v2(["-p", project, "-f", str(workdir / "compose.yaml")] + list(args), cwd=str(workdir), env=env)
    assert proc.returncode == 0 or not check, proc.stdout + proc.stderr
    return proc


# The engine's defaults for what a healthcheck leaves out: the stack writes them, compose leaves
# them unset; the container runs its check the same either way.
HEALTHCHECK_DEFAULTS = {"Interval": 30 * 10 ** 9, "Timeout": 30 * 10 ** 9, "Retries": 3, "StartPeriod": 0}


def containers_of(label):
    """compose_compare's full snapshot of the containers with `label` (key=value: the stack or project)."""
    found = [inspect("container", i) for i in docker("ps", "-aq", "--filter", "label=" + label).split()]
    shape = snapshot(found, label.split("=", 1)[1], full=True)
    for container in shape.values():
        if container["healthcheck"]:
            container["healthcheck"] = dict(HEALTHCHECK_DEFAULTS, **container["healthcheck"])
    return shape


@pytest.mark.skipif(compose_v2_missing() is not None, reason=str(compose_v2_missing()))
@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_an_imported_compose_file_deploys_like_compose(stack, tmp_path, project):  # noqa: F811
    make, env, password = PROJECTS[project]
    tag = stack.split("-")[-1]
    write_project(tmp_path, make(tag))
    before = state_of(tag)
    dry = deploy(tmp_path, stack, env, check=True, diff=True)
    assert dry.rc == 0, dry.output
    assert converged(dry, stack)["changed"] is True, dry.details
    assert state_of(tag) == before, "--check changed the engine"

    applied = deploy(tmp_path, stack, env, diff=True, verbose=True)
    assert applied.rc == 0, applied.output
    assert password not in applied.output, "a password shows in the output:\n" + applied.output
    result = converged(applied, stack)
    checks = result["checks"]
    assert checks and all(c["ok"] for c in checks), as_text(checks)
    imported = yaml.safe_load(subprocess.run(
        [os.path.join(VENV_BIN, "python"), "-c", IMPORT, str(tmp_path), stack, yaml.safe_dump(env)],
        capture_output=True, text=True, check=True).stdout)
    # Every inferred connection is checked, and passes (a dependency's check is `to` running).
    checked = set(c["connection"] for c in checks)
    for connection in imported["connections"]:
        assert any(connection["from"] in name and connection["to"] in name for name in checked), \
            "%s is not among the checks:\n%s" % (as_text(connection), as_text(sorted(checked)))

    again = deploy(tmp_path, stack, env)
    assert again.rc == 0 and converged(again, stack)["changed"] is False, again.output
    state = state_of(tag)
    dry_again = deploy(tmp_path, stack, env, check=True, diff=True)
    assert dry_again.rc == 0 and converged(dry_again, stack)["changed"] is False, dry_again.output
    assert state_of(tag) == state

    ours = containers_of("io.clockwork.stack=%s" % stack)
    removed = deploy(tmp_path, stack, env, state="absent", clockwork_purge=True)
    assert removed.rc == 0, removed.output

    # The same file brought up by Compose v2, under another project name; --wait: running, healthy where checked.
    compose_project = stack.replace("-", "") + "c"
    try:
        compose(compose_project, tmp_path, env, "up", "-d", "--wait")
        theirs = containers_of("com.docker.compose.project=%s" % compose_project)
    finally:
        # What they run is read: no need to wait Docker's 10 s for a database to stop on SIGTERM.
        compose(compose_project, tmp_path, env, "down", "-v", "--timeout", "1", check=False)
    assert len(theirs) == len(ours)
    found = differences(ours, theirs)
    assert not found, "the imported file and Compose deployed different containers:\n" + "\n".join(found)


# The importer run alone, for the list of what it inferred (pure controller code, no engine).
IMPORT = """
import sys, yaml
sys.path.insert(0, %r)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import from_compose
base = sys.argv[1]
print(yaml.safe_dump(from_compose(open(base + "/compose.yaml").read(), project_name=sys.argv[2],
                                  env=yaml.safe_load(sys.argv[3]), base_dir=base)))
""" % os.path.join(ROOT, "collections")


BAD = {
    "invalid YAML": ("services:\n  web-{t}:\n    image: [unclosed\n", ["compose.yaml", "invalid YAML", "line"]),
    "schema violation": ("services:\n  web-{t}:\n    image: {nginx}\n    ports: {{published: 80}}\n",
                         ["compose.yaml", "service web-{t}", "ports"]),
    "unknown service in depends_on": ("services:\n  web-{t}:\n    image: {nginx}\n    depends_on: [nowhere-{t}]\n",
                                      ["compose.yaml", "service web-{t}", "depends_on", "nowhere-{t}"]),
    "cycle": ("services:\n  a-{t}:\n    image: {nginx}\n    depends_on: [b-{t}]\n"
              "  b-{t}:\n    image: {nginx}\n    depends_on: [a-{t}]\n",
              ["compose.yaml", "depends_on", "a-{t}", "b-{t}", "cycle"]),
    "undefined required variable": ("services:\n  web-{t}:\n    image: {nginx}\n    environment:\n"
                                    "      TOKEN: ${{API_TOKEN:?give the API token}}\n",
                                    ["compose.yaml", "service web-{t}", "environment.TOKEN", "API_TOKEN",
                                     "give the API token"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_compose_file_fails_before_any_change(stack, tmp_path, case):  # noqa: F811
    text, expected = BAD[case]
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text(text.format(t=tag, nginx=NGINX_IMAGE))
    before = state_of(tag)
    for check in (True, False):
        failed = deploy(tmp_path, stack, check=check)
        assert failed.rc != 0, failed.output
        assert state_of(tag) == before, "a bad compose file changed the engine"
        assert "Traceback" not in failed.output, failed.output
        for word in expected:
            assert word.format(t=tag) in failed.output, "%r is not in:\n%s" % (word.format(t=tag), failed.output)
        assert not any(r["_task"].endswith("Converge stack %s" % stack) and not r.get("skipped")
                       for r in failed.results), "the stack was converged:\n" + failed.details


def test_declared_connections_replace_inferred_ones(stack, tmp_path):  # noqa: F811
    """A declared connection with the same from, to and type replaces the inferred one; another
    declared one is added. Both as the stack sees them, in check mode (no change)."""
    tag = stack.split("-")[-1]
    write_project(tmp_path, shop(tag))
    declared = [{"type": "dependency", "from": "worker-%s" % tag, "to": "web-%s" % tag, "condition": "healthy"},
                {"type": "dependency", "from": "worker-%s" % tag, "to": "cache-%s" % tag}]
    before = state_of(tag)
    dry = deploy(tmp_path, stack, {"DB_PASSWORD": DB_PASSWORD}, check=True, clockwork_connections=declared)
    assert dry.rc == 0, dry.output
    assert state_of(tag) == before
    order = converged(dry, stack)["order"]
    assert order.index("cache-%s" % tag) < order.index("worker-%s" % tag), dry.details
    entries = [e["name"] for e in converged(dry, stack)["entries"] if e["kind"] == "connection"]
    assert entries.count("dependency worker-{0} -> web-{0}".format(tag)) <= 1, as_text(entries)


class UnsafeLoader(yaml.SafeLoader):
    """YAML as Ansible reads the written files: `!unsafe` text is text."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def test_the_import_playbook_writes_a_vars_file_without_passwords(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    write_project(tmp_path, shop(tag))
    out = tmp_path / "stack.yml"
    imported = run_playbook(os.path.join(ROOT, "playbooks/compose_import.yml"), extra_vars={
        "compose_file": str(tmp_path / "compose.yaml"), "out": str(out), "stack": stack,
        "compose_env": {"DB_PASSWORD": DB_PASSWORD}})
    assert imported.rc == 0, imported.output
    assert DB_PASSWORD not in imported.output, imported.output
    text = out.read_text()
    assert DB_PASSWORD not in text
    assert text.startswith("# The stack %s, imported from" % stack)
    secrets = tmp_path / "stack.secrets.yml"
    assert oct(os.stat(str(secrets)).st_mode & 0o777) == "0o600"
    values = yaml.load(secrets.read_text(), Loader=UnsafeLoader)
    assert DB_PASSWORD in values.values()
    declaration = yaml.load(text, Loader=UnsafeLoader)
    assert declaration["clockwork_stack_name"] == stack
    database = [c for c in declaration["clockwork_connections"] if c["type"] == "database" and c["to"] == "db-" + tag]
    assert database and database[0]["password"].startswith("{{ ") and database[0]["password"].endswith(" }}")
    # The written files deploy as they are (check mode: nothing changes, the plan is built).
    before = state_of(tag)
    dry = playbook([{"name": "Deploy the written declaration",
                     "ansible.builtin.include_role": {"name": "clockwork.connections.stack"}}], check=True,
                   workdir=str(tmp_path), play_extra={"vars_files": [str(out), str(secrets)]})
    assert dry.rc == 0, dry.output
    assert DB_PASSWORD not in dry.output, dry.output
    assert converged(dry, stack)["changed"] is True, dry.details
    assert state_of(tag) == before
    assert inspect("container", "web-" + tag) is None
