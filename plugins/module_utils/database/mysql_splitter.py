# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statements of a MySQL file, split exactly as the mysql/mariadb client splits what it reads
from a file (`mariadb < file.sql`), so that a migration does on the server what it does when a
person runs it with the client, and nothing else.

The client reads line by line and keeps a few bits of state across lines (the open quote, an
open /* comment, the delimiter); each line goes through the same cases, in the same order, as
in the client (MariaDB 10.11 client/mysql.cc, read_and_execute and add_line), checked against
the real client by tests/integration/test_mysql_splitter_oracle.py:

- `-- ` comments need whitespace (space, tab, \\v, \\f, \\r) or the end of the line after the two
  dashes, except at the start of a statement, where `--` alone starts one; `#` comments; both
  run to the end of the line and are not sent.
- /* */ comments are not sent; the client puts a space where one was, when a word follows at once.
  /*! */ and /*M! */ comments are SQL the server runs and stay; the delimiter ends a statement
  inside them too (as in the client: `/*!50100 SELECT 1; */` is two statements).
- 'single', "double" and `backtick` quotes; a backslash escapes the next character in the first
  two (not with NO_BACKSLASH_ESCAPES, nor in "" with ANSI_QUOTES), a doubled quote is a quote.
  A backslash at the very end of a line inside a string is dropped, as the client drops it.
- A DELIMITER line (any case, the first thing of a statement) sets the delimiter, up to the first
  space, or quoted; at most 15 characters, no backslash. BEGIN ... END bodies need one, as with
  the client: the client knows nothing of BEGIN.
- CRLF files: a \\r before each \\n is dropped. A UTF-8 byte-order mark opening the file is skipped.
- Characters other than ASCII are never special (the client reads utf8mb4, as the engine does).

The other commands of the client (\\g and go send a statement, \\c and clear drop it, use selects
a database) act as in the client; the rest (source, system, quit, ...) have no meaning outside
it and are refused with ClientCommandError, which names the line.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

SPACE = " \t\n\v\f\r"                                   # my_isspace() of the client's character set
NOT_GRAPH = "".join(chr(code) for code in range(33)) + "\x7f"   # what the client trims off a statement's end
QUOTES = "'\"`"
DELIMITER_WORD = "delimiter"
MAX_DELIMITER = 15          # the client keeps a delimiter in char[16]
MAX_COMMAND_LINE = 255      # and a command's line in char[256]
# The client's commands (10.11): name -> (one-character form, whether it takes an argument).
COMMANDS = {
    "?": ("?", True), "charset": ("C", True), "clear": ("c", False), "connect": ("r", True),
    "delimiter": ("d", True), "edit": ("e", False), "ego": ("G", False), "exit": ("q", False),
    "go": ("g", False), "help": ("h", True), "nopager": ("n", False), "notee": ("t", False),
    "nowarning": ("w", False), "pager": ("P", True), "print": ("p", False), "prompt": ("R", True),
    "quit": ("q", False), "rehash": ("#", False), "sandbox": ("-", False), "source": (".", True),
    "status": ("s", False), "system": ("!", True), "tee": ("T", True), "use": ("u", True),
    "warnings": ("W", False),
}
SHORT_COMMANDS = dict((short, name) for name, (short, _takes) in COMMANDS.items() if name != "exit")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# The server's status flags the client reads the two modes from (MariaDB's mysql_com.h).
SERVER_STATUS_NO_BACKSLASH_ESCAPES = 512
SERVER_STATUS_ANSI_QUOTES = 32768
VERSIONED = re.compile(r"/\*M?!\d*|\*/")   # the marks of a versioned comment, around SQL that runs


NOT_SQL = ("is a command of the mysql client, not SQL: clockwork sends a file's statements to the server, and of "
           "the client's commands it takes only DELIMITER, USE, go (\\g) and clear (\\c)")


class ClientCommandError(ClockworkError):
    """A command of the mysql client that means nothing outside it (source, system, quit ...),
    or a DELIMITER line the client refuses. `line` is the file's line."""

    def __init__(self, line, msg):
        super(ClientCommandError, self).__init__("line %d: %s" % (line, msg))
        self.line = line


def statement_words(text, count=2):
    """The first `count` words of a statement the splitter returned, upper-cased: what the server
    runs, so the marks of a versioned comment (/*!50003 CREATE */) are not words."""
    return [word.upper() for word in WORD.findall(VERSIONED.sub(" ", text))[:count]]


def mysql_statements(sql, backslash_escapes=True, ansi_quotes=False, execute=None):
    """[(line, text, [first two words, upper-cased])] of each statement the mysql client sends
    to the server when it reads `sql` from a file: `line` is the 1-based line where the statement
    starts, `text` what the client sends (comments out, versioned comments in, no delimiter),
    without the surrounding whitespace. backslash_escapes=False is the server's sql_mode
    NO_BACKSLASH_ESCAPES, ansi_quotes=True its ANSI_QUOTES (both change where a string ends).

    The client runs each statement before it reads on, and reads those two modes from the
    server's status after each one, so a file that changes sql_mode splits differently after
    that. `execute(line, text, words)`, when given, is called the same way, with each statement
    as it is found; it returns the server's status flags after running it (PyMySQL's
    connection.server_status), or None when they did not change."""
    splitter = _Splitter(backslash_escapes, ansi_quotes, execute)
    lines = sql.split("\n")
    if lines and lines[0].startswith(u"\ufeff"):
        lines[0] = lines[0][1:]
    last = len(lines) - 1
    for index, line in enumerate(lines):
        if index == last and not line:
            break   # the file ended with a newline
        if index < last and line.endswith("\r"):
            line = line[:-1]   # the client drops the \r of a \r\n, not that of an unterminated last line
        splitter.read_line(index + 1, line)
    splitter.send()
    return splitter.statements


def _is_delimiter_command(text):
    return len(text) >= len(DELIMITER_WORD) and text[:len(DELIMITER_WORD)].lower() == DELIMITER_WORD


def _argument(line):
    """The client's get_arg(): the argument after the command word (or after \\x), up to a space,
    or quoted (a doubled quote or a backslash escapes); None when there is none."""
    i, size = 0, len(line)
    while i < size and line[i] in SPACE:
        i += 1
    short = line[i:i + 1] == "\\"
    if short:
        i += 2
    else:
        while i < size and line[i] not in SPACE:
            i += 1
    while i < size and line[i] in SPACE:
        i += 1
    if i >= size:
        return None
    quote = None
    if line[i] in QUOTES:
        quote, i = line[i], i + 1
    found = []
    while i < size:
        char = line[i]
        if char == "\\" and i + 1 < size:
            found.append(line[i + 1])
            i += 2
        elif not short and quote and char == quote and line[i + 1:i + 2] == quote:
            found.append(quote)
            i += 2
        elif char == (quote or " "):
            quote = None
            break
        else:
            found.append(char)
            i += 1
    return "".join(found) if found and not quote else None


def _named_command(text, delimiter):
    """The client's find_command(name): the command a line (or a statement at its delimiter)
    is, when its first word names one; None when it is SQL."""
    name = text.lstrip(SPACE)
    if "\\g" in name or (delimiter in name and not _is_delimiter_command(name)):
        return None
    ends = [at for at in (name.find(" "), name.find("\t")) if at >= 0]
    word, has_argument = name, False
    if ends:
        word, has_argument = name[:min(ends)], bool(name[min(ends):].lstrip(SPACE))
    command = COMMANDS.get(word.lower())
    if command is None or (has_argument and not (command[1] and _argument(name) is not None)):
        return None
    return word.lower()


class _Splitter(object):
    """The client's reading state: the statement so far, the open quote, an open /* comment
    and the delimiter, carried from line to line."""

    def __init__(self, backslash_escapes, ansi_quotes, execute):
        self.backslash_escapes, self.ansi_quotes, self.execute = backslash_escapes, ansi_quotes, execute
        self.statements, self.buffer, self.start = [], [], None
        self.in_string, self.comment, self.delimiter = "", False, ";"
        self.number = 0

    def send(self):
        """The client's com_go(): the statement, trimmed at its end, unless nothing is left."""
        text = "".join(self.buffer).rstrip(NOT_GRAPH)
        if text:
            self.emit(text.lstrip(" "))
        self.clear()

    def emit(self, text):
        """A statement the client sends: kept, and run when the caller runs them as they come."""
        statement = (self.start or self.number, text, statement_words(text))
        self.statements.append(statement)
        if self.execute is not None:
            status = self.execute(*statement)
            if status is not None:
                self.backslash_escapes = not status & SERVER_STATUS_NO_BACKSLASH_ESCAPES
                self.ansi_quotes = bool(status & SERVER_STATUS_ANSI_QUOTES)

    def clear(self):
        self.buffer, self.start = [], None

    def command(self, name, text):
        """Run a client command found on a line or at a delimiter, as far as it means anything
        to statements sent to a server."""
        if name == "delimiter":
            delimiter = _argument(text[:MAX_COMMAND_LINE])
            if not delimiter:
                raise ClientCommandError(self.number, "DELIMITER must be followed by the delimiter")
            if "\\" in delimiter:
                raise ClientCommandError(self.number, "a DELIMITER cannot contain a backslash")
            self.delimiter = delimiter[:MAX_DELIMITER]
            self.clear()
        elif name in ("go", "ego"):
            self.send()
        elif name == "clear":
            self.clear()
        elif name == "use":
            database = _argument(text)
            if not database:
                raise ClientCommandError(self.number, "USE must be followed by a database name")
            # the client selects it (COM_INIT_DB); USE does the same on the server
            self.emit("USE `%s`" % database.replace("`", "``"))
            self.clear()
        else:
            raise ClientCommandError(self.number, "`%s` %s" % (text.strip()[:40], NOT_SQL))

    def read_line(self, number, line):
        """read_and_execute(): a line that is a command when no statement has begun, else add_line()."""
        self.number = number
        if "\0" in line:
            raise ClientCommandError(number, "a NUL character, which the mysql client refuses in a file")
        if not self.buffer and not self.comment and not self.in_string:
            name = _named_command(line, self.delimiter)
            if name:
                self.command(name, line)
                return
        self.add_line(line)

    def _flush(self, out):
        self.buffer.extend(out)
        del out[:]

    def _keep(self, out, chars):
        if self.start is None and chars.strip(SPACE):
            self.start = self.number
        out.extend(chars)

    def add_line(self, line):  # noqa: C901  (one case per branch of the client's add_line)
        if not line and not self.buffer:
            return
        out, need_space, server_comment = [], False, False
        pos, size = 0, len(line)
        while pos < size:
            char = line[pos]
            following = line[pos + 1:pos + 2]
            if char in SPACE and not out and not self.buffer:
                pos += 1   # no space opens a statement
                continue
            if ord(char) > 127:   # a multi-byte character, taken as it is
                if not self.comment:
                    self._keep(out, char)
                pos += 1
                continue
            if (char == "\\" and not self.comment and self.in_string != "`"
                    and not (self.in_string == '"' and self.ansi_quotes)
                    and not (self.in_string and not self.backslash_escapes)):
                pos += 1
                if pos >= size:
                    break   # a backslash ending the line is dropped
                escaped = line[pos]
                if self.in_string or escaped == "N" or escaped not in SHORT_COMMANDS:
                    self._keep(out, "\\" + escaped)   # an escape, \N (NULL), or an unknown command kept
                else:
                    self._flush(out)
                    name = SHORT_COMMANDS[escaped]
                    if name not in ("go", "ego", "clear"):
                        raise ClientCommandError(self.number, "\\%s (%s) %s" % (escaped, name, NOT_SQL))
                    self.command(name, "")
                pos += 1
                continue
            if not self.comment and not self.in_string and line.startswith(self.delimiter, pos):
                pos += len(self.delimiter)
                self._flush(out)
                text = "".join(self.buffer)
                name = _named_command(text, self.delimiter)
                if name:
                    self.command(name, text)
                else:
                    self.send()
                continue
            if not self.comment and not self.in_string and (
                    char == "#" or (char == "-" and following == "-" and (
                        pos + 2 >= size or line[pos + 2] in SPACE or (not self.buffer and not out)))):
                self._flush(out)
                break   # a comment to the end of the line
            # Also inside a comment, where it swallows the * of a following */ (`/* a /*/` stays open).
            if (not self.in_string and char == "/" and following == "*"
                    and line[pos + 2:pos + 3] != "!" and line[pos + 2:pos + 4] != "M!"):
                pos += 2
                self.comment = True
                self._flush(out)
                continue
            if self.comment and not server_comment and char == "*" and following == "/":
                pos += 2
                self.comment = False
                self._flush(out)
                need_space = True
                continue
            # A /*! on this line, even inside a /* comment, keeps the next */ from closing that comment.
            if not self.in_string and line.startswith("/*!", pos):
                server_comment = True
            elif not self.in_string and server_comment and char == "*" and following == "/":
                server_comment = False
            if char == self.in_string:
                self.in_string = ""
            elif not self.comment and not self.in_string and char in QUOTES:
                self.in_string = char
            if not self.comment:
                if need_space and char not in SPACE:
                    out.append(" ")
                need_space = False
                self._keep(out, char)
            pos += 1
        if out or self.buffer:
            # The client leaves out the line's end after text that begins with "delimiter" (for
            # `SELECT 1; DELIMITER //`, whose DELIMITER it then reads at the next delimiter).
            if not _is_delimiter_command("".join(out)) or self.in_string or self.comment:
                out.append("\n")
            if not self.comment:
                self._flush(out)
