"""Pure logic of the MySQL/MariaDB engine: statements of a file, transaction control, the
hashed password, settings and credentials (no server)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine_mysql import (
    ENGINE, login_problem, mysql_statements, native_password_hash, refuse_transaction_control)
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine_mysql import refuse_text
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_rehearsal import (
    kept_and_pruned, not_isolated, snapshot_name)
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_scope import (
    foreign_databases, own_qualified)
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_journal import (
    failure_message, journal_query, journal_rows, missing_columns, refusal, refuse_recorded)
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import render_url, resolved_settings


def test_statements_split_outside_strings_comments_and_identifiers():
    sql = ("-- a comment; not a statement\n"
           "CREATE TABLE `a;b` (id INT, note VARCHAR(20) DEFAULT 'x;y');\n"
           "# another; comment\n"
           "INSERT INTO `a;b` VALUES (1, 'it\\'s; fine'), (2, \"dq;\");\n"
           "/* block; comment */ UPDATE `a;b` SET note = 'z' WHERE id = 1;\n")
    found = mysql_statements(sql)
    assert [line for line, _text, _words in found] == [2, 4, 5]
    assert found[0][1].startswith("CREATE TABLE `a;b`") and found[0][1].endswith("'x;y')")
    assert found[1][2] == ["INSERT", "INTO"]
    assert found[2][2][:1] == ["UPDATE"] and found[2][1].startswith("UPDATE")


def test_delimiter_lines_set_the_statement_end():
    sql = ("CREATE TABLE t (id INT);\n"
           "DELIMITER //\n"
           "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\n"
           "DELIMITER ;\n"
           "CALL p();\n")
    found = mysql_statements(sql)
    assert [(line, words) for line, _text, words in found] == [
        (1, ["CREATE", "TABLE"]), (3, ["CREATE", "PROCEDURE"]), (5, ["CALL", "P"])]
    assert found[1][1] == "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END"


@pytest.mark.parametrize("sql, line, statement", [
    ("CREATE TABLE a (id INT);\nCOMMIT;\n", 2, "COMMIT"),
    ("START TRANSACTION;\nINSERT INTO a VALUES (1);\n", 1, "START TRANSACTION"),
    ("insert into a values (1);\n\nrollback;", 3, "ROLLBACK"),
])
def test_transaction_control_is_refused_naming_the_line(sql, line, statement):
    with pytest.raises(ClockworkError) as exc:
        refuse_transaction_control("migration", "002_x.sql", sql)
    assert "migration 002_x.sql line %d: %s" % (line, statement) in exc.value.msg
    assert "Nothing was applied" in exc.value.msg


def test_transaction_words_in_strings_and_procedures_are_not_control():
    refuse_transaction_control("schema", "s.sql", "INSERT INTO a VALUES ('COMMIT');\n"
                                                  "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\n")


def test_native_password_hash_is_mysqls():
    # SELECT PASSWORD('secret') on MariaDB
    assert native_password_hash("secret") == "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"


def test_mariadb_is_the_mysql_engine_with_its_defaults():
    assert ENGINES["mariadb"] is ENGINES["mysql"] is ENGINE
    settings = resolved_settings({"engine": "mariadb", "password": "p w", "database_name": "wp"}, None)
    assert settings["engine"] == "mysql" and settings["port"] == 3306 and settings["user"] == "root"
    assert render_url(settings["template"], settings["user"], settings["password"], "db", settings["port"],
                      settings["database"]) == "mysql://root:p%20w@db:3306/wp"


def test_server_credentials_root_first_then_the_application_user():
    assert ENGINE.server_credentials({"MARIADB_ROOT_PASSWORD": "r", "MARIADB_USER": "wp", "MARIADB_PASSWORD": "u"},
                                     None, "db") == ("root", "r", "MARIADB_ROOT_PASSWORD of db")
    assert ENGINE.server_credentials({"MYSQL_USER": "wp", "MYSQL_PASSWORD": "u"}, None, "db") == (
        "wp", "u", "MYSQL_PASSWORD of db")
    assert ENGINE.server_credentials({}, None, "db") is None


def test_refused_logins_say_what_to_fix():
    settings = {"user": "wp", "database": "wordpress"}
    assert "check username and password" in login_problem(
        "(1045, \"Access denied for user 'wp'@'172.18.0.1' (using password: YES)\")", settings)
    assert "may not use database wordpress" in login_problem(
        "(1044, \"Access denied for user 'wp'@'%' to database 'wordpress'\")", settings)
    assert login_problem("(2003, \"Can't connect to MySQL server\")", settings) is None


def test_probe_keeps_the_password_out_of_argv():
    argv, env, expect = ENGINE.probe({"schema": ["schema.sql"]}, "mysql://wp:s%40cret@db:3306/wordpress")
    assert "s@cret" not in " ".join(argv) and env == {"MYSQL_PWD": "s@cret"}
    assert argv[:2] == ["mysql", "--protocol=TCP"] and ["-D", "wordpress"] == argv[argv.index("-D"):argv.index("-D") + 2]
    assert expect == "schema.sql".encode().hex().upper()


# -- the write-ahead rows ---------------------------------------------------------------

def test_an_earlier_failures_table_gets_the_new_columns_once():
    old = ["kind", "name", "checksum", "statements_applied", "failed_line", "message", "failed_at"]
    assert missing_columns(old) == (
        "ALTER TABLE clockwork_schema_failures ADD COLUMN state VARCHAR(16) NOT NULL DEFAULT 'failed', "
        "ADD COLUMN statements INT NULL, ADD COLUMN snapshot VARCHAR(255) NULL")
    assert missing_columns(old + ["STATE", "statements", "snapshot"]) is None
    # What an earlier version's table has is read as NULL, and its rows are failures.
    assert "NULL, NULL, NULL FROM clockwork_schema_failures" in journal_query(old)
    rows = journal_rows([("migration", "2.sql", "c", 1, 3, "(1146) x", "2024-01-01 00:00:00", None, None, None)])
    assert rows[("migration", "2.sql")]["state"] == "failed"


def test_a_started_row_refuses_its_file_naming_the_row_and_what_to_do():
    journal = journal_rows([("migration", "V2__x.sql", "c", 0, 0, "", "2024-01-01 10:00:00", "started", 5,
                             "appdb-20240101T100000Z-V2__x.sql")])
    pending = [("migration", "V1__a.sql", None, "", "a"), ("migration", "V2__x.sql", None, "", "c")]
    with pytest.raises(ClockworkError) as exc:
        refuse_recorded("mysql at db", pending, journal, "appdb")
    message = exc.value.msg
    assert message.startswith("mysql at db: migration V2__x.sql was started at 2024-01-01 10:00:00 and never finished")
    assert "row state 'started' in clockwork_schema_failures, kind migration, name V2__x.sql" in message
    assert "Any of its 5 statements may have taken effect" in message
    assert "DELETE FROM clockwork_schema_failures WHERE kind = 'migration' AND name = 'V2__x.sql'" in message
    assert "clockwork_restore: {database: appdb, snapshot: appdb-20240101T100000Z-V2__x.sql}" in message
    refuse_recorded("mysql at db", pending[:1], journal, "appdb")   # another file: not refused


def test_a_quote_in_a_files_name_stays_a_quote_of_the_delete_it_suggests():
    row = journal_rows([("migration", "it's.sql", "c", 1, 2, "m", "t", "failed", 2, None)])[("migration", "it's.sql")]
    assert "name = 'it''s.sql'" in refusal("w", "migration", "it's.sql", row, "db")
    assert "clockwork_restore" not in refusal("w", "migration", "it's.sql", row, "db")


def test_a_statement_that_fails_says_how_far_the_file_got():
    said = failure_message("migration", "3.sql", 2, 4, 7, "(1146) no such table", 1, None, "db")
    assert said.startswith("migration 3.sql failed at statement 2 of 4 (line 7): (1146) no such table; statements 1 "
                           "to 1 had taken effect and stay")
    assert "It is not recorded as applied" in said
    lost = failure_message("migration", "3.sql", 1, 4, 1, "(2013) Lost connection", 0, "s1", "db", lost=True)
    assert "none of its statements had taken effect" in lost and "row 'started' in clockwork_schema_failures stays" in lost
    assert "snapshot s1 was taken right before it" in lost


# -- statements that reach another database ---------------------------------------------

@pytest.mark.parametrize("sql, databases", [
    ("SELECT * FROM other.t", ["other"]),
    ("SELECT u.id FROM users u JOIN orders o ON u.id = o.uid", []),
    ("INSERT INTO other.t (a) VALUES (1)", ["other"]),
    ("UPDATE t SET t.a = 1", []),
    ("UPDATE a, other.b SET a.x = b.y", ["other"]),
    ("SELECT EXTRACT(YEAR FROM t.d) FROM t", []),
    ("SELECT a.b.c FROM t", ["a"]),
    ("SELECT other.f(1)", ["other"]),
    ("GRANT SELECT ON other.* TO 'u'@'%'", ["other"]),
    ("GRANT ALL ON *.* TO u", ["*"]),
    ("GRANT ALL ON appdb.* TO u", []),
    ("CREATE DATABASE other", ["other"]),
    ("CREATE DATABASE IF NOT EXISTS appdb", []),
    ("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `other` /*!40100 DEFAULT CHARACTER SET utf8mb4 */", ["other"]),
    ("ALTER DATABASE CHARACTER SET utf8mb4", []),
    ("SELECT DATABASE()", []),
    ("USE other", ["USE"]),
    ("USE appdb", []),
    ("USE `appdb`", []),
    ("CREATE TABLE t (id INT, KEY k (id), FOREIGN KEY (id) REFERENCES other.p(id))", ["other"]),
    ("CREATE INDEX i ON other.t (a)", ["other"]),
    ("SELECT * FROM t WHERE t.x = 1", []),
    ("INSERT INTO t SELECT s.x FROM src s", []),
    ("RENAME TABLE a TO other.a", ["other"]),
    ("SET @@session.sql_mode = 'x'", []),
    ("SELECT 1.5, t.c FROM t", []),
    ("DELETE FROM t WHERE id IN (SELECT id FROM other.x)", ["other"]),
    ("ALTER TABLE t ADD COLUMN c INT AFTER b", []),
    ("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE t.a = t.a + 1", []),
    ("/*!40101 SET NAMES utf8 */", []),
    ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.x = 1", []),
    ("CREATE VIEW v AS SELECT a.x FROM t a", []),
    ("SELECT * FROM information_schema.columns WHERE table_name = 'x'", []),
    ("SELECT t.* FROM t", []),
    ("DROP TABLE IF EXISTS a, other.b", ["other"]),
    ("LOCK TABLES other.t WRITE", ["other"]),
    ("SELECT * FROM t1, t2 WHERE t1.a = t2.b", []),
    ("SELECT * FROM t AS x, other.y", ["other"]),
    ("SELECT * FROM `other`.`t`", ["other"]),
    ("SELECT * FROM appdb.t", []),
    ("SELECT * FROM AppDB.t", []),
    ("SELECT 'other.t' FROM t", []),
    ("SELECT * FROM t -- other.x\n WHERE 1", []),
    ("SELECT * FROM t # FROM other.x\n", []),
    ("SELECT * FROM t /* FROM other.x */", []),
    ("CALL other.p()", ["other"]),
    ("CALL p()", []),
    ("CREATE PROCEDURE p() BEGIN INSERT INTO other.t VALUES (1); END", ["other"]),
    ("DROP DATABASE other", ["other"]),
    ("SELECT TRIM(LEADING 'x' FROM t.name) FROM t", []),
    ("TRUNCATE TABLE other.t", ["other"]),
    ("ALTER TABLE t RENAME TO other.t", ["other"]),
    ("CREATE TABLE t LIKE other.t", ["other"]),
    ("CREATE TABLE t (LIKE other.t)", ["other"]),
    ("SELECT * FROM t WHERE a LIKE b.c", []),
    ("SELECT 1e3, 2.5e-3, .5 FROM t", []),
    ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id) ON UPDATE CASCADE ON DELETE CASCADE", []),
    ("SELECT * FROM t JOIN other.u USING (id)", ["other"]),
    ("INSERT INTO t VALUES ('a\\'b', \"c\"\"d\") ", []),
    ("CREATE EVENT other.e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", ["other"]),
])
def test_the_databases_a_statement_reaches_besides_the_connections(sql, databases):
    assert sorted(set(d for d, _what in foreign_databases(sql, "appdb"))) == sorted(databases)


def test_a_file_reaching_another_database_is_refused_naming_each_line_unless_cross_database():
    sql = "CREATE TABLE a (id INT);\nINSERT INTO other.t (id) VALUES (1);\nUSE other;\nGRANT ALL ON *.* TO x;\n"
    settings = {"database": "appdb", "cross_database": False}
    with pytest.raises(ClockworkError) as exc:
        refuse_text("migration", "3.sql", sql, settings)
    assert exc.value.msg == (
        "migration 3.sql reaches beyond database appdb (line 2: other.t names database other; line 3: USE other moves "
        "the session to database other, and the tracking rows and every later file with it; line 4: *.* names every "
        "database); a file applies to the connection's database: name no other one, or set cross_database: true on "
        "the connection if it is meant to. Nothing was applied.")
    refuse_text("migration", "3.sql", sql, dict(settings, cross_database=True))
    refuse_text("migration", "4.sql", "USE appdb;\nSELECT * FROM appdb.t;\n", settings)


# -- rehearsal and snapshots ------------------------------------------------------------

def test_a_snapshot_name_says_the_database_and_the_time_in_safe_characters():
    assert snapshot_name("shop", now=0, token="abc123") == "shop-19700101T000000Z-abc123"
    assert snapshot_name("my-db;`x`", now=0, token="t") == "my_db_x_-19700101T000000Z-t"


def test_the_newest_snapshots_of_a_database_are_kept_and_the_others_pruned():
    index = [{"snapshot": "s%d" % n, "database": "shop", "created": "2024-01-0%d" % n} for n in (3, 1, 2, 4)]
    index.append({"snapshot": "o1", "database": "other", "created": "2020-01-01"})
    kept, pruned = kept_and_pruned(index, "db", "shop", 2)
    assert sorted(pruned) == ["s1", "s2"]
    assert sorted(e["snapshot"] for e in kept) == ["o1", "s3", "s4"]
    assert kept_and_pruned(index, "db", "shop", 0)[1] == ["s1", "s2", "s3"], "the newest is always kept"


def test_a_copy_cannot_stand_in_for_a_database_a_file_names_itself():
    pending = [("migration", "2.sql", None, "CREATE TABLE a (id INT);\nINSERT INTO shop.a VALUES (1);\n", "c")]
    assert not_isolated(pending, "shop", False) == (
        "migration 2.sql line 2 names shop.a with its database, which on a copy is the real one")
    assert not_isolated([("migration", "3.sql", None, "INSERT INTO a SELECT * FROM other.b;\n", "c")], "shop", True) \
        == "migration 3.sql line 1 reaches another database, which a copy of shop does not hold"
    assert not_isolated([("migration", "4.sql", None, "UPDATE a SET a.x = 1;\n", "c")], "shop", False) is None
    assert own_qualified("SELECT * FROM `shop`.`t` JOIN u ON u.id = t.id", "shop") == ["shop.t"]
