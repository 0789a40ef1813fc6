"""from_compose's inference invents nothing (issue 34, part 4): a password part is X_PASSWORD,
X_PASSWD, X_PASS, X_PWD or X_SECRET beside an X_HOST naming a database server; a value that is a
secret's path is never a password: the secret's file is the connection's password (delivered as
a file) and the variable keeps its path. Each declaration is then planned by the stack itself."""
import textwrap

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import from_compose

PASSWORD = "gitea-s3cret"  # pragma: allowlist secret


def imported(text, **options):
    options.setdefault("project_name", "infer")
    return from_compose(textwrap.dedent(text), **options)


def by_name(result):
    return dict((r["name"], r) for r in result["resources"])


def databases(result):
    return [c for c in result["connections"] if c["type"] == "database"]


def planned(result, base_dir="/srv/play"):
    return Plan("infer", result["resources"], result["connections"], base_dir=base_dir)


# Gitea's own example (docs.gitea.com, "Installation with Docker", PostgreSQL), its host binds left out.
GITEA = """
    networks:
      gitea:
        external: false
    services:
      server:
        image: gitea/gitea:1.21
        environment:
          - USER_UID=1000
          - USER_GID=1000
          - GITEA__database__DB_TYPE=postgres
          - GITEA__database__HOST=db:5432
          - GITEA__database__NAME=gitea
          - GITEA__database__USER=gitea
          - GITEA__database__PASSWD=%s
        restart: always
        networks: [gitea]
        volumes: ["./gitea:/data"]
        ports: ["3000:3000", "222:22"]
        depends_on: [db]
      db:
        image: postgres:14
        restart: always
        environment:
          - POSTGRES_USER=gitea
          - POSTGRES_PASSWORD=%s
          - POSTGRES_DB=gitea
        networks: [gitea]
        volumes: ["./postgres:/var/lib/postgresql/data"]
""" % (PASSWORD, PASSWORD)


def test_gitea_s_passwd_is_the_database_connection_s_password():
    result = imported(GITEA, base_dir="/srv/gitea")
    [database] = databases(result)
    assert database["password"] == PASSWORD and database["username"] == "gitea"
    assert database["database_name"] == "gitea"
    assert database["env"] == {"GITEA__database__HOST": "{host}:{port}", "GITEA__database__NAME": "{database}",
                               "GITEA__database__PASSWD": "{password}", "GITEA__database__USER": "{user}"}
    assert by_name(result)["server"]["env"] == {"USER_UID": "1000", "USER_GID": "1000",
                                                "GITEA__database__DB_TYPE": "postgres"}
    assert "password_delivery" not in database
    planned(result, base_dir="/srv/gitea")


@pytest.mark.parametrize("suffix", ["PASSWORD", "PASSWD", "PASS", "PWD", "SECRET"])
def test_each_password_suffix_beside_a_host_naming_a_server_is_the_password(suffix):
    result = imported("""
        services:
          db: {image: mariadb:10.11, environment: {MARIADB_ROOT_PASSWORD: pw}}
          app:
            image: x
            environment: {DB_HOST: db, DB_USER: app, DB_%s: pw}
    """ % suffix)
    [database] = databases(result)
    assert database["password"] == "pw" and database["env"]["DB_" + suffix] == "{password}"
    assert "env" not in by_name(result)["app"]
    planned(result)


def test_a_secret_named_variable_without_a_host_naming_a_server_stays_plain_env():
    result = imported("""
        services:
          api: {image: x}
          app: {image: x, environment: {API_HOST: api, API_SECRET: s3, JWT_SECRET: s4, DB_PASSWD: s5}}
    """)
    assert databases(result) == []
    assert by_name(result)["app"]["env"] == {"API_SECRET": "s3", "JWT_SECRET": "s4", "DB_PASSWD": "s5"}


SECRET_PATH = """
    services:
      db:
        image: postgres:15
        environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db-password}
        secrets: [db-password]
      app:
        image: x
        environment:
          DB_HOST: db
          DB_USER: postgres
          DB_PASSWORD: %s
        secrets: [%s]
    secrets:
      db-password: {file: ./db-password.txt}
"""


@pytest.mark.parametrize("target, entry", [
    ("/run/secrets/db-password", "db-password"),
    ("/etc/app/db-pass", "{source: db-password, target: /etc/app/db-pass}"),
])
def test_a_password_part_holding_a_secret_s_path_keeps_it_and_the_secret_is_the_password(tmp_path, target, entry):
    (tmp_path / "db-password.txt").write_text(PASSWORD + "\n")
    result = imported(SECRET_PATH % (target, entry), base_dir=str(tmp_path))
    [database] = databases(result)
    assert database["password"] == PASSWORD, "the secret's content, not its path"
    assert database["password_delivery"] == "file"
    assert database["env"] == {"DB_HOST": "{host}", "DB_USER": "{user}"}, "no part holds the path"
    assert by_name(result)["app"]["env"] == {"DB_PASSWORD": target}, "the variable keeps its path"
    mounts = [(c["from"], c["mount_path"]) for c in result["connections"] if c["type"] == "file"]
    assert ("app", target) in mounts, "the secret is still where the variable says"
    assert target not in [c.get("password") for c in result["connections"]]


def test_the_stack_takes_a_password_its_client_reads_from_a_secret_s_path(tmp_path):
    (tmp_path / "db-password.txt").write_text(PASSWORD + "\n")
    planned(imported(SECRET_PATH % ("/run/secrets/db-password", "db-password"), base_dir=str(tmp_path)),
            base_dir=str(tmp_path))


def test_a_path_under_run_secrets_that_is_no_secret_is_no_password():
    result = imported("""
        services:
          db: {image: postgres:15, environment: {POSTGRES_PASSWORD: pw}}
          app: {image: x, environment: {DB_HOST: db, DB_USER: postgres, DB_PASSWORD: /run/secrets/elsewhere}}
    """)
    [database] = databases(result)
    assert "password" not in database
    assert by_name(result)["app"]["env"] == {"DB_PASSWORD": "/run/secrets/elsewhere"}
    assert any("DB_PASSWORD: /run/secrets/elsewhere is no secret of app with a file" in w for w in result["warnings"])


@pytest.mark.parametrize("suffix", ["PASSWORD", "PASSWD", "PASS", "PWD", "SECRET"])
def test_each_password_file_variable_naming_a_secret_is_delivered_as_a_file(tmp_path, suffix):
    (tmp_path / "pw.txt").write_text(PASSWORD)
    result = imported("""
        services:
          db: {image: mysql:8, environment: {MYSQL_ROOT_PASSWORD: x}}
          app:
            image: x
            environment: {DB_HOST: db, DB_USER: app, DB_%s_FILE: /run/secrets/pw}
            secrets: [pw]
        secrets:
          pw: {file: ./pw.txt}
    """ % suffix, base_dir=str(tmp_path))
    [database] = databases(result)
    assert database["password"] == PASSWORD and database["password_delivery"] == "file"
    assert database["env"]["DB_" + suffix] == "{password}"
    assert "env" not in by_name(result)["app"], "DB_%s_FILE is the connection's to set" % suffix
    assert [c for c in result["connections"] if c["type"] == "file"] == [], "the connection delivers the secret"
    planned(result, base_dir=str(tmp_path))
