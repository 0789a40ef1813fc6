# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL files: the schema file and the migrations read in order with their checksums, the files
still to apply, and a splitter that finds the statements of a file (to refuse one that ends the
transaction each file runs in)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError


SQL_SUFFIX = ".sql"   # what counts as a migration in migrations_dir


def natural_key(name):
    """`2_x.sql` before `10_y.sql`: digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def sql_files(params):
    """[(kind, name, path, sql, sha256)] for the schema file, then the migrations in order.

    The controller puts the files' content into `schema_content` and `migrations`, so a
    module on a remote Docker host needs nothing from the controller's disk; without it
    the files are read where the module runs."""
    files = []
    schema = params.get("schema_file")
    if params.get("schema_content") is not None:
        files.append(_sql_entry("schema", os.path.basename(schema or "schema.sql"), schema,
                                params["schema_content"].encode("utf-8")))
    elif schema:
        files.append(_sql_entry("schema", os.path.basename(schema), schema, _read(schema, "schema_file")))
    directory = params.get("migrations_dir")
    if params.get("migrations") is not None:
        migrations = sorted(params["migrations"], key=lambda m: natural_key(m["name"]))
        files.extend(_sql_entry("migration", m["name"], m["name"], m["content"].encode("utf-8")) for m in migrations)
    elif directory:
        if not os.path.isdir(directory):
            raise ClockworkError("migrations_dir %s is not a directory" % directory)
        names = sorted((n for n in os.listdir(directory) if n.endswith(SQL_SUFFIX)), key=natural_key)
        files.extend(_sql_entry("migration", n, os.path.join(directory, n),
                                _read(os.path.join(directory, n), "migration")) for n in names)
    return files


def _read(path, what):
    if not os.path.isfile(path):
        raise ClockworkError("%s %s does not exist" % (what, path))
    with open(path, "rb") as handle:
        return handle.read()


def _sql_entry(kind, name, path, raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClockworkError("%s %s is not UTF-8 text: %s" % (kind, name, exc))
    return kind, name, path, text, hashlib.sha256(raw).hexdigest()


# Statements that end or start a transaction: each file runs in one transaction of ours.
ENDS_TRANSACTION = ("COMMIT", "END", "ABORT", "ROLLBACK", "BEGIN", "START TRANSACTION", "PREPARE TRANSACTION")


DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
SQL_WORD = re.compile(r"[^\W\d][\w$]*")


def sql_statements(sql):
    """[(line, [first words, upper-cased])] of each top-level statement of `sql`.

    Comments, strings (E'' ones with backslash escapes), quoted identifiers and
    dollar-quoted bodies are skipped, so a COMMIT inside a function body or a string
    is no statement; a SQL-standard body (BEGIN ATOMIC ... END) stays in its CREATE.
    """
    statements, words, line, start = [], [], 1, None
    atomic, i, size = 0, 0, len(sql)
    while i < size:
        char, begin, word = sql[i], i, None
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            i = sql.find("\n", i)
            i = size if i < 0 else i
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < size and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif char in "'\"":
            escapes = char == "'" and words[-1:] == ["E"] and sql[i - 1] in "Ee"
            i += 1
            while i < size and not (sql[i] == char and not sql.startswith(char * 2, i)):
                i += 2 if (escapes and sql[i] == "\\") or sql.startswith(char * 2, i) else 1
            i += 1
            word = "E'" if escapes else char
        elif DOLLAR_QUOTE.match(sql, i):
            tag = DOLLAR_QUOTE.match(sql, i).group(0)
            end = sql.find(tag, i + len(tag))
            i = size if end < 0 else end + len(tag)
            word = "$"
        elif char == ";" and not atomic:
            if words:
                statements.append((start, words))
            words, start = [], None
            i += 1
        elif SQL_WORD.match(sql, i):
            word = SQL_WORD.match(sql, i).group(0).upper()
            i += len(word)
            if words[:1] == ["CREATE"] and words[-1:] == ["BEGIN"] and word == "ATOMIC":
                atomic += 1
            elif atomic and word == "CASE":
                atomic += 1
            elif atomic and word == "END":
                atomic -= 1
        else:
            word = char
            i += 1
        if word is not None:
            if word == "E'" and words[-1:] == ["E"]:
                words.pop()
            start = line if start is None else start
            words.append(word)
        line += sql.count("\n", begin, i)
    if words:
        statements.append((start, words))
    return statements


def transaction_control(sql):
    """(line, statement) of the first statement that would end the file's transaction, or None."""
    for line, words in sql_statements(sql):
        head = " ".join(words[:2])
        if words[0] == "ROLLBACK" and words[1:2] == ["TO"]:
            continue   # back to a savepoint: the transaction goes on
        for statement in ENDS_TRANSACTION:
            if head == statement or words[0] == statement:
                return line, statement
    return None


def refuse_transaction_control(files):
    """Refuse, before anything is applied, a file that commits, rolls back or opens a
    transaction itself: it would end the one transaction each file runs in, and with it
    the promise that a file is applied whole or not at all."""
    for kind, name, _path, sql, _checksum in files:
        found = transaction_control(sql)
        if found:
            raise ClockworkError(
                "%s %s line %d: %s ends the transaction each file is applied in (all of it or nothing); "
                "remove BEGIN/COMMIT/ROLLBACK/END from the file, clockwork commits it with its record. "
                "Nothing was applied." % (kind, name, found[0], found[1]))


def pending_files(files, applied, reapply_schema):
    """The files still to apply; an applied file whose checksum changed is drift."""
    pending = []
    for kind, name, path, sql, checksum in files:
        recorded = applied.get((kind, name))
        if recorded is None:
            pending.append((kind, name, path, sql, checksum))
        elif recorded != checksum:
            if kind == "schema" and reapply_schema:
                pending.append((kind, name, path, sql, checksum))
                continue
            hint = "; set reapply_schema to apply it again" if kind == "schema" else \
                "; add a new migration instead of editing an applied one"
            raise ClockworkError("%s %s was applied with sha256 %s but now has sha256 %s: refusing%s" % (
                kind, name, recorded, checksum, hint))
    return pending
