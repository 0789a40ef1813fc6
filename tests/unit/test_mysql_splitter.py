"""The MySQL splitter on a named corpus: each file with the statements the mysql client sends
for it. tests/integration/test_mysql_splitter_oracle.py feeds the same CORPUS to the real
mariadb client and requires these statements from it too, so an expectation here cannot drift
from what the client does."""
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_splitter import (
    ClientCommandError, mysql_statements, statement_words)

# name -> (file, splitter options, [(line, statement)]). The options are the server's sql_mode.
CORPUS = {
    # The bug: a tab after -- starts a comment, so this is ONE statement, not DELETE FROM sessions.
    "tab_comment": (
        "DELETE FROM sessions\t--\told: ; DELETE FROM users\nWHERE expired = 1;\n", {},
        [(1, "DELETE FROM sessions\t\nWHERE expired = 1")]),
    "dash_comments": (
        "SELECT 1 -- space; SELECT 'no'\n;\nSELECT 2 --\tTAB; x\n;\nSELECT 3 --\x0bVT; x\n;\n"
        "SELECT 4 --\x0cFF; x\n;\nSELECT 5 --\rCR; x\n;\nSELECT 6 --\n;\nSELECT 7 --x; SELECT 8;\n"
        "--no space at the start of a statement; x\n   --nor after spaces; x\nSELECT 9;\n", {},
        [(1, "SELECT 1"), (3, "SELECT 2"), (5, "SELECT 3"), (7, "SELECT 4"), (9, "SELECT 5"), (11, "SELECT 6"),
         (13, "SELECT 7 --x"), (13, "SELECT 8"), (16, "SELECT 9")]),
    "hash_and_block_comments": (
        "# a comment; not a statement\nSELECT 1 # trailing; comment\n;\nSELECT/* a; b */2;\n"
        "SELECT 3 /* spans\ntwo; lines */ + 4;\n/* leading */ SELECT 5;\n"
        "SELECT 6; /* after */ SELECT 7;\n/* only; a comment */\n", {},
        [(2, "SELECT 1"), (4, "SELECT 2"), (5, "SELECT 3  + 4"), (7, "SELECT 5"), (8, "SELECT 6"), (8, "SELECT 7")]),
    # Versioned comments are SQL the server runs; the delimiter ends a statement inside one too.
    "versioned_comments": (
        "/*!40101 SET @saved = @@SESSION.sql_mode */;\nSELECT 1 /*!50100 + 1 */ /*M!100100 + 2 */;\n"
        "/*!50100 SELECT 3; */\n", {},
        [(1, "/*!40101 SET @saved = @@SESSION.sql_mode */"), (2, "SELECT 1 /*!50100 + 1 */ /*M!100100 + 2 */"),
         (3, "/*!50100 SELECT 3"), (3, "*/")]),
    "crlf": (
        "SELECT 1;\r\nSELECT\r\n  'a\r\nb';\r\n-- c\r\nDELIMITER //\r\nSELECT 3//\r\nDELIMITER ;\r\n", {},
        [(1, "SELECT 1"), (2, "SELECT\n  'a\nb'"), (7, "SELECT 3")]),
    "strings_with_escapes": (
        "SELECT 'it\\'s; fine', \"say \\\"hi\\\"; ok\", `a;b`;\n"
        "SELECT 'doubled '' ;', \"doubled \"\" ;\", `back``tick;`;\n"
        "SELECT 'ends in a backslash \\\\';SELECT 2;\n"
        "SELECT 'a -- not; # a comment /* no */';\n"
        "SELECT \"new\nline;\";\n"
        "SELECT '\u00e9 ; \U0001F600', 'tab\there';\n"
        "SELECT 'a backslash ending a line \\\nis dropped';\n", {},
        [(1, "SELECT 'it\\'s; fine', \"say \\\"hi\\\"; ok\", `a;b`"),
         (2, "SELECT 'doubled '' ;', \"doubled \"\" ;\", `back``tick;`"),
         (3, "SELECT 'ends in a backslash \\\\'"), (3, "SELECT 2"),
         (4, "SELECT 'a -- not; # a comment /* no */'"), (5, "SELECT \"new\nline;\""),
         (7, "SELECT '\u00e9 ; \U0001F600', 'tab\there'"), (8, "SELECT 'a backslash ending a line \nis dropped'")]),
    # \' escapes the quote: the string runs to the end of the file, which the client sends as it is.
    "backslash_escapes": (
        "SELECT 'C:\\dir\\';SELECT 2;\n", {}, [(1, "SELECT 'C:\\dir\\';SELECT 2;")]),
    "no_backslash_escapes": (
        "SELECT 'C:\\dir\\';SELECT 2;\n", {"backslash_escapes": False}, [(1, "SELECT 'C:\\dir\\'"), (1, "SELECT 2")]),
    "ansi_quotes": (
        "SELECT \"a\\\"; SELECT 2;\n", {"ansi_quotes": True}, [(1, "SELECT \"a\\\""), (1, "SELECT 2")]),
    "procedure_with_delimiter": (
        "CREATE TABLE t (id INT);\nDELIMITER //\nCREATE PROCEDURE p(IN n INT)\nBEGIN\n"
        "  -- a comment; inside\n  INSERT INTO t VALUES (n); -- trailing\n"
        "  SELECT 'x;y' FROM t;\nEND//\nDELIMITER ;\nCALL p(1);\n", {},
        [(1, "CREATE TABLE t (id INT)"),
         (3, "CREATE PROCEDURE p(IN n INT)\nBEGIN\n  \n  INSERT INTO t VALUES (n); \n  SELECT 'x;y' FROM t;\nEND"),
         (10, "CALL p(1)")]),
    "trigger_with_delimiter": (
        "delimiter $$\nCREATE TRIGGER touch BEFORE UPDATE ON t FOR EACH ROW\nBEGIN\n"
        "  SET NEW.id = NEW.id + 1; # bump; it\nEND$$\ndelimiter ;\nUPDATE t SET id = 2;\n", {},
        [(2, "CREATE TRIGGER touch BEFORE UPDATE ON t FOR EACH ROW\nBEGIN\n  SET NEW.id = NEW.id + 1; \nEND"),
         (7, "UPDATE t SET id = 2")]),
    # The client knows nothing of BEGIN ... END: without a DELIMITER the body is split.
    "procedure_without_delimiter": (
        "CREATE PROCEDURE q() BEGIN SELECT 1; END;\n", {},
        [(1, "CREATE PROCEDURE q() BEGIN SELECT 1"), (1, "END")]),
    # Any case, leading spaces; the argument ends at a space (a tab is part of it) or is quoted.
    "delimiter_forms": (
        "  delimiter ;;  \nSELECT 1;;\nDeLiMiTeR 'a b'\nSELECT 2 a b\n"
        "DELIMITER $$ the rest is ignored\nSELECT 3$$\nDELIMITER //\t\nSELECT 4//\t\nDELIMITER ;\nSELECT 5;\n", {},
        [(2, "SELECT 1"), (4, "SELECT 2"), (6, "SELECT 3"), (8, "SELECT 4"), (10, "SELECT 5")]),
    # DELIMITER is a command only as the first thing of a statement: after one on the same line
    # the client takes it, and the next line, as the next statement's text.
    "delimiter_after_a_statement": (
        "SELECT 1; DELIMITER //\nSELECT 2//\n", {}, [(1, "SELECT 1"), (1, "DELIMITER //SELECT 2//")]),
    "byte_order_mark": ("\ufeffSELECT 1;\n", {}, [(1, "SELECT 1")]),
    "client_go_and_clear": (
        "SELECT 1\\g SELECT 2 \\c SELECT 3; SELECT \\N;\n", {}, [(1, "SELECT 1"), (1, "SELECT 3"), (1, "SELECT \\N")]),
    "unterminated_comment": ("SELECT 1 /* never closed; SELECT 2;\n", {}, [(1, "SELECT 1")]),
    "no_final_newline": ("SELECT 1;\nSELECT 2", {}, [(1, "SELECT 1"), (2, "SELECT 2")]),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus(name):
    sql, options, expected = CORPUS[name]
    assert [(line, text) for line, text, _words in mysql_statements(sql, **options)] == expected


def test_first_words_are_what_the_server_runs():
    found = mysql_statements("/*!50003 CREATE*/ /*!50017 DEFINER=`a`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x "
                             "FOR EACH ROW SET @a = 1 */;\n/*M!100100 START TRANSACTION */;\n"
                             "-- COMMIT; in a comment\nrollback to s1;\n")
    assert [words for _line, _text, words in found] == [["CREATE", "DEFINER"], ["START", "TRANSACTION"],
                                                        ["ROLLBACK", "TO"]]
    assert statement_words("SELECT 1 /*M!100100 , 2 */", 3) == ["SELECT"]


def test_the_engines_statements_keep_their_shape():
    """What engine_mysql's tests expect of its splitter holds for this one (lines, words)."""
    sql = ("-- a comment; not a statement\n"
           "CREATE TABLE `a;b` (id INT, note VARCHAR(20) DEFAULT 'x;y');\n"
           "# another; comment\n"
           "INSERT INTO `a;b` VALUES (1, 'it\\'s; fine'), (2, \"dq;\");\n"
           "/* block; comment */ UPDATE `a;b` SET note = 'z' WHERE id = 1;\n"
           "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\nDELIMITER ;\nCALL p();\n")
    found = mysql_statements(sql)
    assert [(line, words) for line, _text, words in found] == [
        (2, ["CREATE", "TABLE"]), (4, ["INSERT", "INTO"]), (5, ["UPDATE", "A"]), (7, ["CREATE", "PROCEDURE"]),
        (9, ["CALL", "P"])]
    assert found[3][1] == "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END"


def test_use_selects_a_database_as_the_client_does():
    assert mysql_statements("USE shop;\nuse `my db`\nSELECT 1;\n") == [
        (1, "USE `shop`", ["USE", "SHOP"]), (2, "USE `my db`", ["USE", "MY"]), (3, "SELECT 1", ["SELECT"])]


@pytest.mark.parametrize("sql, line, words", [
    ("SELECT 1;\nsource other.sql\n", 2, "`source other.sql` is a command of the mysql client"),
    ("SELECT 1;\n\\! rm -rf /\n", 2, "\\! (system) is a command of the mysql client"),
    ("SELECT 1;\nSELECT 2\\q\n", 2, "\\q (quit) is a command of the mysql client"),
    ("quit\n", 1, "`quit` is a command of the mysql client"),
    ("SELECT 1;\nDELIMITER\nSELECT 2;\n", 2, "DELIMITER must be followed by the delimiter"),
    ("DELIMITER \\\\\n", 1, "a DELIMITER cannot contain a backslash"),
    ("use\n", 1, "USE must be followed by a database name"),
    ("SELECT 1;\nSELECT '\0';\n", 2, "a NUL character"),
])
def test_what_only_the_client_can_do_is_refused_naming_the_line(sql, line, words):
    with pytest.raises(ClientCommandError) as raised:
        mysql_statements(sql)
    assert raised.value.line == line
    assert raised.value.msg.startswith("line %d: " % line) and words in raised.value.msg
    assert isinstance(raised.value, ClockworkError)


def test_a_command_inside_a_string_or_comment_is_text():
    assert [text for _line, text, _words in mysql_statements("SELECT '\nsource x\n\\!';\n/*\nquit\n*/ SELECT 2;")] \
        == ["SELECT '\nsource x\n\\!'", "SELECT 2"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from(list("SELECT 1;'\"`\\#-*/!M\n\r\t\x0b\x01 DELIMITER$ab\u00e9")), max_size=80),
       st.booleans(), st.booleans())
def test_any_text_splits_or_names_a_client_command(sql, backslash_escapes, ansi_quotes):
    try:
        found = mysql_statements(sql, backslash_escapes, ansi_quotes)
    except ClientCommandError as exc:
        assert 1 <= exc.line <= sql.count("\n") + 1
        return
    for line, text, words in found:
        assert 1 <= line <= sql.count("\n") + 1
        assert text and text == text.strip(" \t\n\v\f\r")
        assert words == statement_words(text)


def test_a_file_that_changes_sql_mode_splits_as_the_server_status_says():
    """The client reads NO_BACKSLASH_ESCAPES and ANSI_QUOTES from the server's status after each
    statement; `execute` runs each statement as it is found and hands that status back."""
    sql = "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'C:\\';\nSET sql_mode = 'ANSI_QUOTES';SELECT \"\\\";SELECT 3;"
    ran = []

    def execute(line, text, words):
        ran.append((line, text, words))
        return {"SET sql_mode = 'NO_BACKSLASH_ESCAPES'": 512, "SET sql_mode = 'ANSI_QUOTES'": 32768}.get(text)
    found = mysql_statements(sql, execute=execute)
    assert ran == found
    assert [text for _line, text, _words in found] == [
        "SET sql_mode = 'NO_BACKSLASH_ESCAPES'", "SELECT 'C:\\'", "SET sql_mode = 'ANSI_QUOTES'", "SELECT \"\\\"",
        "SELECT 3"]
    # Without the server's word the backslash escapes the quote, and the string runs on.
    assert [text for _line, text, _words in mysql_statements(sql)][1:] == [
        "SELECT 'C:\\';\nSET sql_mode = 'ANSI_QUOTES';SELECT \"\\\";SELECT 3;"]
