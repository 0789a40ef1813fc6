# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""clockwork.lock.yml: field completions keyed by connection and a digest of what was given.

- Written from plain data (builtin str, int, dict, list): values from templated vars, vault or
  extra vars carry ansible-core's tags, which a YAML writer cannot represent.
- Written atomically (a temporary file of mode 0600 renamed over it, whatever mode the file had:
  it may hold a generated password) under an exclusive flock of a side file, merged with entries
  another run wrote meanwhile. A file that holds a password in clear text is made 0600 when used.
- A password the collection generated is stored as an inline `!vault` value when the run has a
  vault secret (`--vault-password-file`, `--ask-vault-pass`, `--vault-id`); a lock file encrypted
  as a whole with `ansible-vault encrypt` is read and written back encrypted.
- A file that is not YAML, or not the expected shape, is an error naming the file and the line.
- A dry run (check mode) opens it as a `DryRunLockFile`: read as it is, its writes recorded, not made.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import os
import tempfile

from collections.abc import Mapping

import yaml

LOCK_NAME = "clockwork.lock.yml"
HEADER = ("# Field completions of clockwork.connections: reviewed and committed like a package lock file.\n"
          "# An entry is reused while its connection's description and given fields stay the same.\n"
          "# Passwords declared elsewhere are referenced (password_from), never copied here.\n")
VAULT_HEADER = "$ANSIBLE_VAULT;"
SOURCES = ("llm", "local")
ENTRY_KEYS = ("input", "source", "fields", "secret_fields", "password_from")
STR_TAG = "tag:yaml.org,2002:str"
SCALAR_TAGS = (STR_TAG, "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "!vault")
AFRESH = "fix it, or delete the entry (or the file) to complete afresh"


class LockFileError(ValueError):
    """A lock file that cannot be used; the message names the file (and the line)."""


class VaultText(object):
    """An inline `!vault` value: ciphertext as stored, the plaintext only once decrypted."""

    def __init__(self, ciphertext, plaintext=None):
        self.ciphertext = ciphertext
        self.plaintext = plaintext

    def __eq__(self, other):
        return isinstance(other, VaultText) and other.ciphertext == self.ciphertext

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "VaultText(<encrypted>)"   # never the plaintext, whoever prints it


class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    pass


class _Dumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
    pass


_Loader.add_constructor("!vault", lambda loader, node: VaultText(loader.construct_scalar(node)))
_Dumper.add_representer(VaultText, lambda dumper, value: dumper.represent_scalar(
    "!vault", value.ciphertext, style="|"))


def plain(value):
    """Builtin types all the way down: str/int/float/bool/None, dict and list."""
    if value is None or isinstance(value, VaultText):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)   # a str subclass (a tagged string) -> a builtin copy
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return dict((plain(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)   # e.g. an EncryptedString of ansible-core 2.19: its text


def vault_of(loader):
    """The VaultLib of Ansible's loader when the run has vault secrets, else None."""
    vault = getattr(loader, "_vault", None)   # the only way to the secrets an action plugin has
    return vault if vault is not None and getattr(vault, "secrets", None) else None


class LockFile(object):
    """The lock file; read on first use, as most tasks complete nothing."""

    def __init__(self, path, vault=None):
        self.path = path
        self.vault = vault
        self._entries = None
        self._puts = {}
        self._whole = None   # (vault_id, secret) when the file is vault-encrypted as a whole

    # -- reading -------------------------------------------------------------------

    @property
    def entries(self):
        if self._entries is None:
            self._entries, self._whole, _raw = self._read()
        return self._entries

    def _read(self):
        """(entries, whole-file vault key or None, raw text or None) as the file is now."""
        if not os.path.exists(self.path):
            return {}, None, None
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise LockFileError("lock file %s cannot be read: %s" % (self.path, exc.strerror or exc))
        text, whole = raw, None
        if raw.lstrip().startswith(VAULT_HEADER.encode()):
            text, whole = self._decrypt_whole(raw)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LockFileError("lock file %s is not UTF-8 text (byte %d); %s" % (self.path, exc.start, AFRESH))
        return parse(text, self.path + (" (decrypted)" if whole else "")), whole, raw

    def _decrypt_whole(self, raw):
        if self.vault is None:
            raise LockFileError("lock file %s is encrypted with ansible-vault: run with its vault password "
                                "(--vault-password-file, --ask-vault-pass or --vault-id)" % self.path)
        try:
            text, vault_id, secret = self.vault.decrypt_and_get_vault_id(raw)
        except Exception as exc:  # pylint: disable=broad-except  # AnsibleVaultError and format errors alike
            raise LockFileError("lock file %s cannot be decrypted with the vault secrets given: %s" % (self.path, exc))
        return bytes(text), (vault_id, secret)

    @property
    def encrypted(self):
        """Whether the file is vault-encrypted as a whole."""
        self.entries   # pylint: disable=pointless-statement
        return self._whole is not None

    def get(self, connection, digest):
        entry = self.entries.get(connection)
        return entry if entry and entry.get("input") == digest else None

    # -- secrets ----------------------------------------------------------------------

    def seal(self, secret):
        """A generated secret as it is stored: vault-encrypted inline when the run has a vault
        secret and the file is not encrypted as a whole; else as is (the file is written 0600)."""
        if self.vault is None or self.encrypted:
            return secret
        ciphertext = self.vault.encrypt(secret)
        return VaultText(ciphertext.decode("ascii"), secret)

    def reveal(self, value, connection, field):
        """The plaintext of a stored secret."""
        if not isinstance(value, VaultText):
            return str(value)
        if value.plaintext is None:
            if self.vault is None:
                raise LockFileError("lock file %s: entry '%s': field %s is vault-encrypted: run with its vault "
                                    "password (--vault-password-file, --ask-vault-pass or --vault-id)"
                                    % (self.path, connection, field))
            try:
                value.plaintext = bytes(self.vault.decrypt(value.ciphertext.encode("ascii"))).decode("utf-8")
            except Exception as exc:  # pylint: disable=broad-except
                raise LockFileError("lock file %s: entry '%s': field %s cannot be decrypted with the vault secrets "
                                    "given: %s" % (self.path, connection, field, exc))
        return value.plaintext

    # -- writing ----------------------------------------------------------------------

    def put(self, connection, entry):
        entry = plain(entry)
        self.entries[connection] = entry
        self._puts[connection] = entry

    @property
    def dirty(self):
        return bool(self._puts)

    def save(self):
        """Merge this run's entries into the file as it is now, under the side lock; atomically."""
        if not self._puts:
            return
        path = os.path.abspath(self.path)
        directory = os.path.dirname(path)
        guard = os.open(os.path.join(directory, ".%s.lock" % os.path.basename(path)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            current, whole, raw = self._read()   # what another run may have written since
            merged = dict(current)
            merged.update(self._puts)
            text = HEADER + yaml.dump({"completions": plain(merged)}, Dumper=_Dumper, default_flow_style=False,
                                      sort_keys=True, allow_unicode=True)
            data = text.encode("utf-8")
            if whole is not None:
                vault_id, secret = whole
                data = self.vault.encrypt(text, secret=secret, vault_id=vault_id)
            if raw is None or current != merged:   # ciphertext differs each time: compare the entries
                self._replace(path, directory, data)
            self._entries, self._whole, self._puts = merged, whole, {}
        except OSError as exc:
            raise LockFileError("lock file %s cannot be written: %s" % (self.path, exc.strerror or exc))
        finally:
            os.close(guard)   # releases the flock

    def mode(self):
        """The file's permission bits now; None when it does not exist."""
        try:
            return os.stat(self.path).st_mode & 0o7777
        except OSError:
            return None

    def protect(self):
        """Make an existing file 0600, as it holds (or is about to hold) a password in clear text:
        a file checked out by git is 0644. Chmod when the file is ours, else rewritten as ours.
        Returns the mode the file has then (None: no file yet; it is created 0600)."""
        mode = self.mode()
        if mode is None or mode == 0o600:
            return mode
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            path = os.path.abspath(self.path)
            directory = os.path.dirname(path)
            guard = os.open(os.path.join(directory, ".%s.lock" % os.path.basename(path)),
                            os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(guard, fcntl.LOCK_EX)
                with open(path, "rb") as handle:
                    self._replace(path, directory, handle.read())
            except OSError as exc:
                raise LockFileError("lock file %s holds a password in clear text and is mode %04o; it cannot be "
                                    "made 0600: %s" % (self.path, mode, exc.strerror or exc))
            finally:
                os.close(guard)
        return self.mode()

    @staticmethod
    def _replace(path, directory, data):
        """Atomically, mode 0600 whatever the file had (it may hold a generated password), its owner kept."""
        try:
            stat = os.stat(path)
            owner = (stat.st_uid, stat.st_gid)
        except OSError:
            owner = None
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".clockwork.lock.")   # 0600 from the start
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            if owner is not None and hasattr(os, "chown"):
                try:
                    os.chown(temporary, *owner)
                except OSError:
                    pass   # not ours to give away: it stays the writer's
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


class DryRunLockFile(LockFile):
    """The lock file of a dry run (check mode): read as it is; every write it would make is
    recorded in `actions` and not made. Its entries answer as if written (an entry put is found
    again); the file's mode is the one it has, which the report states with the change to come."""

    def __init__(self, path, vault=None):
        super(DryRunLockFile, self).__init__(path, vault)
        self.actions = []

    def save(self):
        """What saving would write: this run's entries merged into the file as it is now."""
        if not self._puts:
            return
        current, _whole, raw = self._read()
        merged = dict(current)
        merged.update(self._puts)
        if raw is None or current != merged:
            self.actions.append("write %s (%s)" % (self.path, ", ".join(sorted(self._puts))))
        self._entries, self._puts = merged, {}

    def protect(self):
        mode = self.mode()
        if mode is not None and mode != 0o600:
            self.actions.append("chmod 0600 %s" % self.path)
        return mode


# -- reading and checking the shape -------------------------------------------------------

def parse(text, path):
    """The entries of a lock file's text; LockFileError names the file and line of a problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_shape(node, path)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        context = " (%s at line %d)" % (exc.context, exc.context_mark.line + 1) \
            if exc.context and exc.context_mark and exc.problem_mark else ""
        raise LockFileError("lock file %s is not valid YAML%s: %s%s; %s" % (
            path, where, exc.problem or exc.context, context, AFRESH))
    except yaml.YAMLError as exc:
        raise LockFileError("lock file %s is not valid YAML: %s; %s" % (path, exc, AFRESH))
    finally:
        loader.dispose()
    return (data or {}).get("completions") or {}


def _at(path, node, what):
    return LockFileError("lock file %s, line %d: %s; %s" % (path, node.start_mark.line + 1, what, AFRESH))


def _is_null(node):
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _check_shape(node, path):
    """completions: {<connection>: {input: str, source: llm|local, fields: {name: scalar}, ...}}"""
    if not isinstance(node, yaml.MappingNode):
        raise _at(path, node, "expected a mapping with the key 'completions'")
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.value != "completions":
            raise _at(path, key, "unknown key %r (only 'completions' is expected)" % getattr(key, "value", key))
        if _is_null(value):
            continue
        if not isinstance(value, yaml.MappingNode):
            raise _at(path, value, "'completions' must map each connection to its entry")
        for name, entry in value.value:
            if not isinstance(name, yaml.ScalarNode) or name.tag != STR_TAG:
                raise _at(path, name, "a connection name must be a string")
            _check_entry(path, name.value, entry)


def _check_entry(path, name, entry):
    if not isinstance(entry, yaml.MappingNode):
        raise _at(path, entry, "entry '%s' must be a mapping with input, source and fields" % name)
    seen = {}
    for key, value in entry.value:
        field = getattr(key, "value", None)
        if field not in ENTRY_KEYS:
            raise _at(path, key, "entry '%s' has an unknown key %r (known: %s)" % (name, field, ", ".join(ENTRY_KEYS)))
        seen[field] = value
        if field in ("input", "source", "password_from"):
            if not isinstance(value, yaml.ScalarNode) or value.tag != STR_TAG:
                raise _at(path, value, "entry '%s': %s must be a string" % (name, field))
            if field == "source" and value.value not in SOURCES:
                raise _at(path, value, "entry '%s': source must be one of %s, not %r" % (
                    name, ", ".join(SOURCES), value.value))
        elif field == "fields":
            if not isinstance(value, yaml.MappingNode):
                raise _at(path, value, "entry '%s': fields must be a mapping of field names to values" % name)
            for fkey, fvalue in value.value:
                if not isinstance(fkey, yaml.ScalarNode) or fkey.tag != STR_TAG:
                    raise _at(path, fkey, "entry '%s': a field name must be a string" % name)
                if not isinstance(fvalue, yaml.ScalarNode) or fvalue.tag not in SCALAR_TAGS:
                    raise _at(path, fvalue, "entry '%s': field %s must be a string, a number or a boolean" % (
                        name, fkey.value))
        elif field == "secret_fields":
            if not isinstance(value, yaml.SequenceNode) or not all(
                    isinstance(v, yaml.ScalarNode) and v.tag == STR_TAG for v in value.value):
                raise _at(path, value, "entry '%s': secret_fields must be a list of field names" % name)
    missing = [k for k in ("input", "source", "fields") if k not in seen]
    if missing:
        raise _at(path, entry, "entry '%s' has no %s" % (name, " and no ".join(missing)))
