"""The MySQL splitter against its oracle, the real mariadb client (MariaDB 10.11, the local test
image): every file of the named corpus (tests/unit/test_mysql_splitter.py) and a few hundred
files that Hypothesis builds from fragments go to `mariadb -vv < file` inside a MariaDB
container, and the statements the client echoes must be those the splitter returns. Then the
file that started it all runs statement by statement through PyMySQL on a real server: only the
expired sessions go.

The client echoes each statement it sends as "--------------\\n<statement>\\n--------------\\n"
(com_print), after trimming what it trims (spaces and control characters at the end); the one
thing normalised here is the space the client puts where a comment ended at the very start of a
statement ("/* c */SELECT 1" is sent as " SELECT 1"), which the splitter does not keep.

The files go into the container as one tar and one `docker exec` runs the client on each, so a
few hundred files take a few seconds."""
import importlib.util
import io
import os
import re
import subprocess
import tarfile
import time
import uuid

import pymysql
from pymysql.constants import CLIENT
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st

import helpers
from helpers import LOCAL_IMAGES, ROOT, docker, remove_stack

from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_splitter import (
    ClientCommandError, mysql_statements)

MARIADB_IMAGE = LOCAL_IMAGES["mariadb_image"]
ROOT_PASSWORD = "spl1t ter"  # pragma: allowlist secret
ECHO = re.compile(r"(?ms)^--------------\n(.*?)\n--------------\n")
FILE_MARK = "@@@ file "
# sql_mode of the server, as the splitter's options; the client reads it from the server's status.
MODES = {
    "default": ({}, None),
    "no_backslash_escapes": ({"backslash_escapes": False}, "NO_BACKSLASH_ESCAPES"),
    "ansi_quotes": ({"ansi_quotes": True}, "ANSI_QUOTES"),
}


def _unit_corpus():
    path = os.path.join(ROOT, "tests", "unit", "test_mysql_splitter.py")
    spec = importlib.util.spec_from_file_location("corpus_of_the_splitter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CORPUS


CORPUS = _unit_corpus()


@pytest.fixture(scope="module")
def server():
    """A MariaDB container of the local image (its own stack name, removed at the end), ready
    on TCP; yields (container, published port)."""
    stack = "cwtest-" + uuid.uuid4().hex[:8]
    helpers.STACKS_SEEN.add(stack)
    name = stack + "-db"
    try:
        docker("run", "-d", "--name", name, "--label", "io.clockwork.stack=" + stack, "--label",
               "io.clockwork.resource=db", "-e", "MARIADB_ROOT_PASSWORD=" + ROOT_PASSWORD, "-p", "127.0.0.1::3306",
               MARIADB_IMAGE)
        deadline = time.monotonic() + 90
        while subprocess.run(["docker", "exec", name, "healthcheck.sh"], capture_output=True).returncode:
            assert time.monotonic() < deadline, "MariaDB did not start: " + docker("logs", name, check=False)
            time.sleep(0.5)
        port = int(docker("port", name, "3306/tcp").splitlines()[0].rsplit(":", 1)[1])
        yield name, port
    finally:
        remove_stack(stack)


def client_statements(container, files):
    """[[statement the client sent, ...] per file] for files [(sql, mode)]: all of them written
    into the container as one tar, then one exec runs `mariadb -vv --force` on each, as root
    over the socket, with the mode set by --init-command."""
    folder = "/tmp/split-" + uuid.uuid4().hex[:8]
    script = ["cd %s" % folder]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(folder.lstrip("/") + "/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for number, (sql, mode) in enumerate(files):
            add("%d.sql" % number, sql.encode("utf-8"))
            init = "--init-command='SET SESSION sql_mode=%s' " % MODES[mode][1] if MODES[mode][1] else ""
            script.append("printf '%s%d\\n'" % (FILE_MARK, number))
            script.append("mariadb -u root --force -vv --default-character-set=utf8mb4 %s< %d.sql 2>/dev/null"
                          % (init, number))
        add("run.sh", ("\n".join(script) + "\n").encode("utf-8"))
    subprocess.run(["docker", "cp", "-", container + ":/"], input=archive.getvalue(), check=True,
                   capture_output=True, timeout=120)
    try:
        run = subprocess.run(["docker", "exec", container, "sh", folder + "/run.sh"], capture_output=True,
                             timeout=600)
    finally:
        subprocess.run(["docker", "exec", container, "rm", "-rf", folder], capture_output=True, timeout=60)
    output = run.stdout.decode("utf-8")
    chunks = re.split(r"(?m)^%s(\d+)\n" % re.escape(FILE_MARK), output)
    found = dict((int(number), [s.lstrip(" ") for s in ECHO.findall(chunk)])
                 for number, chunk in zip(chunks[1::2], chunks[2::2]))
    assert sorted(found) == list(range(len(files))), "the client did not run every file:\n" + output[-2000:]
    return [found[number] for number in range(len(files))]


def splitter_statements(sql, mode):
    return [text for _line, text, _words in mysql_statements(sql, **MODES[mode][0])]


def test_the_named_corpus_is_what_the_client_sends(server):
    container, _port = server
    names = sorted(CORPUS)
    files = [(CORPUS[name][0], next(mode for mode, (options, _sql_mode) in MODES.items()
                                    if options == CORPUS[name][1])) for name in names]
    sent = client_statements(container, files)
    for name, statements in zip(names, sent):
        assert statements == [text for _line, text in CORPUS[name][2]], name


# Fragments a file is made of: statements, strings with every escape, comments of every form
# with ; in them, whitespace and control characters, terminators, DELIMITER lines. No fragment
# has a backslash that could meet the next fragment, `?`, or a command word of the client.
STATEMENTS = ["SELECT 1", "SELECT 'a;b'", 'SELECT "c;d"', "SELECT `e;f`", "DO 1", "SELECT 'x' AS y",
              "SELECT 1 /*! , 2 */", "SELECT 3 /*!99999 , 4 */", "SELECT 5 /*M!100100 , 6 */", "/*!50100 SELECT 7; */",
              "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", "BEGIN", "END", "SELECT\n  8", "SELECT 9 -"]
STRINGS = ["'it\\'s; x'", "'a\\\\'", '"q\\"q;"', "'dq''s;'", '"dd""d;"', "`b``t;`", "'multi\nline;'", "'\\0\\%\\Z'",
           "'ends with a backslash \\\nnext line'", "'-- ; # /* */'", '"DELIMITER //"', "'\nDELIMITER $$\n'",
           "'\u00e9\u00a0\U0001F600'", "'", '"', "`", "'\r'"]
COMMENTS = ["-- c;d\n", "--\tc;d\n", "--\x0bc;\n", "--\x0cc;\n", "--\rc;\n", "--\n", "--", "--x;y\n", "# h;i\n",
            "#", "/* b;c */", "/* m\nl;n */", "/**/", "/*/ x */", "/* nested /* x */", "/* ", "*/", "/*! ;v */",
            "/*M! ; */"]
SPACES = [" ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x01", "\x1f", "\x7f", "\u00a0", "\u00e9",
          "\U0001F600"]
TERMINATORS = [";", ";", ";", "//", "$$", ";;", "\\g", "\\G", "\\c", "\\N", "\\x"]
DELIMITER_LINES = ["\nDELIMITER //\n", "\ndelimiter $$\n", "\nDELIMITER ;;\n", "\nDELIMITER ;\n", "\nDELIMITER ;\n",
                   "DELIMITER //\n", "\n  DeLiMiTeR 'a b'\n", "\nDELIMITER //\t\n", "\nDELIMITER $$ x\n", "; DELIMITER //\n"]
PIECE = st.one_of(*[st.sampled_from(kind) for kind in (STATEMENTS, STRINGS, COMMENTS, SPACES)])
# A file: statements (pieces, then a terminator) and DELIMITER lines, as flat fragments.
UNIT = st.one_of(st.tuples(st.lists(PIECE, min_size=1, max_size=5), st.sampled_from(TERMINATORS)).map(
    lambda unit: unit[0] + [unit[1]]), st.sampled_from(DELIMITER_LINES).map(lambda line: [line]))
FILE = st.tuples(st.lists(UNIT, min_size=2, max_size=10).map(lambda units: sum(units, [])),
                 st.sampled_from(sorted(MODES)), st.booleans())
# The same with statements that change the two modes the client reads from the server's status.
SQL_MODES = ["SET sql_mode = 'NO_BACKSLASH_ESCAPES'", "SET sql_mode = 'ANSI_QUOTES'", "SET sql_mode = DEFAULT",
             "SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'", "SET sql_mode = ''"]
# A mode change, then a string whose end depends on it.
MODE_UNIT = st.tuples(st.sampled_from(SQL_MODES), st.sampled_from([";", ";\n", "//", "$$", "\\g", " -- x\n;"]),
                      st.sampled_from(["SELECT 'it\\'s; x';", "SELECT 'C:\\';", 'SELECT "q\\"q;";', 'SELECT "a\\";',
                                       "SELECT 'a\\\\';"])).map(list)
FILE_CHANGING_MODE = st.tuples(st.lists(st.one_of(MODE_UNIT, UNIT, UNIT), min_size=2, max_size=12).map(
    lambda units: sum(units, [])), st.sampled_from(sorted(MODES)), st.booleans())


def joined(fragments, crlf):
    sql = "".join(fragments)
    return sql.replace("\n", "\r\n") if crlf else sql


def usable(sql, mode):
    """A file the client runs through: no --- (the echo's frame is made of dashes) and nothing
    the splitter refuses as a client command (the client would run it, not send it)."""
    if "---" in sql:
        return False
    try:
        splitter_statements(sql, mode)
    except ClientCommandError:
        return False
    return True


def generated_files(count, files=FILE):
    """`count` examples of `files`, the same ones on every run (derandomize)."""
    found = []

    @settings(max_examples=count, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(files)
    def collect(example):
        fragments, mode, crlf = example
        assume(usable(joined(fragments, crlf), mode))
        found.append(example)
    collect()
    return found


def smallest_difference(container, fragments, mode, crlf):
    """Drop fragments one at a time while the client and the splitter still disagree."""
    step = 0
    while step < len(fragments):
        fewer = fragments[:step] + fragments[step + 1:]
        sql = joined(fewer, crlf)
        if fewer and usable(sql, mode) and \
                client_statements(container, [(sql, mode)])[0] != splitter_statements(sql, mode):
            fragments = fewer
        else:
            step += 1
    return fragments


def test_generated_files_split_as_the_client_splits_them(server):
    container, _port = server
    examples = generated_files(300)
    files = [(joined(fragments, crlf), mode) for fragments, mode, crlf in examples]
    assert len(set(files)) >= 200, "Hypothesis made only %d distinct files" % len(set(files))
    started = time.monotonic()
    sent = client_statements(container, files)
    elapsed = time.monotonic() - started
    differing = [index for index, ((sql, mode), statements) in enumerate(zip(files, sent))
                 if statements != splitter_statements(sql, mode)]
    if differing:
        fragments, mode, crlf = examples[differing[0]]
        smallest = joined(smallest_difference(container, fragments, mode, crlf), crlf)
        pytest.fail("%d of %d files split differently; the smallest form of the first (%s):\n%r\n"
                    "client:   %r\nsplitter: %r" % (len(differing), len(files), mode, smallest,
                                                    client_statements(container, [(smallest, mode)])[0],
                                                    splitter_statements(smallest, mode)))
    assert sum(len(statements) for statements in sent) > len(files), "the files held hardly any statement"
    assert elapsed < 60, "the client took %.1fs for %d files" % (elapsed, len(files))


def login(port, client_flag=0):
    deadline = time.monotonic() + 60
    while True:
        try:
            return pymysql.connect(host="127.0.0.1", port=port, user="root", password=ROOT_PASSWORD,
                                   autocommit=True, charset="utf8mb4", connect_timeout=5, client_flag=client_flag)
        except pymysql.err.OperationalError:
            assert time.monotonic() < deadline, "no login to the MariaDB container"
            time.sleep(0.5)


def statements_run_on(port, sql, mode):
    """The splitter's statements with each one run on a session of the server as it is found (errors
    ignored, as --force does), the modes read back from the server's status as the client reads them.
    The session takes several statements in one, as the client's does: after DELIMITER ;; a
    statement holding a ; runs whole there (PyMySQL alone refuses it, as the engine does)."""
    conn = login(port, client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        if MODES[mode][1]:
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = '%s'" % MODES[mode][1])

        def execute(_line, text, _words):
            with conn.cursor() as cursor:
                try:
                    cursor.execute(text)
                    while cursor.nextset():
                        pass
                except pymysql.err.MySQLError:
                    pass
            return conn.server_status
        return [text for _line, text, _words in mysql_statements(sql, execute=execute, **MODES[mode][0])]
    finally:
        conn.close()


def test_files_that_change_sql_mode_split_as_the_client_splits_them(server):
    """SET sql_mode in the middle of a file changes where a string ends for the client (it reads the
    server's status after each statement); the splitter, told the status after each statement it
    hands out, follows."""
    container, port = server
    examples = [(joined(fragments, crlf), mode) for fragments, mode, crlf in generated_files(150, FILE_CHANGING_MODE)]
    changing = [(sql, mode) for sql, mode in examples if any(change in sql for change in SQL_MODES)]
    assert len(changing) >= 100, "only %d files change sql_mode" % len(changing)
    differing, compared = [], 0
    for (sql, mode), statements in zip(changing, client_statements(container, changing)):
        try:
            found = statements_run_on(port, sql, mode)
        except ClientCommandError:
            continue   # a client command once the mode changed: the client runs it, it sends nothing
        compared += 1
        if found != statements:
            differing.append((sql, mode, statements, found))
    assert compared >= 90
    assert not differing, "%d of %d files split differently, the first (%s):\n%r\nclient:   %r\nsplitter: %r" % (
        (len(differing), compared) + differing[0][1:2] + differing[0][:1] + tuple(differing[0][2:]))


def test_the_tab_comment_file_deletes_only_expired_sessions(server):
    """The file a naive splitter turns into DELETE FROM sessions (every row) plus a second DELETE:
    statement by statement through PyMySQL, as the engine runs a migration."""
    _container, port = server
    conn = login(port)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE splitter")
            cursor.execute("USE splitter")
            cursor.execute("CREATE TABLE sessions (id INT PRIMARY KEY, expired TINYINT NOT NULL)")
            cursor.execute("CREATE TABLE users (id INT PRIMARY KEY, expired TINYINT NOT NULL)")
            cursor.execute("INSERT INTO sessions VALUES (1, 1), (2, 0), (3, 1), (4, 0)")
            cursor.execute("INSERT INTO users VALUES (1, 1), (2, 0)")
            sql = CORPUS["tab_comment"][0]
            statements = mysql_statements(sql)
            assert len(statements) == 1
            for _line, text, _words in statements:
                cursor.execute(text)
            cursor.execute("SELECT id FROM sessions ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == [2, 4], "the unexpired sessions must stay"
            cursor.execute("SELECT id FROM users ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == [1, 2], "users is only named in the comment"

            # A procedure and a trigger, each given with DELIMITER, run as the server needs them.
            for name in ("procedure_with_delimiter", "trigger_with_delimiter"):
                for _line, text, _words in mysql_statements(CORPUS[name][0]):
                    cursor.execute(text)
                    while cursor.nextset():
                        pass
            cursor.execute("SELECT id FROM t")
            assert [row[0] for row in cursor.fetchall()] == [3], "CALL p(1) inserts 1, the trigger makes 2 into 3"
    finally:
        conn.close()
