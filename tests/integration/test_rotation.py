"""A changed password is a rotation, not a new database: set on the running server with the
previous one, the data kept, the clients given their new URL. On the real engine: the showcase
itself, a Redis stack, the single database_connection module, and a server whose previous
password nobody knows any more; MariaDB's application user (MARIADB_USER), with and without root's
password in the server's env.

The showcase uses fixed container names: run this file under
`flock /tmp/clockwork-showcase.lock`, as every other run that deploys the showcase."""
import json
import subprocess
from urllib.parse import quote

import pytest

from helpers import LOCAL_IMAGES, NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, docker, env_of, inspect, playbook, remove_stack
from test_database import api_task, db_task, postgres_task, show, shown
from test_safe_recreate import remove_with_volumes
from test_stack_showcase import recap_changed, showcase, stack_task, summary
from test_swarm import remove_swarm_stack, swarm, swarm_stack, task_container  # noqa: F401  (fixtures)

OLD = "secret123"  # pragma: allowlist secret  (the showcase's default)
NEW = "n3w r0t@tion/pw"  # pragma: allowlist secret  (a space, @ and /: URL-encoded in DATABASE_URL)


@pytest.fixture
def stack(stack):
    """The shared fixture, plus the anonymous volumes that recreates carried (bound by name)."""
    yield stack
    remove_with_volumes(stack)
    remove_stack(stack)


@pytest.fixture
def clean_showcase():
    def clean():
        remove_with_volumes("showcase")
        remove_stack("showcase")
    clean()
    yield
    clean()


def stack_state(stack):
    """What the engine holds of one stack (the engine is shared): its containers with their
    state and volumes, its networks and volumes."""
    label = "label=io.clockwork.stack=%s" % stack
    containers = []
    for line in sorted(docker("ps", "-a", "--filter", label, "--format", "{{.ID}} {{.Names}} {{.State}}").splitlines()):
        mounts = sorted(m.get("Name") or m["Source"] for m in inspect("container", line.split()[0])["Mounts"])
        containers.append((line, mounts))
    return {"containers": containers,
            "networks": sorted(docker("network", "ls", "-q", "--filter", label).split()),
            "volumes": sorted(docker("volume", "ls", "-q", "--filter", label).split())}


def secret_forms(*passwords):
    return [form for password in passwords for form in (password, quote(password, safe=""))]


def assert_no_secret(run, *passwords):
    for form in secret_forms(*passwords):
        assert form not in run.output, "a password (%r) was printed:\n%s" % (form, run.output)


def psql_url(container, url, query):
    """psql inside `container` with a connection URL: a real TCP login with its password."""
    return docker("exec", container, "psql", "-X", "-w", "-At", url, "-c", query)


def login_fails(container, url):
    """True when the server refuses the URL's password (and not for any other reason)."""
    proc = subprocess.run(["docker", "exec", container, "psql", "-X", "-w", "-At", url, "-c", "SELECT 1"],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode != 0 and "password authentication failed" in proc.stderr


def with_password(password):
    return ["-e", json.dumps({"showcase_db_password": password})]


def test_showcase_password_change_is_rotated_in_place(clean_showcase):  # noqa: F811
    deploy = showcase()
    assert deploy.rc == 0, deploy.output
    docker("exec", "postgres", "psql", "-U", "postgres", "-d", "appdb", "-c",
           "INSERT INTO users (email) VALUES ('ada@example.org')")
    old_url = env_of("api")["DATABASE_URL"]
    postgres_volumes = sorted(m["Name"] for m in inspect("container", "postgres")["Mounts"])

    # Check mode says what will happen, fails nothing, changes nothing.
    state = stack_state("showcase")
    ids = dict((name, inspect("container", name)["Id"]) for name in ("postgres", "api"))
    check = showcase(*with_password(NEW), check=True, diff=True)
    assert check.rc == 0, check.output
    assert "password authentication failed" not in check.output, check.output
    assert "connection database api -> postgres: would: rotate the password of role postgres" in summary(check), \
        check.details
    assert any(line.startswith("container postgres: would be recreated") for line in summary(check)), \
        "\n".join(summary(check))
    assert any(line.startswith("container api: would be recreated") for line in summary(check)), \
        "\n".join(summary(check))
    assert stack_state("showcase") == state, "--check changed Docker's state"
    assert dict((name, inspect("container", name)["Id"]) for name in ("postgres", "api")) == ids
    assert psql_url("postgres", old_url, "SELECT 1") == "1", "check mode changed the password"
    assert_no_secret(check, OLD, NEW)

    rotate = showcase(*with_password(NEW), diff=True)
    assert rotate.rc == 0, rotate.output
    assert "connection database api -> postgres: rotate the password of role postgres" in summary(rotate), \
        rotate.details
    assert_no_secret(rotate, OLD, NEW)
    # The data is the same: the row is there, in the same volume, and the schema was not applied again.
    assert sorted(m["Name"] for m in inspect("container", "postgres")["Mounts"]) == postgres_volumes
    assert docker("exec", "postgres", "psql", "-U", "postgres", "-d", "appdb", "-tAc",
                  "SELECT email FROM users") == "ada@example.org"
    assert not any("apply schema" in line for line in summary(rotate)), "\n".join(summary(rotate))
    # The api has its new URL, and it logs in; the previous password is refused.
    new_url = env_of("api")["DATABASE_URL"]
    assert new_url == "postgresql://postgres:%s@postgres:5432/appdb" % quote(NEW, safe="")
    assert psql_url("postgres", new_url, "SELECT count(*) FROM users") == "1"
    assert login_fails("postgres", old_url), "the previous password still logs in"
    assert inspect("container", "postgres")["Id"] != ids["postgres"]

    rerun = showcase(*with_password(NEW))
    assert rerun.rc == 0, rerun.output
    assert recap_changed(rerun) == 0, "\n".join(summary(rerun))
    state = stack_state("showcase")
    recheck = showcase(*with_password(NEW), check=True)
    assert recheck.rc == 0 and recap_changed(recheck) == 0, recheck.output
    assert stack_state("showcase") == state

    destroy = showcase("-e", "clockwork_state=absent", "-e", "clockwork_purge=true")
    assert destroy.rc == 0, destroy.output


def redis_stack(stack, password):
    cache, app = stack + "-cache", stack + "-app"
    resources = [{"name": cache, "image": REDIS_IMAGE, "command": ["--requirepass", password]},
                 {"name": app, "image": NGINX_IMAGE}]
    connections = [{"type": "database", "engine": "redis", "from": app, "to": cache, "password": password}]
    return stack_task(stack, resources, connections)


def redis_cli(container, password, *args):
    return docker("exec", "-e", "REDISCLI_AUTH=" + password, container, "redis-cli", *args, check=False)


def entry(run, kind, name):
    return [e for e in run.result("stack")["entries"] if e["kind"] == kind and e["name"] == name][0]


def test_redis_password_change_is_rotated_in_place_and_keeps_data(stack):
    cache, app = stack + "-cache", stack + "-app"
    first, second = "r3dis-first", "r3dis-second"  # pragma: allowlist secret
    deploy = playbook([redis_stack(stack, first)])
    assert deploy.rc == 0, deploy.output
    assert redis_cli(cache, first, "SET", "kept", "yes") == "OK"
    data = [m["Name"] for m in inspect("container", cache)["Mounts"] if m["Destination"] == "/data"]
    label = "database %s -> %s" % (app, cache)

    state = stack_state(stack)
    check = playbook([redis_stack(stack, second)], check=True, diff=True)
    assert check.rc == 0, check.output
    assert entry(check, "connection", label)["actions"] == ["rotate the password of user default"], check.details
    assert stack_state(stack) == state
    assert redis_cli(cache, first, "PING") == "PONG", "check mode changed the password"

    rotate = playbook([redis_stack(stack, second)])
    assert rotate.rc == 0, rotate.output
    assert entry(rotate, "connection", label)["actions"] == ["rotate the password of user default"], rotate.details
    assert entry(rotate, "container", cache)["actions"][:1] == ["recreate"], rotate.details
    assert_no_secret(rotate, first, second)
    assert [m["Name"] for m in inspect("container", cache)["Mounts"] if m["Destination"] == "/data"] == data
    assert redis_cli(cache, second, "GET", "kept") == "yes", "the data in /data was lost"
    assert "WRONGPASS" in redis_cli(cache, first, "PING") or "NOAUTH" in redis_cli(cache, first, "PING")
    assert env_of(app)["REDIS_URL"] == "redis://:%s@%s:6379/0" % (second, cache)

    again = playbook([redis_stack(stack, second)])
    assert again.rc == 0 and not again.changed, again.output


def pg_stack(stack, password, tmp_path):
    pg, app = stack + "-pg", stack + "-app"
    resources = [{"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": password, "POSTGRES_DB": "appdb"},
                  "healthcheck": {"test": "pg_isready -U postgres -d appdb", "interval": "1s",
                                  "start_period": "60s"}},
                 {"name": app, "image": NGINX_IMAGE}]
    connections = [{"type": "database", "from": app, "to": pg, "password": password, "database_name": "appdb",
                    "schema_file": "schema.sql"}]
    return stack_task(stack, resources, connections)


def test_without_a_working_previous_password_it_stops_and_reinitialises_nothing(stack, tmp_path):
    """The server's password was changed behind clockwork's back: no password the containers
    carry logs in. The run stops with what to do, the server and its data stay as they are;
    doing what the message says converges."""
    (tmp_path / "schema.sql").write_text("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n")
    pg, app = stack + "-pg", stack + "-app"
    first, second, by_hand = "pg-first", "pg-second", "pg-set-by-hand"  # pragma: allowlist secret
    wd = str(tmp_path)
    _run = playbook([pg_stack(stack, first, tmp_path)], workdir=wd)
    assert _run.rc == 0, _run.output
    docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-c", "INSERT INTO users (name) VALUES ('ada')")
    docker("exec", pg, "psql", "-U", "postgres", "-c", "ALTER ROLE postgres PASSWORD '%s'" % by_hand)
    pg_id, app_url = inspect("container", pg)["Id"], env_of(app)["DATABASE_URL"]

    for check in (True, False):
        state = stack_state(stack)
        run = playbook([pg_stack(stack, second, tmp_path)], workdir=wd, check=check, diff=True)
        assert run.rc != 0, run.output
        msg = run.result("stack")["msg"]
        assert "connection database %s -> %s: the password of role postgres changes" % (app, pg) in msg, msg
        assert "no previous password that could be read is accepted (tried: DATABASE_URL of %s, POSTGRES_PASSWORD " \
               "of %s), nor the new one" % (app, pg) in msg, msg
        assert "%s was neither recreated nor reinitialised" % pg in msg, msg
        assert "To proceed, deploy with the password the server has, or set the new one on it yourself " \
               "(docker exec -it %s psql -U postgres -c '\\password postgres'), then run again" % pg in msg, msg
        assert "Traceback" not in run.output, run.output
        assert_no_secret(run, first, second, by_hand)
        assert stack_state(stack) == state
        assert inspect("container", pg)["Id"] == pg_id and env_of(app)["DATABASE_URL"] == app_url
        assert docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-tAc", "SELECT name FROM users") == "ada"

    # As the message says: deploy with the password the server has. Nothing to rotate, the data stays.
    healed = playbook([pg_stack(stack, by_hand, tmp_path)], workdir=wd)
    assert healed.rc == 0, healed.output
    assert entry(healed, "connection", "database %s -> %s" % (app, pg))["actions"] == [], healed.details
    assert docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-tAc", "SELECT name FROM users") == "ada"
    assert psql_url(pg, env_of(app)["DATABASE_URL"], "SELECT count(*) FROM users") == "1"


def test_single_module_rotates_in_place(stack, tmp_path):
    """database_connection on its own: the server's container is not its to change, the role's
    password is; the api, given the new contribution, logs in with it."""
    pg = stack + "-pg"
    first, second = "mod-first", "mod-second"  # pragma: allowlist secret
    wd = str(tmp_path)
    _run = playbook([postgres_task(pg, stack, password=first)], workdir=wd)
    assert _run.rc == 0, _run.output
    _run = playbook([db_task(stack, pg, password=first), api_task(stack, "db")], workdir=wd)
    assert _run.rc == 0, _run.output
    old_url = env_of(stack + "-api")["DATABASE_URL"]

    state = stack_state(stack)
    check = playbook([db_task(stack, pg, password=second), show(), api_task(stack, "db")], workdir=wd, check=True)
    assert check.rc == 0, check.output
    assert shown(check)["actions"] == ["rotate the password of role postgres"], check.details
    assert stack_state(stack) == state and psql_url(pg, old_url, "SELECT 1") == "1"

    rotate = playbook([db_task(stack, pg, password=second), show(), api_task(stack, "db")], workdir=wd)
    assert rotate.rc == 0, rotate.output
    assert shown(rotate)["actions"] == ["rotate the password of role postgres"], rotate.details
    assert_no_secret(rotate, first, second)
    new_url = env_of(stack + "-api")["DATABASE_URL"]
    assert second in new_url and psql_url(pg, new_url, "SELECT 1") == "1"
    assert login_fails(pg, old_url)

    again = playbook([db_task(stack, pg, password=second), show(), api_task(stack, "db")], workdir=wd)
    assert again.rc == 0 and not again.changed, again.output


def test_a_stopped_server_is_rotated_once_it_runs_again(stack, tmp_path):
    """Nothing logs in to a stopped server: check mode says what will happen without a login,
    and the run rotates once the server runs again (its data has the previous password)."""
    (tmp_path / "schema.sql").write_text("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n")
    pg, app = stack + "-pg", stack + "-app"
    first, second = "stopped-first", "stopped-second"  # pragma: allowlist secret
    wd = str(tmp_path)
    _run = playbook([pg_stack(stack, first, tmp_path)], workdir=wd)
    assert _run.rc == 0, _run.output
    docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-c", "INSERT INTO users (name) VALUES ('ada')")
    old_url = env_of(app)["DATABASE_URL"]
    docker("stop", pg)
    label = "database %s -> %s" % (app, pg)

    state = stack_state(stack)
    check = playbook([pg_stack(stack, second, tmp_path)], workdir=wd, check=True)
    assert check.rc == 0, check.output
    assert entry(check, "connection", label)["actions"] == ["rotate the password of role postgres"], check.details
    assert stack_state(stack) == state

    rotate = playbook([pg_stack(stack, second, tmp_path)], workdir=wd)
    assert rotate.rc == 0, rotate.output
    assert entry(rotate, "connection", label)["actions"] == ["rotate the password of role postgres"], rotate.details
    assert_no_secret(rotate, first, second)
    assert docker("exec", pg, "psql", "-U", "postgres", "-d", "appdb", "-tAc", "SELECT name FROM users") == "ada"
    assert psql_url(pg, env_of(app)["DATABASE_URL"], "SELECT count(*) FROM users") == "1"
    assert login_fails(pg, old_url)
    again = playbook([pg_stack(stack, second, tmp_path)], workdir=wd)
    assert again.rc == 0 and not again.changed, again.output


def test_redis_rotation_diff_shows_no_password(stack):
    first, second = "r3dis-diff-first", "r3dis-diff-second"  # pragma: allowlist secret
    _run = playbook([redis_stack(stack, first)])
    assert _run.rc == 0, _run.output
    rotate = playbook([redis_stack(stack, second)], diff=True, verbose=True)
    assert rotate.rc == 0, rotate.output
    assert_no_secret(rotate, first, second)


MARIADB_IMAGE = LOCAL_IMAGES["mariadb_image"]
MARIADB_ROOT = "r00t-of-the-server"  # pragma: allowlist secret
APP_FIRST, APP_SECOND = "wp-first pw", "wp-s3cond@pw"  # pragma: allowlist secret


def app_user_stack(stack, password, root):
    """The WordPress shape: the server creates MARIADB_USER with MARIADB_PASSWORD, the connection logs
    in as that user and gives the application its parts. `root`: the server's root password in its env,
    or None (an empty root password that nothing here uses; "yes", not "1": a value of a variable named
    *PASSWORD is masked wherever it appears in the output)."""
    db, app = stack + "-db", stack + "-app"
    env = {"MARIADB_USER": "wp", "MARIADB_PASSWORD": password, "MARIADB_DATABASE": "shop"}
    env.update({"MARIADB_ROOT_PASSWORD": root} if root else {"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "yes"})
    resources = [{"name": db, "image": MARIADB_IMAGE, "env": env, "ports": ["3306"],
                  "healthcheck": {"test": ["CMD", "healthcheck.sh"], "interval": "1s", "start_period": "60s"}},
                 {"name": app, "image": NGINX_IMAGE}]
    connections = [{"type": "database", "engine": "mariadb", "from": app, "to": db, "username": "wp",
                    "password": password, "database_name": "shop", "schema_file": "schema.sql", "env_var_name": "",
                    "env": {"WORDPRESS_DB_HOST": "{host}:{port}", "WORDPRESS_DB_USER": "{user}",
                            "WORDPRESS_DB_PASSWORD": "{password}", "WORDPRESS_DB_NAME": "{database}"},
                    "timeout": 60}]
    return stack_task(stack, resources, connections)


def mariadb_as(container, user, password, query):
    """(exit code, output) of a query over TCP inside the server's container, as `user`."""
    proc = subprocess.run(["docker", "exec", "-e", "MYSQL_PWD=" + password, container, "mariadb", "--protocol=TCP",
                           "-h", "127.0.0.1", "-u", user, "-N", "-B", "-D", "shop", "-e", query],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@pytest.mark.parametrize("root", [MARIADB_ROOT, None], ids=["root-in-the-env", "the-user-itself"])
def test_an_application_users_password_is_rotated_in_place(stack, tmp_path, root):
    """Rotation as the WordPress, Nextcloud and Gitea shapes need it: the user is not root. With root's
    password in the server's env, root changes it on every account of that name; without, the user
    changes its own (SET PASSWORD). Either way the rows stay, the old password is refused, and the
    application's parts follow."""
    (tmp_path / "schema.sql").write_text("CREATE TABLE posts (id INT AUTO_INCREMENT PRIMARY KEY, title TEXT);\n")
    db, app = stack + "-db", stack + "-app"
    wd = str(tmp_path)
    first = playbook([app_user_stack(stack, APP_FIRST, root)], workdir=wd)
    assert first.rc == 0, first.output
    assert mariadb_as(db, "wp", APP_FIRST, "INSERT INTO posts (title) VALUES ('hello')")[0] == 0
    if root:
        # A second account of that name: root changes both.
        assert mariadb_as(db, "root", root, "CREATE USER wp@localhost IDENTIFIED BY '%s'; GRANT ALL ON shop.* TO "
                                            "wp@localhost" % APP_FIRST)[0] == 0
    label = "database %s -> %s" % (app, db)

    state = stack_state(stack)
    check = playbook([app_user_stack(stack, APP_SECOND, root)], workdir=wd, check=True, diff=True)
    assert check.rc == 0, check.output
    assert entry(check, "connection", label)["actions"] == ["rotate the password of user wp"], check.details
    assert stack_state(stack) == state
    assert mariadb_as(db, "wp", APP_FIRST, "SELECT 1") == (0, "1"), "check mode changed the password"
    assert_no_secret(check, APP_FIRST, APP_SECOND, MARIADB_ROOT)

    rotate = playbook([app_user_stack(stack, APP_SECOND, root)], workdir=wd, diff=True, verbose=True)
    assert rotate.rc == 0, rotate.output
    assert entry(rotate, "connection", label)["actions"] == ["rotate the password of user wp"], rotate.details
    assert "1227" not in rotate.output, rotate.output
    assert_no_secret(rotate, APP_FIRST, APP_SECOND, MARIADB_ROOT)
    assert mariadb_as(db, "wp", APP_SECOND, "SELECT title FROM posts") == (0, "hello"), "the rows were lost"
    code, out = mariadb_as(db, "wp", APP_FIRST, "SELECT 1")
    assert code != 0 and "Access denied" in out, "the old password still logs in"
    if root:
        hashes = mariadb_as(db, "root", root, "SELECT DISTINCT host, authentication_string = PASSWORD('%s') FROM "
                                              "mysql.user WHERE user = 'wp' ORDER BY host" % APP_SECOND)[1]
        assert hashes.splitlines() == ["%\t1", "localhost\t1"], "an account of that name kept the old password"
    parts = env_of(app)
    assert (parts["WORDPRESS_DB_USER"], parts["WORDPRESS_DB_PASSWORD"]) == ("wp", APP_SECOND)
    assert parts["WORDPRESS_DB_HOST"] == "%s:3306" % db and parts["WORDPRESS_DB_NAME"] == "shop"

    again = playbook([app_user_stack(stack, APP_SECOND, root)], workdir=wd)
    assert again.rc == 0 and not again.changed, again.output
    state = stack_state(stack)
    recheck = playbook([app_user_stack(stack, APP_SECOND, root)], workdir=wd, check=True)
    assert recheck.rc == 0 and not recheck.changed, recheck.output
    assert stack_state(stack) == state


def test_an_application_users_password_is_rotated_in_place_on_swarm(swarm_stack, tmp_path):
    """The same on Swarm: the server's passwords are secrets there (MARIADB_PASSWORD_FILE, read back as the
    server sees them), and the application's parts secret files that follow the rotation."""
    stack = swarm_stack
    (tmp_path / "schema.sql").write_text("CREATE TABLE posts (id INT AUTO_INCREMENT PRIMARY KEY, title TEXT);\n")
    wd = str(tmp_path)

    def task(password):
        declared = app_user_stack(stack, password, MARIADB_ROOT)
        args = declared["clockwork.connections.stack"]
        args["engine"] = "swarm"
        for resource in args["resources"]:
            resource["endpoint_mode"] = "dnsrr"
        args["resources"][0]["healthcheck"] = {"test": ["CMD", "healthcheck.sh"], "interval": "1s", "retries": 60}
        # A service's new task gets a new anonymous volume: the data lives in a named one.
        args["resources"][0]["mounts"] = [{"source": stack + "-data", "target": "/var/lib/mysql"}]
        return declared

    try:
        _rotate_on_swarm(stack, wd, task)
    finally:
        remove_swarm_stack(stack)
        docker("volume", "rm", stack + "-data", check=False)


def _rotate_on_swarm(stack, wd, task):
    db, app = stack + "-db", stack + "-app"
    first = playbook([task(APP_FIRST)], workdir=wd)
    assert first.rc == 0, first.output
    server = task_container(db)
    assert mariadb_as(server, "wp", APP_FIRST, "INSERT INTO posts (title) VALUES ('hello')")[0] == 0

    rotate = playbook([task(APP_SECOND)], workdir=wd)
    assert rotate.rc == 0, rotate.output
    assert entry(rotate, "connection", "database %s -> %s" % (app, db))["actions"] == ["rotate the password of user wp"], \
        rotate.details
    assert_no_secret(rotate, APP_FIRST, APP_SECOND, MARIADB_ROOT)
    server = task_container(db)
    assert mariadb_as(server, "wp", APP_SECOND, "SELECT title FROM posts") == (0, "hello"), "the rows were lost"
    code, out = mariadb_as(server, "wp", APP_FIRST, "SELECT 1")
    assert code != 0 and "Access denied" in out, "the old password still logs in"
    assert docker("exec", task_container(app), "cat", "/run/secrets/WORDPRESS_DB_PASSWORD") == APP_SECOND
    again = playbook([task(APP_SECOND)], workdir=wd)
    assert again.rc == 0 and not again.changed, again.output
