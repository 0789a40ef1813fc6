"""The mysql engine (MySQL and MariaDB) of database_connection, against a real MariaDB
container of the local image: check -> apply -> idempotent -> check, schema and migrations
once, drift refused, a statement that fails half-way through a file, a password rotation
that keeps the data, and no password in `-vvv --diff`."""
import os
import signal
import subprocess
import time
from urllib.parse import quote

import pytest
import yaml

from helpers import LOCAL_IMAGES, NGINX_IMAGE, ROOT, VENV_BIN, as_text, docker, engine_state, env_of, playbook
from test_concurrency import at_once
from test_rotation import stack  # noqa: F401  (the stack fixture that also removes carried anonymous volumes)
from test_stack_showcase import stack_task

MARIADB_IMAGE = LOCAL_IMAGES["mariadb_image"]
ROOT_PASSWORD = "r00t pw@mysql/1"  # pragma: allowlist secret  (space, @ and /: URL-encoded in the URL)
NEW_PASSWORD = "n3w r0t@ted"  # pragma: allowlist secret


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "schema.sql").write_text(
        "-- the users; a comment with a semicolon\n"
        "CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n"
        "INSERT INTO users (name) VALUES ('ada; lovelace');\n")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "2_orders.sql").write_text("CREATE TABLE orders (id INT);\n")
    (tmp_path / "migrations" / "10_email.sql").write_text("ALTER TABLE users ADD COLUMN email VARCHAR(80);\n")
    return tmp_path


def declaration(stack, password=ROOT_PASSWORD, **connection):
    db, app = stack + "-db", stack + "-app"
    resources = [
        {"name": db, "image": MARIADB_IMAGE, "env": {"MARIADB_ROOT_PASSWORD": password},
         "ports": ["3306"],
         "healthcheck": {"test": ["CMD", "healthcheck.sh"], "interval": "1s", "start_period": "60s"}},
        {"name": app, "image": NGINX_IMAGE},
    ]
    args = {"type": "database", "from": app, "to": db, "engine": "mariadb", "password": password,
            "database_name": "shop", "schema_file": "schema.sql", "migrations_dir": "migrations", "timeout": 60}
    args.update(connection)
    return resources, [args]


def deploy(stack, workdir, check=False, diff=False, verbose=False, **kwargs):
    resources, connections = declaration(stack, **kwargs)
    return playbook([stack_task(stack, resources, connections, verify=not check)], check=check, diff=diff,
                    verbose=verbose, workdir=str(workdir))


def mysql(stack, query, password=ROOT_PASSWORD):
    """A query inside the server's container, over TCP as root, with the password in MYSQL_PWD."""
    return docker("exec", "-e", "MYSQL_PWD=" + password, stack + "-db", "mariadb", "--protocol=TCP", "-h", "127.0.0.1",
                  "-u", "root", "-N", "-B", "-D", "shop", "-e", query)


def own_state(stack):
    """engine_state() narrowed to the stack's objects (by name or label): others use the engine at the same time."""
    state = dict((kind, [line for line in lines if stack in line]) for kind, lines in engine_state().items())
    state["labelled"] = sorted(docker("volume", "ls", "-q", "--filter", "label=io.clockwork.stack=" + stack).split())
    return state


def assert_no_password(run, *passwords):
    for password in passwords:
        for form in (password, quote(password, safe="")):
            assert form not in run.output, "a password (%r) was printed:\n%s" % (form, run.output)


def test_check_apply_idempotent_check(stack, workdir):
    before = own_state(stack)
    check = deploy(stack, workdir, check=True, diff=True)
    assert check.rc == 0, check.output
    assert check.result("stack")["changed"] is True, check.details
    assert own_state(stack) == before, "check mode changed the engine"

    applied = deploy(stack, workdir, diff=True, verbose=True)
    assert applied.rc == 0, applied.output
    assert applied.result("stack")["changed"] is True, applied.details
    assert_no_password(applied, ROOT_PASSWORD)
    assert mysql(stack, "SELECT name FROM users") == "ada; lovelace"
    assert mysql(stack, "SELECT kind, name FROM clockwork_schema_migrations ORDER BY kind, name").splitlines() == [
        "migration\t10_email.sql", "migration\t2_orders.sql", "schema\tschema.sql"]
    assert mysql(stack, "SHOW COLUMNS FROM users LIKE 'email'").startswith("email")
    assert env_of(stack + "-app")["DATABASE_URL"] == "mysql://root:%s@%s-db:3306/shop" % (
        quote(ROOT_PASSWORD, safe=""), stack)
    checks = applied.result("stack")["checks"]
    assert [c["ok"] for c in checks] == [True], as_text(checks)
    assert "schema schema.sql is recorded" in checks[0]["msg"], applied.details

    again = deploy(stack, workdir)
    assert again.rc == 0, again.output
    assert again.result("stack")["changed"] is False, again.details
    assert mysql(stack, "SELECT count(*) FROM users") == "1"
    state = own_state(stack)
    last = deploy(stack, workdir, check=True)
    assert last.rc == 0 and last.result("stack")["changed"] is False, last.output
    assert own_state(stack) == state


def test_drift_refused_and_a_statement_that_fails_half_way(stack, workdir):
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    migrations = workdir / "migrations"
    (migrations / "2_orders.sql").write_text("CREATE TABLE orders (id INT, total INT);\n")
    drift = deploy(stack, workdir)
    assert drift.rc != 0, drift.output
    message = drift.result("stack")["msg"]
    assert "migration 2_orders.sql was applied with sha256" in message and "refusing" in message, message
    (migrations / "2_orders.sql").write_text("CREATE TABLE orders (id INT);\n")

    # Two statements: the first takes effect (DDL commits at once), the second fails. (Without a rehearsal
    # on a copy, which would have kept it off the database: test_mysql_migrations_safety.py.)
    (migrations / "20_half.sql").write_text("CREATE TABLE coupons (id INT);\n\nINSERT INTO no_such_table VALUES (1);\n")
    half = deploy(stack, workdir, rehearse="never")
    assert half.rc != 0, half.output
    message = half.result("stack")["msg"]
    assert "migration 20_half.sql failed at statement 2 of 2 (line 3)" in message, message
    assert "no_such_table" in message and "statements 1 to 1 had taken effect" in message, message
    assert mysql(stack, "SHOW TABLES LIKE 'coupons'") == "coupons"
    assert mysql(stack, "SELECT count(*) FROM clockwork_schema_migrations WHERE name = '20_half.sql'") == "0"

    # The next run does not run the first statement again: it refuses until someone has looked.
    again = deploy(stack, workdir)
    assert again.rc != 0, again.output
    message = again.result("stack")["msg"]
    assert "20_half.sql failed on an earlier run at line 3" in message and "clockwork_schema_failures" in message, \
        message
    (migrations / "20_half.sql").write_text("CREATE TABLE IF NOT EXISTS coupons (id INT);\n")
    mysql(stack, "DELETE FROM clockwork_schema_failures WHERE name = '20_half.sql'")
    fixed = deploy(stack, workdir)
    assert fixed.rc == 0, fixed.output
    assert mysql(stack, "SELECT count(*) FROM clockwork_schema_migrations WHERE name = '20_half.sql'") == "1"


def test_transaction_control_refused_before_any_change(stack, workdir):
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    (workdir / "migrations" / "30_tx.sql").write_text("START TRANSACTION;\nCREATE TABLE t (id INT);\nCOMMIT;\n")
    run = deploy(stack, workdir)
    assert run.rc != 0, run.output
    assert "migration 30_tx.sql line 1: START TRANSACTION begins or ends a transaction" in run.result("stack")["msg"], \
        run.details
    assert mysql(stack, "SHOW TABLES LIKE 't'") == ""


def test_password_rotation_keeps_the_data(stack, workdir):
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    mysql(stack, "INSERT INTO users (name) VALUES ('grace')")
    check = deploy(stack, workdir, check=True, diff=True, verbose=True, password=NEW_PASSWORD)
    assert check.rc == 0, check.output
    assert "rotate the password of user root" in check.output, check.output
    assert_no_password(check, ROOT_PASSWORD, NEW_PASSWORD)
    assert mysql(stack, "SELECT count(*) FROM users") == "2", "check mode changed the password"

    rotated = deploy(stack, workdir, diff=True, verbose=True, password=NEW_PASSWORD)
    assert rotated.rc == 0, rotated.output
    assert_no_password(rotated, ROOT_PASSWORD, NEW_PASSWORD)
    names = mysql(stack, "SELECT name FROM users ORDER BY id", password=NEW_PASSWORD).splitlines()
    assert names == ["ada; lovelace", "grace"]
    refused = subprocess.run(["docker", "exec", "-e", "MYSQL_PWD=" + ROOT_PASSWORD, stack + "-db", "mariadb",
                              "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-e", "SELECT 1"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Access denied" in refused.stderr, "the old password still logs in"
    assert quote(NEW_PASSWORD, safe="") in env_of(stack + "-app")["DATABASE_URL"]
    again = deploy(stack, workdir, password=NEW_PASSWORD)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output


def test_two_deploys_at_once_converge_and_apply_each_file_once(stack, workdir):
    first, second = at_once(lambda: deploy(stack, workdir), lambda: deploy(stack, workdir))
    for run in (first, second):
        assert run.rc == 0, run.output
        assert "Traceback" not in run.output, run.output
    assert sorted(r.result("stack")["changed"] for r in (first, second)) == [False, True], \
        first.details + "\n" + second.details
    assert mysql(stack, "SELECT count(*) FROM clockwork_schema_migrations") == "3"
    assert mysql(stack, "SELECT count(*) FROM users") == "1", "the schema ran twice"
    again = deploy(stack, workdir)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output


def test_a_killed_run_is_repaired_by_the_next(stack, workdir):
    """SIGKILL the playbook once the server exists (it is initialising, or the schema is being
    applied); the next run converges with every file applied once, the one after changes nothing."""
    resources, connections = declaration(stack)
    path = str(workdir / "killed.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                         "tasks": [stack_task(stack, resources, connections)]}], handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.Popen([os.path.join(VENV_BIN, "ansible-playbook"), path], env=env, cwd=str(workdir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not docker("ps", "-q", "--filter", "name=^%s-db$" % stack):
        time.sleep(0.1)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run = deploy(stack, workdir)
    assert run.rc == 0, run.output
    assert mysql(stack, "SELECT count(*) FROM clockwork_schema_migrations") == "3"
    assert mysql(stack, "SELECT count(*) FROM users") == "1"
    again = deploy(stack, workdir)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output
    for name in ("db", "app"):
        assert len(docker("ps", "-aq", "--filter", "name=^%s-%s$" % (stack, name)).split()) == 1


def test_bad_input_is_refused_all_at_once_before_any_change(stack, workdir):
    (workdir / "migrations" / "30_tx.sql").write_text("CREATE TABLE t (id INT);\nCOMMIT;\n")
    resources, connections = declaration(stack)
    resources.append({"name": stack + "-cache", "image": LOCAL_IMAGES["showcase_redis_image"]})
    connections[0]["env"] = {"DB_HOST": "{host}:{port}", "DB_PASS": "{password}", "DB_NAME": "{db_name}"}
    connections += [
        {"type": "database", "from": stack + "-app", "to": stack + "-cache", "engine": "redis",
         "env": {"DB_HOST": "{host}"}},
        {"type": "database", "from": stack + "-cache", "to": stack + "-db", "engine": "oracle"},
    ]
    before = own_state(stack)
    run = playbook([stack_task(stack, resources, connections)], workdir=str(workdir))
    assert run.rc != 0, run.output
    message = run.result("stack")["msg"]
    assert "nothing was changed" in message and "Traceback" not in run.output, run.details
    label = "connection database %s-app -> %s-db" % (stack, stack)
    for expected in ("%s: env: DB_NAME has an unknown placeholder {db_name}" % label,
                     "migration 30_tx.sql line 2: COMMIT begins or ends a transaction",
                     "connection database %s-cache -> %s-db: " % (stack, stack), "oracle"):
        assert expected in message, message
    assert own_state(stack) == before
    # The placeholder fixed, the clash between the two connections' DB_HOST shows.
    connections[0]["env"]["DB_NAME"] = "{database}"
    (workdir / "migrations" / "30_tx.sql").unlink()
    del connections[2]
    run = playbook([stack_task(stack, resources, connections)], workdir=str(workdir))
    assert run.rc != 0, run.output
    assert "env DB_HOST is set differently by %s and by connection database %s-app -> %s-cache" % (
        label, stack, stack) in run.result("stack")["msg"], run.details
    assert own_state(stack) == before
