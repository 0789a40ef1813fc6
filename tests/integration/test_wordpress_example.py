"""playbooks/examples/wordpress.yml, the example beyond the showcase, on the real engine with the
local images: MariaDB and Redis reached through connection parts (WORDPRESS_DB_HOST...) with the
passwords delivered as files; check -> apply -> idempotent -> check, no password in `docker
inspect` or in `-vvv --diff`, a password rotation that keeps a row and restarts the client to
read its new file, destroy; then the same playbook on a single-node swarm.

The example's resource names are fixed (db, cache, wordpress): it runs under the showcase lock,
which the other tests with fixed names take too."""
import fcntl
import json
import os
import stat
import subprocess
from urllib.parse import quote, quote_plus

import pytest

import helpers
from helpers import LOCAL_IMAGES, ROOT, as_text, docker, engine_state, inspect, run_playbook
from test_swarm import SHOWCASE_LOCK, _locked, swarm, swarm_objects  # noqa: F401  (the module's swarm fixture)

EXAMPLE = os.path.join(ROOT, "playbooks/examples/wordpress.yml")
STACK = "wordpress"
DB_PASSWORD = "wp-s3cret"  # pragma: allowlist secret  (the example's default)
REDIS_PASSWORD = "r3dis-s3cret"  # pragma: allowlist secret
NEW_PASSWORD = "n3w wp@pass/%d" % os.getpid()  # pragma: allowlist secret
SECRETS = os.path.join(os.path.expanduser("~"), ".clockwork", STACK, "secrets", "wordpress")
CONTAINERS = ("db", "cache", "wordpress")


def forms(*passwords):
    return set(f for p in passwords for f in (p, quote(p, safe=""), quote_plus(p)))


def assert_nothing_shows(text, *passwords):
    for form in forms(*passwords):
        assert form not in text, "a password (%r) shows in:\n%s" % (form, text)


@pytest.fixture
def example(tmp_path):
    """Runs the example (its diagram into tmp_path); destroyed with its volumes afterwards."""
    with _locked(SHOWCASE_LOCK, fcntl.LOCK_EX):
        helpers.STACKS_SEEN.add(STACK)
        assert not docker("ps", "-aq", "--filter", "label=io.clockwork.stack=" + STACK)

        def run(*args, check=False, diff=False, verbose=False, **extra):
            extra_vars = dict(LOCAL_IMAGES, clockwork_diagram_path=str(tmp_path / "wordpress.stack.md"), **extra)
            return run_playbook(EXAMPLE, check=check, diff=diff, verbose=verbose, extra_vars=extra_vars,
                                extra_args=args)
        try:
            yield run
        finally:
            run("-e", "clockwork_state=absent", "-e", "clockwork_purge=true",
                wordpress_engine=extra_engine(run))
            helpers.remove_stack(STACK)


def extra_engine(_run):
    """The engine the test ran on: swarm while the engine is in swarm mode."""
    return "swarm" if docker("info", "--format", "{{.Swarm.ControlAvailable}}") == "true" else "docker"


def report(run):
    return run.result("Converge stack wordpress")


def mariadb(password, query):
    """A query as root inside db: its output, or its error when the login is refused."""
    proc = subprocess.run(["docker", "exec", "-e", "MYSQL_PWD=" + password, "db", "mariadb", "--protocol=TCP",
                           "-h", "127.0.0.1", "-u", "root", "-N", "-B", "-D", "wordpress", "-e", query],
                          capture_output=True, text=True, timeout=60)
    return (proc.stdout if proc.returncode == 0 else proc.stderr).strip()


def test_the_wordpress_example_on_one_engine(example):
    before = engine_state()
    dry = example(check=True, diff=True)
    assert dry.rc == 0, dry.output
    assert report(dry)["changed"] is True, dry.details
    assert engine_state() == before, "check mode changed the engine"
    assert not os.path.exists(SECRETS), "check mode wrote a password file"

    applied = example(diff=True, verbose=True)
    assert applied.rc == 0, applied.output
    assert [c["ok"] for c in report(applied)["checks"]] == [True, True, True], as_text(report(applied)["checks"])
    assert_nothing_shows(applied.output, DB_PASSWORD, REDIS_PASSWORD)
    # The client reads parts, the passwords as files: docker inspect shows neither password.
    for name in CONTAINERS[1:]:
        assert_nothing_shows(json.dumps(inspect("container", name)), DB_PASSWORD)
    assert_nothing_shows(json.dumps(inspect("container", "wordpress")), DB_PASSWORD, REDIS_PASSWORD)
    env = dict(item.split("=", 1) for item in inspect("container", "wordpress")["Config"]["Env"])
    assert env["WORDPRESS_DB_HOST"] == "db:3306" and env["WORDPRESS_DB_USER"] == "root"
    assert env["WORDPRESS_DB_NAME"] == "wordpress" and env["WP_REDIS_HOST"] == "cache" and env["WP_REDIS_PORT"] == "6379"
    assert env["WORDPRESS_DB_PASSWORD_FILE"] == "/run/secrets/WORDPRESS_DB_PASSWORD"
    assert "WORDPRESS_DB_PASSWORD" not in env and "DATABASE_URL" not in env, "env_var_name: '' gives no URL"
    path = os.path.join(SECRETS, "WORDPRESS_DB_PASSWORD")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    assert open(path).read() == DB_PASSWORD
    # The application read them: it is healthy only while its own login and AUTH succeed.
    assert inspect("container", "wordpress")["State"]["Health"]["Status"] == "healthy"
    assert docker("exec", "wordpress", "cat", "/tmp/options") == "1"

    again = example()
    assert again.rc == 0 and not report(again)["changed"], again.output
    state = engine_state()
    dry_again = example(check=True, diff=True)
    assert dry_again.rc == 0 and not report(dry_again)["changed"], dry_again.output
    assert engine_state() == state

    # A new password: rotated in place, the file rewritten (same inode, which the bind mount
    # holds), the client restarted to read it; the data stays, the old password is refused.
    assert mariadb(DB_PASSWORD, "INSERT INTO wp_options (option_name, option_value) VALUES ('kept', 'yes')") == ""
    inode = os.stat(path).st_ino
    dry_rotation = example(check=True, diff=True, verbose=True, wordpress_db_password=NEW_PASSWORD)
    assert dry_rotation.rc == 0, dry_rotation.output
    assert engine_state() == state and open(path).read() == DB_PASSWORD
    assert_nothing_shows(dry_rotation.output, DB_PASSWORD, NEW_PASSWORD)
    rotated = example(diff=True, verbose=True, wordpress_db_password=NEW_PASSWORD)
    assert rotated.rc == 0, rotated.output
    assert_nothing_shows(rotated.output, DB_PASSWORD, NEW_PASSWORD)
    entries = dict(("%s %s" % (e["kind"], e["name"]), e) for e in report(rotated)["entries"])
    assert entries["connection database wordpress -> db"]["actions"] == [
        "rotate the password of user root", "write %s (mode 0400)" % path], rotated.details
    assert entries["container wordpress"]["actions"][0] == "restart to read its new password file", rotated.details
    assert entries["container cache"]["changed"] is False, rotated.details
    assert os.stat(path).st_ino == inode and open(path).read() == NEW_PASSWORD
    assert mariadb(NEW_PASSWORD, "SELECT option_value FROM wp_options WHERE option_name = 'kept'") == "yes"
    assert "Access denied" in mariadb(DB_PASSWORD, "SELECT 1")
    assert inspect("container", "wordpress")["State"]["Health"]["Status"] == "healthy"
    assert all(c["ok"] for c in report(rotated)["checks"]), rotated.details
    settled = example(wordpress_db_password=NEW_PASSWORD)
    assert settled.rc == 0 and not report(settled)["changed"], settled.output

    # Destroy: the containers and the password files go; the named volume stays unless purged.
    destroyed = example("-e", "clockwork_state=absent")
    assert destroyed.rc == 0, destroyed.output
    assert not docker("ps", "-aq", "--filter", "label=io.clockwork.stack=" + STACK)
    assert not os.path.exists(os.path.dirname(SECRETS))
    assert inspect("volume", "db_data") is not None


def test_the_wordpress_example_on_a_single_node_swarm(swarm, example):  # noqa: F811
    deployed = example(wordpress_engine="swarm")
    assert deployed.rc == 0, deployed.output
    assert [c["ok"] for c in report(deployed)["checks"]] == [True, True, True], as_text(report(deployed)["checks"])
    assert sorted(inspect("service", s)["Spec"]["Name"] for s in swarm_objects(STACK)["services"]) == [
        "cache", "db", "wordpress"]
    # MariaDB's own password and the client's are Swarm secrets, read as *_FILE.
    for service in ("db", "wordpress"):
        assert_nothing_shows(json.dumps(inspect("service", service)), DB_PASSWORD)
    spec = inspect("service", "wordpress")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert "WORDPRESS_DB_PASSWORD_FILE=/run/secrets/WORDPRESS_DB_PASSWORD" in spec["Env"]
    assert "MARIADB_ROOT_PASSWORD_FILE=/run/secrets/MARIADB_ROOT_PASSWORD" in \
        inspect("service", "db")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert not os.path.exists(SECRETS), "on Swarm the secrets are Swarm's, not files on the host"

    again = example(wordpress_engine="swarm")
    assert again.rc == 0 and not report(again)["changed"], again.output

    rotated = example(wordpress_engine="swarm", wordpress_db_password=NEW_PASSWORD, verbose=True, diff=True)
    assert rotated.rc == 0, rotated.output
    assert_nothing_shows(rotated.output, DB_PASSWORD, NEW_PASSWORD)
    entries = dict(("%s %s" % (e["kind"], e["name"]), e) for e in report(rotated)["entries"])
    assert entries["connection database wordpress -> db"]["actions"] == ["rotate the password of user root"], \
        "the schema is not applied again: the data is in the named volume:\n" + rotated.details
    assert all(c["ok"] for c in report(rotated)["checks"]), rotated.details
    settled = example(wordpress_engine="swarm", wordpress_db_password=NEW_PASSWORD)
    assert settled.rc == 0 and not report(settled)["changed"], settled.output
