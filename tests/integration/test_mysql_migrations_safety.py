"""A MySQL migration never runs twice, never reaches another database, never waits unbounded,
and never half-applies unnoticed: on a real MariaDB container of the local image, a run killed
in the middle of a file, rows of an earlier version's tracking tables, statements naming other
databases, and lock waits."""
import contextlib
import json
import os
import signal
import subprocess
import threading
import time

import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, ROOT, VENV_BIN, docker, playbook
from test_mysql import MARIADB_IMAGE, ROOT_PASSWORD, assert_no_password, declaration, deploy, mysql, own_state, workdir  # noqa: F401  (fixture)
from test_rotation import stack  # noqa: F401  (the stack fixture that also removes carried anonymous volumes)
from test_stack_showcase import stack_task
from test_swarm import swarm, swarm_stack, task_container  # noqa: F401  (fixtures)

# Long enough to be seen in the real database and killed there (polled every 0.2 s); the copy runs it
# whole first, and the next run waits for the dead session's sleep to end: each second counts twice.
SLOW_SLEEP = "SELECT SLEEP(10)"
SLOW = ("INSERT INTO users (name) VALUES ('before the sleep');\n"
        "%s;\n"
        "INSERT INTO users (name) VALUES ('after the sleep');\n" % SLOW_SLEEP)


def start_playbook(stack, workdir, **connection):
    """ansible-playbook in a session of its own, so that its whole process tree can be killed."""
    resources, connections = declaration(stack, **connection)
    path = str(workdir / "killed.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                         "tasks": [stack_task(stack, resources, connections)]}], handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return subprocess.Popen([os.path.join(VENV_BIN, "ansible-playbook"), path], env=env, cwd=str(workdir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def entry_actions(run, stack):
    """The actions of the stack's database connection."""
    label = "database %s-app -> %s-db" % (stack, stack)
    return [e["actions"] for e in run.result("stack")["entries"] if e["name"] == label][0]


def descendants(pid):
    """The process ids under `pid`, from /proc (Ansible's workers start sessions of their own)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    parent = int(handle.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc):
    """SIGKILL ansible-playbook and every process under it, as a crash or an OOM kill would."""
    for pid in [proc.pid] + descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def wait_for(condition, seconds=90, what="the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("waited %ss for %s" % (seconds, what))


def sleeping(stack, query=SLOW_SLEEP, db=None):
    """True while a session of the server runs `query` (the file's SELECT SLEEP), in `db` if given."""
    proc = subprocess.run(["docker", "exec", "-e", "MYSQL_PWD=" + ROOT_PASSWORD, stack + "-db", "mariadb",
                           "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e",
                           "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '%%%s%%' AND id <> "
                           "connection_id()%s" % (query, " AND db = '%s'" % db if db else "")],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0 and proc.stdout.strip() not in ("", "0")


def role_task(stack, **variables):
    """The stack role over the test's declaration (the way clockwork_restore is given)."""
    resources, connections = declaration(stack)
    values = {"clockwork_stack_name": stack, "clockwork_resources": resources, "clockwork_connections": connections,
              "clockwork_diagram_path": ""}
    values.update(variables)
    return {"name": "the stack role", "ansible.builtin.include_role": {"name": "clockwork.connections.stack"},
            "vars": values}


def test_a_run_killed_in_the_middle_of_a_file_is_refused_then_restored(stack, workdir):
    """SIGKILL while the real database runs the file's second statement: the next run refuses it naming
    the row 'started' and the snapshot taken before it, runs nothing of it; clockwork_restore puts the
    database back (schema and rows, as mysqldump shows them) and the next run applies the fixed file."""
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    mysql(stack, "INSERT INTO users (name) VALUES ('grace')")
    before = dump(stack)
    (workdir / "migrations" / "30_slow.sql").write_text(SLOW)
    proc = start_playbook(stack, workdir)
    try:
        # The copy runs it first (a SLEEP in a scratch database); the real database's is the one to kill.
        wait_for(lambda: sleeping(stack, db="shop"), what="the file's %s to run in shop" % SLOW_SLEEP)
        row = mysql(stack, "SELECT state, statements, statements_applied, snapshot FROM clockwork_schema_failures "
                           "WHERE name = '30_slow.sql'").split("\t")
        assert row[:3] == ["started", "3", "0"], "the row 'started' is committed before the first statement"
        snapshot = row[3]
    finally:
        kill_tree(proc)
    assert mysql(stack, "SELECT name FROM users ORDER BY id").splitlines() == [
        "ada; lovelace", "grace", "before the sleep"]
    assert [e["snapshot"] for e in snapshots(stack)] == [snapshot]

    # The next run (it waits for the server to release the dead session's lock) refuses the file, naming
    # the row and the snapshot, and runs nothing of it; check mode says the same and changes nothing.
    refused = deploy(stack, workdir)
    state = own_state(stack)
    check = deploy(stack, workdir, check=True)
    assert check.rc != 0, check.output
    assert own_state(stack) == state
    for run in (refused, check):
        message = run.result("stack").get("msg", run.output)
        assert "migration 30_slow.sql was started at " in message and "and never finished" in message, message
        assert "row state 'started' in clockwork_schema_failures, kind migration, name 30_slow.sql" in message, message
        assert "Any of its 3 statements may have taken effect" in message, message
        assert "DELETE FROM clockwork_schema_failures WHERE kind = 'migration' AND name = '30_slow.sql'" in message, \
            message
        assert "clockwork_restore: {database: shop, snapshot: %s}" % snapshot in message, message
        assert "Traceback" not in run.output, run.output
    assert mysql(stack, "SELECT count(*) FROM users") == "3", "a statement of the refused file ran again"

    # clockwork_restore: check mode shows it and changes nothing; then the database is as before the file.
    restore = {"database": "shop", "snapshot": snapshot}
    shown = playbook([role_task(stack, clockwork_restore=restore)], check=True, workdir=str(workdir))
    assert shown.rc == 0, shown.output
    assert "restore snapshot %s of shop" % snapshot in shown.output, shown.output
    assert own_state(stack) == state and mysql(stack, "SELECT count(*) FROM users") == "3"
    restored = playbook([role_task(stack, clockwork_restore=restore)], workdir=str(workdir))
    assert restored.rc == 0, restored.output
    assert "restore snapshot %s of shop, taken " % snapshot in restored.output, restored.output
    assert "Traceback" not in restored.output, restored.output
    assert_no_password(restored, ROOT_PASSWORD)
    assert dump(stack) == before, "the restored database differs from the one before the file"
    kept = snapshots(stack)
    assert kept[0]["snapshot"] == snapshot and kept[1]["before"] == ["restore of %s" % snapshot], kept

    # The file fixed, the next run applies it once.
    (workdir / "migrations" / "30_slow.sql").write_text("INSERT INTO users (name) VALUES ('once');\n")
    fixed = deploy(stack, workdir)
    assert fixed.rc == 0, fixed.output
    assert mysql(stack, "SELECT name FROM users ORDER BY id").splitlines() == ["ada; lovelace", "grace", "once"]
    assert mysql(stack, "SELECT count(*) FROM clockwork_schema_failures") == "0"
    again = deploy(stack, workdir)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output
    state = own_state(stack)
    last = deploy(stack, workdir, check=True)
    assert last.rc == 0 and last.result("stack")["changed"] is False and own_state(stack) == state, last.output


def test_an_earlier_versions_failures_table_is_brought_up_to_date_and_its_rows_refuse(stack, workdir):
    """A deployment made before the write-ahead rows: its failures table lacks state, statements and
    snapshot; the run adds them under the lock, and the row it holds still refuses its file."""
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    mysql(stack, "DROP TABLE clockwork_schema_failures")
    mysql(stack, "CREATE TABLE clockwork_schema_failures (kind VARCHAR(16) NOT NULL, name VARCHAR(255) NOT NULL, "
                 "checksum CHAR(64) NOT NULL, statements_applied INT NOT NULL, failed_line INT NOT NULL, message TEXT "
                 "NOT NULL, failed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (kind, name)) "
                 "CHARACTER SET utf8mb4")
    mysql(stack, "INSERT INTO clockwork_schema_failures (kind, name, checksum, statements_applied, failed_line, message)"
                 " VALUES ('migration', '40_old.sql', 'x', 1, 2, '(1146) no such table')")
    (workdir / "migrations" / "40_old.sql").write_text("CREATE TABLE t40 (id INT);\nINSERT INTO t40 VALUES (1);\n")
    for check in (True, False):
        run = deploy(stack, workdir, check=check)
        assert run.rc != 0, run.output
        message = run.result("stack")["msg"]
        assert "migration 40_old.sql failed on an earlier run at line 2 ((1146) no such table) after 1 of its " \
               "statements had taken effect" in message, message
    columns = mysql(stack, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'shop' AND "
                           "table_name = 'clockwork_schema_failures' ORDER BY ordinal_position").splitlines()
    assert columns[-3:] == ["state", "statements", "snapshot"], columns
    assert mysql(stack, "SELECT state FROM clockwork_schema_failures") == "failed"
    assert mysql(stack, "SHOW TABLES LIKE 't40'") == ""
    mysql(stack, "DELETE FROM clockwork_schema_failures")
    fixed = deploy(stack, workdir)
    assert fixed.rc == 0, fixed.output
    assert mysql(stack, "SELECT count(*) FROM t40") == "1"
    again = deploy(stack, workdir)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output


def test_a_file_that_reaches_another_database_is_refused_before_any_change(stack, workdir):
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    migrations = workdir / "migrations"
    (migrations / "50_fine.sql").write_text("CREATE TABLE t50 (id INT);\n")
    (migrations / "60_elsewhere.sql").write_text(
        "CREATE DATABASE IF NOT EXISTS other;\n"
        "CREATE TABLE other.t (id INT);\n"
        "-- a comment that names other.t is no statement\n"
        "INSERT INTO other.t (id) SELECT u.id FROM users u;\n"
        "USE other;\n"
        "CREATE TABLE moved (id INT);\n")
    for check in (True, False):
        state = own_state(stack)
        run = deploy(stack, workdir, check=check)
        assert run.rc != 0, run.output
        message = run.result("stack")["msg"]
        assert "migration 60_elsewhere.sql reaches beyond database shop (line 1: DATABASE other names database " \
               "other; line 2: other.t names database other; line 4: other.t names database other; line 5: USE other " \
               "moves the session to database other" in message, message
        assert "set cross_database: true on the connection" in message and "nothing was changed" in message, message
        assert own_state(stack) == state
    assert mysql(stack, "SHOW TABLES LIKE 't50'") == "", "a file ran before the refusal"
    assert mysql(stack, "SHOW DATABASES LIKE 'other'") == ""

    # Meant to: the file runs, and the tracking rows stay in shop although the session moved.
    run = deploy(stack, workdir, cross_database=True)
    assert run.rc == 0, run.output
    assert mysql(stack, "SHOW TABLES FROM other").splitlines() == ["moved", "t"]
    assert mysql(stack, "SELECT count(*) FROM other.t") == "1"
    assert mysql(stack, "SELECT name FROM clockwork_schema_migrations WHERE kind = 'migration' ORDER BY name"
                 ).splitlines() == ["10_email.sql", "2_orders.sql", "50_fine.sql", "60_elsewhere.sql"]
    again = deploy(stack, workdir, cross_database=True)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output
    mysql(stack, "DROP DATABASE other")


def root_session(stack, sql):
    """A client of its own inside the server's container, running `sql` in the background."""
    return subprocess.Popen(["docker", "exec", "-e", "MYSQL_PWD=" + ROOT_PASSWORD, stack + "-db", "mariadb",
                             "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-D", "shop", "-e", sql],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_statements_and_lock_waits_are_bounded(stack, workdir):
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    migrations = workdir / "migrations"

    # A statement that outlives migration_timeout is stopped on the server; the error names the file and it.
    (migrations / "70_slow.sql").write_text("INSERT INTO users (name) VALUES ('t1');\nSELECT SLEEP(60);\n")
    started = time.monotonic()
    run = deploy(stack, workdir, migration_timeout=3, rehearse="never")
    assert run.rc != 0 and time.monotonic() - started < 40, run.output
    message = run.result("stack")["msg"]
    assert "migration 70_slow.sql failed at statement 2 of 2 (line 2): it did not finish within migration_timeout " \
           "(3s) and it was stopped on the server (KILL)" in message, message
    assert "statements 1 to 1 had taken effect and stay" in message, message
    assert not sleeping(stack, "SELECT SLEEP(60)"), "the statement still runs on the server"
    assert mysql(stack, "SELECT state, statements_applied, failed_line FROM clockwork_schema_failures") == "failed\t1\t2"
    mysql(stack, "DELETE FROM clockwork_schema_failures")

    # On the copy alike: stopped there, and the real database not touched.
    (migrations / "70_slow.sql").write_text("INSERT INTO users (name) VALUES ('t2');\nSELECT SLEEP(60);\n")
    before = dump(stack)
    started = time.monotonic()
    run = deploy(stack, workdir, migration_timeout=3)
    assert run.rc != 0 and time.monotonic() - started < 40, run.output
    message = run.result("stack")["msg"]
    assert "70_slow.sql fails at statement 2 (line 2) on a copy of shop: it did not finish within migration_timeout " \
           "(3s); shop was not touched" in message, message
    assert dump(stack) == before and scratch_databases(stack) == ""
    assert not sleeping(stack, "SELECT SLEEP(60)"), "the statement still runs on the copy"
    (migrations / "70_slow.sql").unlink()

    # Another session holds the table: the snapshot's read, and without a rehearsal the ALTER, wait the
    # connection's timeout for its metadata lock, no more.
    (migrations / "80_alter.sql").write_text("ALTER TABLE users ADD COLUMN z INT;\n")
    holder = root_session(stack, "LOCK TABLES users WRITE; SELECT SLEEP(40);")
    try:
        wait_for(lambda: sleeping(stack, "SELECT SLEEP(40)"), what="the session that holds users")
        started = time.monotonic()
        dumping = deploy(stack, workdir, timeout=4)
        altering = deploy(stack, workdir, timeout=4, rehearse="never")
        took = time.monotonic() - started
    finally:
        for session in mysql(stack, "SELECT id FROM information_schema.processlist WHERE info LIKE "
                                    "'%SELECT SLEEP(40)%' AND id <> connection_id()").split():
            mysql(stack, "KILL %s" % session)
        holder.wait()
    assert dumping.rc != 0 and altering.rc != 0, dumping.output + altering.output
    message = dumping.result("stack")["msg"]
    assert "reading table users for the snapshot (another session holds it longer than the connection's timeout, " \
           "4s; nothing was applied) failed: (1205) Lock wait timeout exceeded" in message, message
    message = altering.result("stack")["msg"]
    assert "migration 80_alter.sql failed at statement 1 of 1 (line 1): (1205) Lock wait timeout exceeded" in message, \
        message
    assert "(waited longer than the connection's timeout, 4s, for a lock another session holds)" in message, message
    assert took < 40, took
    mysql(stack, "DELETE FROM clockwork_schema_failures")
    fixed = deploy(stack, workdir)
    assert fixed.rc == 0, fixed.output
    assert mysql(stack, "SHOW COLUMNS FROM users LIKE 'z'").startswith("z")


def test_a_postgresql_file_is_bounded_by_migration_timeout(stack, tmp_path):
    """PostgreSQL alike: the file's transaction has statement_timeout = migration_timeout."""
    pg, app = stack + "-pg", stack + "-app"
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "1_slow.sql").write_text("CREATE TABLE t1 (id int);\nSELECT pg_sleep(60);\n")
    resources = [{"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": "pw", "POSTGRES_DB": "appdb"},
                  "healthcheck": {"test": "pg_isready -U postgres -d appdb", "interval": "1s", "start_period": "60s"}},
                 {"name": app, "image": NGINX_IMAGE}]
    connections = [{"type": "database", "from": app, "to": pg, "password": "pw", "database_name": "appdb",
                    "migrations_dir": "migrations", "migration_timeout": 2}]
    started = time.monotonic()
    run = playbook([stack_task(stack, resources, connections)], workdir=str(tmp_path))
    assert run.rc != 0 and time.monotonic() - started < 50, run.output
    message = run.result("stack")["msg"]
    assert "migration 1_slow.sql did not finish within migration_timeout (2s)" in message, message
    assert "rolled back, nothing of it was applied" in message, message
    assert docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-tAc",
                  "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
                  ) == "0"
    assert docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-tAc", "SELECT to_regclass('t1')") == ""


def dump(stack):
    """mysqldump of shop as the server has it (schema and rows), to compare before and after."""
    return docker("exec", "-e", "MYSQL_PWD=" + ROOT_PASSWORD, stack + "-db", "mariadb-dump", "--protocol=TCP",
                  "-h", "127.0.0.1", "-u", "root", "--skip-comments", "--routines", "--triggers", "--events", "shop")


def scratch_databases(stack):
    return mysql(stack, "SHOW DATABASES LIKE 'clockwork\\_rehearsal\\_%'")


def snapshots(stack):
    """The snapshot index of the server, read from the stack's volume with a throwaway container."""
    volume = stack + "-clockwork-snapshots"
    if not docker("volume", "ls", "-q", "--filter", "name=^%s$" % volume):
        return None
    out = docker("run", "--rm", "--label", "io.clockwork.stack=" + stack, "-v", volume + ":/snapshots:ro",
                 "--entrypoint", "cat", MARIADB_IMAGE, "/snapshots/index-%s-db.json" % stack, check=False)
    return json.loads(out) if out else []


@contextlib.contextmanager
def polling(stack):
    """A client that counts the users as often as it can meanwhile: the answers it got, errors as text."""
    answers, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            proc = subprocess.run(["docker", "exec", "-e", "MYSQL_PWD=" + ROOT_PASSWORD, stack + "-db", "mariadb",
                                   "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-N", "-B", "-D", "shop", "-e",
                                   "SELECT count(*) FROM users"], capture_output=True, text=True, timeout=60)
            answers.append(proc.stdout.strip() if proc.returncode == 0 else "error: " + proc.stderr.strip())
    poller = threading.Thread(target=poll)
    poller.start()
    try:
        yield answers
    finally:
        stop.set()
        poller.join()


def test_a_file_that_fails_on_the_copy_never_touches_the_database(stack, workdir):
    _run = deploy(stack, workdir)
    assert _run.rc == 0, _run.output
    mysql(stack, "INSERT INTO users (name) VALUES ('grace'), ('linus')")
    before = dump(stack)
    (workdir / "migrations" / "90_bad.sql").write_text(
        "CREATE TABLE t90 (id INT);\n"
        "INSERT INTO users (name) VALUES ('half');\n"
        "\n"
        "INSERT INTO no_such_table VALUES (1);\n")

    # Check mode says it would rehearse, and makes neither a snapshot nor a copy.
    state = own_state(stack)
    check = deploy(stack, workdir, check=True)
    assert check.rc == 0, check.output
    assert entry_actions(check, stack) == ["rehearse 90_bad.sql on a copy of shop", "apply migration 90_bad.sql"], \
        check.details
    assert own_state(stack) == state and snapshots(stack) is None and scratch_databases(stack) == ""

    with polling(stack) as answers:
        run = deploy(stack, workdir)
    assert answers and all(a == "3" for a in answers), "a client saw an error or other rows: %s" % answers
    assert run.rc != 0, run.output
    message = run.result("stack")["msg"]
    assert "90_bad.sql fails at statement 3 (line 4) on a copy of shop: (1146) Table " in message, message
    assert "no_such_table' doesn't exist; shop was not touched" in message, message
    assert "Traceback" not in run.output, run.output
    assert dump(stack) == before, "the real database changed"
    assert scratch_databases(stack) == "", "the scratch database was left behind"
    assert mysql(stack, "SELECT count(*) FROM clockwork_schema_failures") == "0", "a failure on the copy left a row"
    assert not snapshots(stack), "a snapshot was kept of a run that applied nothing"

    # Fixed (a new checksum), it runs on the next run: rehearsed, a snapshot kept, then applied; a scratch
    # database a killed run left behind is dropped on the way.
    mysql(stack, "CREATE DATABASE clockwork_rehearsal_deadbeef00")
    (workdir / "migrations" / "90_bad.sql").write_text(
        "CREATE TABLE t90 (id INT);\nINSERT INTO users (name) VALUES ('whole');\nINSERT INTO t90 VALUES (1);\n")
    with polling(stack) as answers:
        fixed = deploy(stack, workdir)
    assert answers and set(answers) <= {"3", "4"}, "a client saw an error: %s" % answers
    assert fixed.rc == 0, fixed.output
    assert entry_actions(fixed, stack) == ["rehearse 90_bad.sql on a copy of shop", "apply migration 90_bad.sql"], \
        fixed.details
    assert mysql(stack, "SELECT count(*) FROM t90") == "1" and scratch_databases(stack) == ""
    kept = snapshots(stack)
    assert [(e["database"], e["before"]) for e in kept] == [("shop", ["migration 90_bad.sql"])], kept
    labels = json.loads(docker("volume", "inspect", stack + "-clockwork-snapshots"))[0]["Labels"]
    assert labels["io.clockwork.stack"] == stack
    again = deploy(stack, workdir)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output
    state = own_state(stack)
    last = deploy(stack, workdir, check=True)
    assert last.rc == 0 and last.result("stack")["changed"] is False and own_state(stack) == state, last.output


APP_PASSWORD = "wp-app pw"  # pragma: allowlist secret


def app_user_task(stack, root, **connection):
    """The WordPress shape: the connection logs in as MARIADB_USER, which may use its database only."""
    db, app = stack + "-db", stack + "-app"
    env = {"MARIADB_USER": "wp", "MARIADB_PASSWORD": APP_PASSWORD, "MARIADB_DATABASE": "shop"}
    env.update({"MARIADB_ROOT_PASSWORD": root} if root else {"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "yes"})
    resources = [{"name": db, "image": MARIADB_IMAGE, "env": env, "ports": ["3306"],
                  "healthcheck": {"test": ["CMD", "healthcheck.sh"], "interval": "1s", "start_period": "60s"}},
                 {"name": app, "image": NGINX_IMAGE}]
    args = {"type": "database", "engine": "mariadb", "from": app, "to": db, "username": "wp", "password": APP_PASSWORD,
            "database_name": "shop", "schema_file": "schema.sql", "migrations_dir": "migrations", "timeout": 60}
    args.update(connection)
    return stack_task(stack, resources, [args])


def test_without_a_user_that_may_create_a_database_auto_warns_and_always_refuses(stack, workdir):
    """No root password in the server's env, and the application user may not create the scratch
    database: auto applies without a rehearsal and says why; always refuses before any change."""
    wd = str(workdir)
    _run = playbook([app_user_task(stack, None)], workdir=wd)
    assert _run.rc == 0, _run.output
    (workdir / "migrations" / "95_more.sql").write_text("CREATE TABLE t95 (id INT);\n")
    why = "no rehearsal of 95_more.sql on a copy of shop: no user here may create the scratch database: user wp " \
          "may not, and the server's env gives no root password"
    for check in (True, False):
        state = own_state(stack)
        refused = playbook([app_user_task(stack, None, rehearse="always")], workdir=wd, check=check)
        assert refused.rc != 0, refused.output
        message = refused.result("stack")["msg"]
        assert "95_more.sql cannot be rehearsed on a copy of shop (rehearse: always): no user here may create the " \
               "scratch database" in message and "Nothing was applied" in message, message
        assert own_state(stack) == state
    assert mysql(stack, "SHOW TABLES LIKE 't95'", password="") == ""

    check = playbook([app_user_task(stack, None)], workdir=wd, check=True)
    assert check.rc == 0, check.output
    assert entry_actions(check, stack)[0].startswith(why), check.details
    run = playbook([app_user_task(stack, None)], workdir=wd)
    assert run.rc == 0, run.output
    assert entry_actions(run, stack) == [entry_actions(check, stack)[0], "apply migration 95_more.sql"], run.details
    assert mysql(stack, "SHOW TABLES LIKE 't95'", password="") == "t95"
    assert snapshots(stack) is None


def test_root_from_the_servers_env_rehearses_for_an_application_user(stack, workdir):
    """The application user may not create a database; root, with the password the server's env gives, makes
    the copy. A failing file leaves shop as it was, and no scratch database."""
    wd = str(workdir)
    _run = playbook([app_user_task(stack, ROOT_PASSWORD)], workdir=wd)
    assert _run.rc == 0, _run.output
    before = dump(stack)
    (workdir / "migrations" / "96_bad.sql").write_text(
        "CREATE TABLE t96 (id INT);\nINSERT INTO users (name) VALUES ('x');\nALTER TABLE no_such ADD COLUMN y INT;\n")
    run = playbook([app_user_task(stack, ROOT_PASSWORD)], workdir=wd)
    assert run.rc != 0, run.output
    assert "96_bad.sql fails at statement 3 (line 3) on a copy of shop: (1146) " in run.result("stack")["msg"], \
        run.details
    assert_no_password(run, ROOT_PASSWORD, APP_PASSWORD)
    assert dump(stack) == before and scratch_databases(stack) == ""
    (workdir / "migrations" / "96_bad.sql").write_text("CREATE TABLE t96 (id INT);\n")
    fixed = playbook([app_user_task(stack, ROOT_PASSWORD)], workdir=wd)
    assert fixed.rc == 0, fixed.output
    assert entry_actions(fixed, stack) == ["rehearse 96_bad.sql on a copy of shop", "apply migration 96_bad.sql"], \
        fixed.details
    assert [e["before"] for e in snapshots(stack)] == [["migration 96_bad.sql"]]


def test_on_swarm_a_file_that_fails_on_the_copy_never_touches_the_database(swarm_stack, workdir):
    """The same on Swarm: the dump, the copy and the snapshot go through the task's container."""
    stack = swarm_stack
    db, app = stack + "-db", stack + "-app"
    resources, connections = declaration(stack)
    resources[0].update(endpoint_mode="dnsrr", healthcheck={"test": ["CMD", "healthcheck.sh"], "interval": "1s",
                                                            "retries": 60})
    resources[1]["endpoint_mode"] = "dnsrr"

    def run(check=False):
        return playbook([stack_task(stack, resources, connections, engine="swarm")], check=check,
                        workdir=str(workdir))

    def task_sql(*args):
        return docker("exec", "-e", "MYSQL_PWD=" + ROOT_PASSWORD, task_container(db), *args)

    def task_dump():
        return task_sql("mariadb-dump", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "--skip-comments", "shop")

    first = run()
    assert first.rc == 0, first.output
    before = task_dump()
    (workdir / "migrations" / "90_bad.sql").write_text(
        "CREATE TABLE t90 (id INT);\nINSERT INTO users (name) VALUES ('half');\nINSERT INTO no_such_table VALUES (1);\n")
    check = run(check=True)
    assert check.rc == 0, check.output
    label = "database %s -> %s" % (app, db)
    assert [e["actions"] for e in check.result("stack")["entries"] if e["name"] == label] == [
        ["rehearse 90_bad.sql on a copy of shop", "apply migration 90_bad.sql"]], check.details
    failed = run()
    assert failed.rc != 0, failed.output
    assert "90_bad.sql fails at statement 3 (line 3) on a copy of shop: (1146) " in failed.result("stack")["msg"], \
        failed.details
    assert task_dump() == before
    assert task_sql("mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-N", "-e",
                    "SHOW DATABASES LIKE 'clockwork\\_rehearsal\\_%'") == ""
    (workdir / "migrations" / "90_bad.sql").write_text("CREATE TABLE t90 (id INT);\n")
    fixed = run()
    assert fixed.rc == 0, fixed.output
    assert task_sql("mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-N", "-D", "shop", "-e",
                    "SHOW TABLES LIKE 't90'") == "t90"
    assert docker("volume", "ls", "-q", "--filter", "label=io.clockwork.stack=" + stack).split() == [
        stack + "-clockwork-snapshots"]
    again = run()
    assert again.rc == 0 and not again.changed, again.output
