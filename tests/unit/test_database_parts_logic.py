"""Connection parts as env vars (`env`) and passwords delivered as files (`password_delivery:
file`): the pure logic, without Docker. The real engine is in tests/integration/test_wordpress_example.py."""
import os
import stat

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.database import client_env
from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import (
    client_url, validate)
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import (
    part_values, render_part, resolved_settings)
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import DryRunFiles, HostFiles, write_secret_file
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan

PASSWORD = "p@ss word/1"  # pragma: allowlist secret
WORDPRESS_ENV = {"WORDPRESS_DB_HOST": "{host}:{port}", "WORDPRESS_DB_USER": "{user}",
                 "WORDPRESS_DB_PASSWORD": "{password}", "WORDPRESS_DB_NAME": "{database}"}


def connection(**fields):
    params = {"from_resource": "wordpress", "to_resource": "db", "engine": "mysql", "password": PASSWORD,
              "database_name": "wordpress", "env": dict(WORDPRESS_ENV), "password_delivery": "env"}
    params.update(fields)
    return params


def test_parts_are_the_values_as_they_are_and_the_url_stays():
    params = connection()
    settings = resolved_settings(params, 3306)
    values = client_env.given_values(params, settings, "db")
    assert values["WORDPRESS_DB_HOST"] == "db:3306"
    assert values["WORDPRESS_DB_PASSWORD"] == PASSWORD, "a part is not URL-encoded"
    assert values["DATABASE_URL"] == "mysql://root:p%40ss%20word%2F1@db:3306/wordpress"
    assert client_env.secret_names(params, settings) == ["DATABASE_URL", "WORDPRESS_DB_PASSWORD"]
    # Known without the engine: parts with neither the port nor the password.
    assert client_env.known_values(params, settings, "db") == {"WORDPRESS_DB_NAME": "wordpress",
                                                               "WORDPRESS_DB_USER": "root"}


def test_an_empty_env_var_name_gives_the_parts_only():
    params = connection(env_var_name="")
    settings = resolved_settings(params, 3306)
    assert sorted(client_env.given_values(params, settings, "db")) == sorted(WORDPRESS_ENV)
    assert resolved_settings(connection(), None)["env_var_name"] == "DATABASE_URL"


@pytest.mark.parametrize("template, value, expected", [
    ("{password}", PASSWORD, {"password": PASSWORD}),
    ("{user}:{password}", "root:a:b", {"user": "root", "password": "a:b"}),
    ("{host}:{port}", "db:3306", {"host": "db", "port": "3306"}),
    ("mysql://{user}@{host}", "elsewhere", {}),
])
def test_part_values_read_a_part_back(template, value, expected):
    assert part_values(template, value) == expected


def test_render_part_fills_every_placeholder():
    settings = {"user": "u", "password": "p", "port": 5432, "database": "d"}  # pragma: allowlist secret
    assert render_part("{user}/{password}@{host}:{port}/{database}", settings, "db") == "u/p@db:5432/d"


@pytest.mark.parametrize("fields, field, words", [
    ({"env": {"DB_HOST": "{hostname}"}}, "env", "DB_HOST has an unknown placeholder {hostname}"),
    ({"env": {"DB_HOST": "{host!r}"}}, "env", "DB_HOST has an unknown placeholder {host}"),
    ({"env": {"bad name": "{host}"}}, "env", "bad name is not an environment variable name"),
    ({"env": {"DATABASE_URL": "{host}"}}, "env", "DATABASE_URL is the connection string's variable"),
    ({"env": ["DB_HOST"]}, "env", "must be a mapping"),
    ({"env": {}, "env_var_name": ""}, "env_var_name", "env sets nothing"),
    ({"env": {"DB_HOST": "{host}"}, "env_var_name": ""}, "env", "no part holds {password}"),
    ({"env": {"DB_PASSWORD": "{password}", "DB_PASSWORD_FILE": "x"}, "password_delivery": "file"}, "env",
     "DB_PASSWORD_FILE is where password_delivery: file names the file"),
])
def test_bad_env_is_refused_naming_the_field(fields, field, words):
    problems = validate(connection(**fields))
    assert any(f == field and words in p for f, p in problems), problems


def test_file_delivery_names_the_files_in_the_env():
    params = connection(password_delivery="file")
    settings = resolved_settings(params, 3306)
    assert client_env.injected_names(params, settings) == [
        "DATABASE_URL_FILE", "WORDPRESS_DB_HOST", "WORDPRESS_DB_NAME", "WORDPRESS_DB_PASSWORD_FILE",
        "WORDPRESS_DB_USER"]

    class Swarm(object):
        secrets_as_files = True
    # On Swarm every secret env value is a secret file already: the connection gives env.
    assert client_env.in_files(params, settings, Swarm()) == []
    # Without a password there is nothing to put in a file.
    without = connection(password_delivery="file", password=None)
    assert client_env.in_files(without, resolved_settings(without, 3306), None) == []


def test_the_plan_refuses_an_env_part_another_connection_sets_differently_and_all_at_once():
    resources = [{"name": "app", "image": "x", "env": {"DB_USER": "someone"}},
                 {"name": "db", "image": "mariadb:11"}, {"name": "db2", "image": "mariadb:11"}]
    connections = [
        {"type": "database", "from": "app", "to": "db", "engine": "mariadb", "password": "pw",
         "env": {"DB_USER": "{user}", "DB_HOST": "{host}", "DB_PASSWORD": "{password}"}},
        {"type": "database", "from": "app", "to": "db2", "engine": "mariadb", "password": "pw",
         "env_var_name": "OTHER_URL", "env": {"DB_HOST": "{host}", "DB_NAME": "{db}"}},
        {"type": "database", "from": "app", "to": "db", "engine": "sqlite"},
    ]
    with pytest.raises(ClockworkError) as error:
        Plan("shop", resources, connections, base_dir="/srv/play")
    problems = error.value.details["problems"]
    assert any("engine" in p and "sqlite" in p for p in problems), problems
    assert any("env: DB_NAME has an unknown placeholder {db}" in p for p in problems), problems
    assert "nothing was changed" in error.value.msg
    # Fixed, the clashes show: DB_USER against the container's own env, DB_HOST between the two.
    connections[1]["env"] = {"DB_HOST": "{host}"}
    del connections[2]
    with pytest.raises(ClockworkError) as error:
        Plan("shop", resources, connections, base_dir="/srv/play")
    problems = error.value.details["problems"]
    assert any("env DB_USER is set differently by the container's own env" in p for p in problems), problems
    assert any("env DB_HOST is set differently by connection database app -> db and by connection "
               "database app -> db2" in p for p in problems), problems


def test_a_file_that_ends_its_transaction_is_refused_in_the_plan():
    for engine, sql in (("postgresql", "CREATE TABLE t (id int);\nCOMMIT;\n"),
                        ("mysql", "CREATE TABLE t (id INT);\nSTART TRANSACTION;\n")):
        params = {"engine": engine, "migrations": [{"name": "1_t.sql", "content": sql}],
                  "migrations_dir": "/nowhere", "from_resource": "app", "to_resource": "db"}
        problems = validate(params)
        assert [f for f, _p in problems] == ["migrations_dir"], problems
        assert "migration 1_t.sql line 2" in problems[0][1] and "Nothing was applied" not in problems[0][1]


def test_the_check_logs_in_with_the_parts_when_there_is_no_url():
    check = {"container": "db", "parts": WORDPRESS_ENV, "user": "root", "database": "wordpress", "port": 3306}
    env = {"WORDPRESS_DB_HOST": "db:3306", "WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_PASSWORD": PASSWORD,
           "WORDPRESS_DB_NAME": "blog"}
    url, given_by = client_url(check, ENGINES["mysql"], env)
    assert url == "mysql://wp:p%40ss%20word%2F1@db:3306/blog"
    assert given_by == "WORDPRESS_DB_HOST, WORDPRESS_DB_NAME, WORDPRESS_DB_PASSWORD, WORDPRESS_DB_USER"
    del env["WORDPRESS_DB_PASSWORD"]
    assert client_url(check, ENGINES["mysql"], env) == (None, "WORDPRESS_DB_PASSWORD")


def test_rotation_reads_the_previous_password_from_a_part():
    env = {"WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_PASSWORD": "old"}  # pragma: allowlist secret
    assert client_env.client_credentials(ENGINES["mysql"], WORDPRESS_ENV, env, "") == ("wp", "old", "WORDPRESS_DB_PASSWORD")
    assert client_env.client_credentials(ENGINES["mysql"], WORDPRESS_ENV, {}, "") is None
    url_env = {"DATABASE_URL": "mysql://root:older@db:3306/x"}  # pragma: allowlist secret
    assert client_env.client_credentials(ENGINES["mysql"], {}, url_env, "DATABASE_URL") == ("root", "older", "DATABASE_URL")


def test_a_password_file_is_0400_rewritten_in_place_and_never_recorded(tmp_path):
    path = str(tmp_path / "secrets" / "app" / "DB_PASSWORD")
    result = ConnectionResult("database", "app", "db")
    assert write_secret_file(path, "first", DryRunFiles(), result) is True
    assert not os.path.exists(path), "a dry run wrote the file"
    assert write_secret_file(path, "first", HostFiles(), result) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    inode = os.stat(path).st_ino
    assert write_secret_file(path, "second", HostFiles(), result) is True
    assert os.stat(path).st_ino == inode, "a bind mount of the file would keep the old inode"
    assert open(path).read() == "second"
    assert write_secret_file(path, "second", HostFiles(), ConnectionResult("database", "app", "db")) is False
    assert "first" not in str(result.actions) + str(result.before) + str(result.after)


def test_client_env_reads_back_only_the_stacks_own_password_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    mine = client_env.secret_file("shop", "app", "DB_PASSWORD")
    os.makedirs(os.path.dirname(mine))
    with open(mine, "w") as handle:
        handle.write(PASSWORD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not read")
    attrs = {"Config": {"Env": ["DB_PASSWORD_FILE=/run/secrets/DB_PASSWORD", "OTHER_FILE=/etc/other"],
                        "Labels": {"io.clockwork.stack": "shop"}},
             "Mounts": [{"Type": "bind", "Source": mine, "Destination": "/run/secrets/DB_PASSWORD"},
                        {"Type": "bind", "Source": str(elsewhere), "Destination": "/etc/other"}]}
    env = client_env.client_env(attrs)
    assert env["DB_PASSWORD"] == PASSWORD
    assert "OTHER" not in env
