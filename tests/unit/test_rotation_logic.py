"""Pure logic of a password rotation: which passwords a declaration changes on a server that
exists, and which previous ones to log in with (no server)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine_redis import requirepass
from ansible_collections.clockwork.connections.plugins.module_utils.database.rotation import password_rotations, server_credentials, url_credentials

CLIENT = "DATABASE_URL of api"
SERVER = "POSTGRES_PASSWORD of db"


@pytest.mark.parametrize("url, expected", [
    ("postgresql://postgres:old%40pw@db:5432/appdb", ("postgres", "old@pw")),
    ("postgres://app%20user@db/appdb?sslmode=disable&password=p%26w", ("app user", "p&w")),
    ("postgresql://db:5432/appdb", (None, None)),
    ("host=db user=app password='it\\'s x' dbname=appdb", ("app", "it's x")),
    ("host=db user='my user' password=pw", ("my user", "pw")),
    ("redis://:r3d%3Ais@cache:6379/0", (None, "r3d:is")),
    ("redis://worker:pw@cache:6379/0", ("worker", "pw")),
    ("redis://cache:6379/0", (None, None)),
    ("", (None, None)),
])
def test_url_credentials(url, expected):
    assert url_credentials(url) == expected


def test_requirepass_from_the_command_line():
    assert requirepass(["--requirepass", "a"]) == "a"
    assert requirepass(["redis-server", "--appendonly", "yes", "--requirepass", "a", "--requirepass", "b"]) == "b"
    assert requirepass(["redis-server", "--requirepass"]) is None
    assert requirepass(None) is None and requirepass(["redis-server"]) is None


def test_server_credentials():
    assert server_credentials("postgresql", {"POSTGRES_PASSWORD": "x"}, None, "db") == ("postgres", "x", SERVER)
    assert server_credentials("postgresql", {"POSTGRES_PASSWORD": "x", "POSTGRES_USER": "admin"}, None, "db")[0] \
        == "admin"
    assert server_credentials("postgresql", {"POSTGRES_HOST_AUTH_METHOD": "trust"}, None, "db") is None
    assert server_credentials("redis", {}, ["--requirepass", "r"], "cache") == \
        ("default", "r", "--requirepass in the command of cache")
    assert server_credentials("redis", {}, ["redis-server"], "cache") is None


def test_the_showcase_changing_its_one_password():
    """The connection's password and POSTGRES_PASSWORD change together: one rotation of role
    postgres, logged in with the previous password (read twice, tried once)."""
    rotations = password_rotations("postgres", "new", ("postgres", "old", CLIENT), ("postgres", "old", SERVER),
                                   ("postgres", "new", SERVER))
    assert rotations == [{"role": "postgres", "new": "new", "previous": [("old", CLIENT + ", " + SERVER)]}]


def test_nothing_changes_nothing_rotates():
    assert password_rotations("postgres", "pw", ("postgres", "pw", CLIENT), ("postgres", "pw", SERVER),
                              ("postgres", "pw", SERVER)) == []
    # A new server, no client yet: its declaration sets the password.
    assert password_rotations("postgres", "pw", None, None, ("postgres", "pw", SERVER)) == []


def test_a_previous_password_that_cannot_be_read_is_no_rotation():
    """No client, another role than the server's own: nothing says the password changed."""
    assert password_rotations("app", "new", None, ("postgres", "admin", SERVER), ("postgres", "admin", SERVER)) == []


def test_client_of_its_own_role():
    rotations = password_rotations("app", "new", ("app", "old", CLIENT), ("postgres", "admin", SERVER),
                                   ("postgres", "admin", SERVER))
    assert rotations == [{"role": "app", "new": "new", "previous": [("old", CLIENT)]}]


def test_the_single_module_trusts_the_client_over_a_stale_server_env():
    """On its own the module never changes the server's env: once the client has the new URL,
    the server's POSTGRES_PASSWORD (still the first one) is no reason to rotate again."""
    assert password_rotations("postgres", "new", ("postgres", "new", CLIENT), ("postgres", "old", SERVER),
                              None) == []


def test_a_connection_alone_saying_another_password_is_a_wrong_one():
    """No client that had the previous password, no change of the server's declaration: a
    typo in the connection's password must never become the server's password."""
    assert password_rotations("postgres", "typo", None, ("postgres", "old", SERVER), None) == []
    assert password_rotations("postgres", "typo", None, ("postgres", "old", SERVER),
                              ("postgres", "old", SERVER)) == []
    assert password_rotations("default", "typo", None, ("default", "old", "--requirepass in the command of c"),
                              None) == []


def test_a_server_password_changing_for_another_role_than_the_clients():
    rotations = password_rotations("app", "apppw", ("app", "apppw", CLIENT), ("postgres", "old", SERVER),
                                   ("postgres", "new", SERVER))
    assert rotations == [{"role": "postgres", "new": "new", "previous": [("old", SERVER)]}]


def test_both_previous_passwords_are_tried_when_they_differ():
    rotations = password_rotations("postgres", "new", ("postgres", "a", CLIENT), ("postgres", "b", SERVER),
                                   ("postgres", "new", SERVER))
    assert rotations[0]["previous"] == [("a", CLIENT), ("b", SERVER)]


def test_one_role_two_new_passwords_is_refused_without_showing_them():
    with pytest.raises(ClockworkError) as error:
        password_rotations("postgres", "conn-pw", ("postgres", "old", CLIENT), ("postgres", "old", SERVER),
                           ("postgres", "server-pw", SERVER))
    assert "the password of the connection and POSTGRES_PASSWORD of db differ" in error.value.msg
    assert "role postgres" in error.value.msg
    assert not any(secret in error.value.msg for secret in ("conn-pw", "old", "server-pw"))


def test_a_renamed_server_role_is_no_rotation_of_it():
    assert password_rotations("app", "pw", ("app", "pw", CLIENT), ("postgres", "old", SERVER),
                              ("admin", "new", SERVER)) == []


def test_redis_requirepass_changing():
    rotations = password_rotations("default", "new", ("default", "old", "REDIS_URL of api"),
                                   ("default", "old", "--requirepass in the command of cache"),
                                   ("default", "new", "--requirepass in the command of cache"))
    assert rotations == [{"role": "default", "new": "new", "previous": [
        ("old", "REDIS_URL of api, --requirepass in the command of cache")]}]
    # A password given for the first time is not a rotation: the recreate sets it.
    assert password_rotations("default", "new", ("default", None, "REDIS_URL of api"), None,
                              ("default", "new", "--requirepass in the command of cache")) == []


def test_root_from_the_servers_env_changes_another_users_password():
    from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
    mysql = ENGINES["mysql"]
    env = {"MARIADB_ROOT_PASSWORD": "r", "MARIADB_USER": "wp", "MARIADB_PASSWORD": "u"}
    assert mysql.admin_credentials(env, "wp") == ("root", "r")
    assert mysql.admin_credentials({"MYSQL_ROOT_PASSWORD": "m"}, "wp") == ("root", "m")
    assert mysql.admin_credentials(env, "root") is None, "root changes its own"
    assert mysql.admin_credentials({"MARIADB_USER": "wp", "MARIADB_PASSWORD": "u"}, "wp") is None
    assert ENGINES["postgresql"].admin_credentials({"POSTGRES_PASSWORD": "p"}, "app") is None
