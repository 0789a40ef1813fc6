# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which databases a statement of a MySQL file reaches besides the connection's: `USE other`
moves the session (and with it the tracking rows and every later file), and a name qualified by
another database (`other.orders`, `other.orders.id`, `other.f()`, `GRANT ... ON other.*`,
`CREATE DATABASE other`) changes data the connection does not own. Both are refused before any
change unless the connection says cross_database.

The statement is read as the server's lexer reads it (comments, strings, quoted names, the SQL
inside versioned comments); a name counts where the grammar puts a table, a routine or a database
(after FROM, JOIN, INTO, UPDATE, TABLE, REFERENCES, CALL, ON of GRANT or CREATE INDEX...), and a
three-part name or a qualified call anywhere. information_schema, which only describes, is allowed."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# An identifier: ASCII letters, digits, _ and $, and U+0080..U+FFFF. Written as "not ASCII and not
# beyond U+FFFF": the same set, which the re module compiles ten times faster (a range up to
# U+FFFF costs 3 ms at every start).
_WIDE = "[^\\x00-\\x7f\\U00010000-\\U0010ffff]"
WORD = re.compile(r"[0-9]*(?:[A-Za-z_$]|%s)(?:[A-Za-z0-9_$]|%s)*" % (_WIDE, _WIDE))
NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
VARIABLE = re.compile(r"@@?(?:[A-Za-z0-9_$.]+|`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")?")
VERSIONED = re.compile(r"/\*M?!\d*")
# Where the next name is a table (or a routine, a view...): `FROM other.t`.
TABLE_KEYWORDS = frozenset(("FROM", "JOIN", "INTO", "UPDATE", "TABLE", "TABLES", "REFERENCES", "CALL", "TO", "VIEW",
                            "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "TRUNCATE", "STRAIGHT_JOIN"))
# Statements where ON names a table or a database (elsewhere it begins a join condition).
ON_NAMES = ("GRANT", "REVOKE", "INDEX", "TRIGGER")
# Functions whose argument list may hold FROM: EXTRACT(YEAR FROM t.d), TRIM(x FROM y), SUBSTRING(s FROM 2).
FROM_FUNCTIONS = frozenset(("EXTRACT", "TRIM", "SUBSTRING", "SUBSTR", "POSITION", "OVERLAY"))
# Words after a table name that are no alias: the list of names ends there.
CLAUSE_WORDS = frozenset((
    "WHERE", "JOIN", "LEFT", "RIGHT", "INNER", "OUTER", "CROSS", "NATURAL", "STRAIGHT_JOIN", "ON", "USING", "GROUP",
    "ORDER", "LIMIT", "HAVING", "SET", "VALUES", "VALUE", "SELECT", "PARTITION", "USE", "FORCE", "IGNORE", "UNION",
    "EXCEPT", "INTERSECT", "FOR", "LOCK", "WINDOW", "INTO", "READ", "WRITE", "LOW_PRIORITY", "TO", "RENAME", "ADD",
    "DROP", "MODIFY", "CHANGE", "ALTER", "ENGINE", "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT", "LIKE",
    "IF", "RETURNING", "ROW", "ROWS", "DUPLICATE", "WITH", "AFTER", "BEFORE", "EACH", "BEGIN", "CASCADE",
    "RESTRICT", "ENABLE", "DISABLE", "DO", "NOWAIT", "WAIT", "SKIP", "AUTO_INCREMENT", "ROW_FORMAT"))
# Words between a table keyword and its name.
SKIPPED = frozenset(("IF", "NOT", "EXISTS", "TEMPORARY", "IGNORE", "LOW_PRIORITY", "QUICK", "ONLY", "LATERAL",
                     "TABLE", "PROCEDURE", "FUNCTION"))
ALLOWED_DATABASES = ("information_schema",)


def tokens(text):
    """[(kind, value)] of one statement: kind "word" (value upper-cased), "name" (a quoted
    identifier, unquoted), "string", "number", "variable" or the punctuation itself."""
    found, i, size = [], 0, len(text)
    while i < size:
        char = text[i]
        if char.isspace():
            i += 1
        elif text.startswith("/*", i):
            versioned = VERSIONED.match(text, i)
            if versioned:
                i = versioned.end()   # the SQL inside a versioned comment runs
            else:
                end = text.find("*/", i + 2)
                i = size if end < 0 else end + 2
        elif text.startswith("*/", i):
            i += 2   # the end of a versioned comment
        elif char == "#" or (text.startswith("--", i) and (i + 2 >= size or text[i + 2].isspace() or
                                                           ord(text[i + 2]) < 32)):
            end = text.find("\n", i)
            i = size if end < 0 else end + 1
        elif char in "'\"`":
            j = i + 1
            while j < size:
                if text[j] == "\\" and char != "`":
                    j += 2
                elif text[j] == char:
                    if text.startswith(char * 2, j):
                        j += 2
                    else:
                        break
                else:
                    j += 1
            value = text[i + 1:j]
            found.append(("name", value.replace("``", "`")) if char == "`" else ("string", value))
            i = j + 1
        elif char == "@":
            match = VARIABLE.match(text, i)
            found.append(("variable", match.group(0)))
            i = max(match.end(), i + 1)
        elif NUMBER.match(text, i) and not WORD.match(text, i):
            match = NUMBER.match(text, i)
            found.append(("number", match.group(0)))
            i = match.end()
        elif WORD.match(text, i):
            match = WORD.match(text, i)
            found.append(("word", match.group(0)))
            i = match.end()
        else:
            found.append((char, char))
            i += 1
    return found


def _is_name(token):
    return token[0] in ("word", "name")


def _qualified(toks, i):
    """(parts, next index) of the dotted name starting at toks[i]: `a`, `a.b`, `a.b.c`, `a.*`."""
    parts, j = [toks[i][1]], i + 1
    while j + 1 < len(toks) and toks[j][0] == "." and (_is_name(toks[j + 1]) or toks[j + 1][0] == "*"):
        parts.append(toks[j + 1][1])
        j += 2
    return parts, j


def named_databases(text, database):
    """[(database, what names it)] of every database one statement names; a USE of another
    database than `database` is ("USE", its name)."""
    toks = tokens(text)
    words = [value.upper() if kind == "word" else None for kind, value in toks]
    found = []
    if words[:1] == ["USE"] and len(toks) > 1:
        if toks[1][1].lower() != database.lower():
            found.append(("USE", toks[1][1]))
        return found
    on_names = any(w in ON_NAMES for w in words[:8] if w)
    create_table = words[:1] == ["CREATE"] and "TABLE" in words[:6]
    parens, position, listing, i = [], False, False, 0
    while i < len(toks):
        kind, value = toks[i]
        word = words[i]
        i += 1
        if kind == "(":
            parens.append(words[i - 2] if i > 1 else None)
            position = listing = False
        elif kind == ")":
            parens = parens[:-1]
        elif word in ("DATABASE", "SCHEMA") and not (i < len(toks) and toks[i][0] == "("):
            while i < len(toks) and words[i] in ("IF", "NOT", "EXISTS"):
                i += 1
            if i < len(toks) and (toks[i][0] == "name" or (words[i] and words[i] not in CLAUSE_WORDS)):
                found.append((toks[i][1], "%s %s" % (word, toks[i][1])))
                i += 1
        elif word in TABLE_KEYWORDS and not (position and word in ("TABLE", "PROCEDURE", "FUNCTION")):
            inside_function = word == "FROM" and parens and parens[-1] in FROM_FUNCTIONS
            after_key = word == "UPDATE" and words[i - 2] in ("KEY", "FOR", "ON")
            position = listing = not (inside_function or after_key)
        elif word == "ON":
            position, listing = on_names, False
        elif word == "LIKE" and create_table and (not parens or words[i - 2] is None and toks[i - 2][0] == "("):
            position, listing = True, False   # CREATE TABLE t LIKE other.t
        elif position and word in SKIPPED:
            pass   # between the keyword and its name: DROP TABLE IF EXISTS, ON TABLE
        elif kind == "*" and position and toks[i:i + 2] == [(".", "."), ("*", "*")]:
            found.append(("*", "*.*"))
            position, i = False, i + 2
        elif kind in ("word", "name"):
            parts, after = _qualified(toks, i - 1)
            call = after < len(toks) and toks[after][0] == "(" and len(parts) == 2 and not position
            if len(parts) == 3 or call or (position and len(parts) == 2):
                found.append((parts[0], ".".join(parts) + ("()" if call else "")))
            if position:
                position = False
            elif listing and word in CLAUSE_WORDS:
                listing = False
            i = after
        elif kind == "," and listing:
            position = True
        else:
            position = listing = False
    return found


def foreign_databases(text, database):
    """[(database, what names it)] that one statement reaches other than `database`; a USE of
    another database is ("USE", its name)."""
    return [(db, what) for db, what in named_databases(text, database)
            if db == "*" or (db.lower() != database.lower() and db.lower() not in ALLOWED_DATABASES)]


def own_qualified(text, database):
    """What in one statement names `database` itself (`shop.t`): on a copy of it, the real one."""
    return [what for db, what in named_databases(text, database)
            if db != "USE" and db.lower() == database.lower() and "." in what]
