"""The lock file: plain data, atomic writes under a lock, merges, clear errors, vault (no Docker)."""
import multiprocessing
import os
import stat

import pytest
import yaml

from ansible._internal._datatag._tags import Origin
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.clockwork.connections.plugins.plugin_utils.lock_file import (
    DryRunLockFile, LockFile, LockFileError, VaultText, plain)


def entry(name, **fields):
    return {"input": "0123456789abcdef", "source": "local", "fields": fields or {"network_name": name}}


def vault(password="vault-pw-for-tests"):
    return VaultLib([("default", VaultSecret(password.encode()))])


def test_tagged_values_are_written_as_plain_data(tmp_path):
    """ansible-core 2.19 tags templated values; a YAML writer cannot represent them."""
    tagged = Origin(path="/play.yml", line_num=3).tag("appdb")
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.safe_dump({"x": tagged})
    assert type(plain({"a": [tagged, Origin(path="/p", line_num=1).tag(5)]})["a"][0]) is str
    lock = LockFile(str(tmp_path / "clockwork.lock.yml"))
    lock.put("database api -> pg", dict(entry("x"), fields={"database_name": tagged, "port": 5}))
    lock.save()
    again = LockFile(str(tmp_path / "clockwork.lock.yml"))
    assert again.entries["database api -> pg"]["fields"] == {"database_name": "appdb", "port": 5}


def test_the_file_is_written_0600_whatever_mode_it_had_and_nothing_is_left_behind(tmp_path):
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    lock.put("network a -> b", entry("one"))
    lock.save()
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    os.chmod(str(path), 0o644)   # as a git checkout leaves it
    inode = os.stat(str(path)).st_ino
    lock = LockFile(str(path))
    lock.put("database c -> d", entry("two", password="generated-in-clear"))
    lock.save()
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert os.stat(str(path)).st_ino != inode, "not replaced by a rename"
    assert sorted(os.listdir(str(tmp_path))) == [".clockwork.lock.yml.lock", "clockwork.lock.yml"]


def test_protect_makes_an_existing_file_0600_and_reports_the_mode_it_has(tmp_path):
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    assert lock.mode() is None and lock.protect() is None and not path.exists()   # nothing made
    lock.put("database c -> d", entry("two", password="generated-in-clear"))
    lock.save()
    os.chmod(str(path), 0o644)
    text = path.read_text()
    assert LockFile(str(path)).mode() == 0o644
    assert LockFile(str(path)).protect() == 0o600
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600 and path.read_text() == text


def test_a_dry_run_records_its_writes_and_makes_none(tmp_path):
    """--check: the entries answer as if written, the file and its mode stay as they are, and
    the writes it would make are recorded (an unchanged entry is no write)."""
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    lock.put("network a -> b", entry("one"))
    lock.save()
    os.chmod(str(path), 0o644)
    text, before = path.read_text(), sorted(os.listdir(str(tmp_path)))
    dry = DryRunLockFile(str(path))
    assert dry.protect() == 0o644 and dry.mode() == 0o644
    dry.put("network a -> b", entry("one"))
    dry.save()
    assert dry.actions == ["chmod 0600 %s" % path]
    dry.put("database c -> d", entry("two", password="generated-in-clear"))
    assert dry.dirty and dry.get("database c -> d", "0123456789abcdef")["fields"]["password"] == "generated-in-clear"
    dry.save()
    assert dry.actions[1:] == ["write %s (database c -> d)" % path] and not dry.dirty
    assert sorted(dry.entries) == ["database c -> d", "network a -> b"]
    assert path.read_text() == text and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644
    assert sorted(os.listdir(str(tmp_path))) == before
    new = DryRunLockFile(str(tmp_path / "new.yml"))
    assert new.protect() is None
    new.put("network a -> b", entry("one"))
    new.save()
    assert new.actions == ["write %s (network a -> b)" % (tmp_path / "new.yml")]
    assert sorted(os.listdir(str(tmp_path))) == before


def test_protect_rewrites_a_file_it_cannot_chmod(tmp_path, monkeypatch):
    """Someone else's file in a directory we may write: replaced by our own, 0600, same content."""
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    lock.put("database c -> d", entry("two", password="generated-in-clear"))
    lock.save()
    os.chmod(str(path), 0o644)
    text, inode = path.read_text(), os.stat(str(path)).st_ino
    real_chmod = os.chmod

    def chmod(target, mode, *args, **kwargs):
        if os.path.abspath(str(target)) == str(path):
            raise PermissionError(1, "Operation not permitted")
        return real_chmod(target, mode, *args, **kwargs)
    monkeypatch.setattr(os, "chmod", chmod)
    assert LockFile(str(path)).protect() == 0o600
    assert path.read_text() == text and os.stat(str(path)).st_ino != inode


def test_protect_names_the_file_and_its_mode_when_it_cannot(tmp_path, monkeypatch):
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    lock.put("database c -> d", entry("two", password="generated-in-clear"))
    lock.save()
    os.chmod(str(path), 0o644)

    def refuse(*_args, **_kwargs):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(LockFileError) as error:
        LockFile(str(path)).protect()
    assert str(error.value) == "lock file %s holds a password in clear text and is mode 0644; it cannot be made " \
                               "0600: Operation not permitted" % path
    assert "generated-in-clear" not in str(error.value)


def test_entries_written_meanwhile_by_another_run_are_kept(tmp_path):
    path = str(tmp_path / "clockwork.lock.yml")
    first, second = LockFile(path), LockFile(path)
    assert first.entries == {} and second.entries == {}   # both read before either writes
    first.put("network a -> b", entry("one"))
    second.put("network c -> d", entry("two"))
    first.save()
    second.save()
    assert sorted(LockFile(path).entries) == ["network a -> b", "network c -> d"]


def _writer(path, index):
    lock = LockFile(path)
    lock.entries   # pylint: disable=pointless-statement
    lock.put("network n%d -> m" % index, entry("net%d" % index))
    lock.save()


def test_concurrent_runs_lose_no_entry(tmp_path):
    path = str(tmp_path / "clockwork.lock.yml")
    processes = [multiprocessing.Process(target=_writer, args=(path, i)) for i in range(8)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert sorted(LockFile(path).entries) == sorted("network n%d -> m" % i for i in range(8))


@pytest.mark.parametrize("text, line, words", [
    ("completions:\n  network a -> b:\n    input: [unclosed\n", 3, "not valid YAML"),
    ("completions:\n  network a -> b:\n\tinput: x\n", 3, "not valid YAML"),
    ("- just\n- a list\n", 1, "expected a mapping with the key 'completions'"),
    ("completions: {}\nsomething: else\n", 2, "unknown key 'something'"),
    ("completions:\n  - a\n", 2, "must map each connection"),
    ("completions:\n  network a -> b: 5\n", 2, "must be a mapping"),
    ("completions:\n  network a -> b:\n    input: x\n    source: local\n", 3, "has no fields"),
    ("completions:\n  network a -> b:\n    input: x\n    source: oracle\n    fields: {}\n", 4, "source must be one of"),
    ("completions:\n  network a -> b:\n    input: x\n    source: local\n    fields:\n      network_name: [a]\n",
     6, "field network_name must be a string"),
    ("completions:\n  network a -> b:\n    input: x\n    source: local\n    fields: {}\n    extra: 1\n",
     6, "unknown key 'extra'"),
])
def test_a_bad_lock_file_names_the_file_and_the_line(tmp_path, text, line, words):
    path = tmp_path / "clockwork.lock.yml"
    path.write_text(text)
    with pytest.raises(LockFileError) as error:
        LockFile(str(path)).get("network a -> b", "x")
    message = str(error.value)
    assert str(path) in message and "line %d" % line in message and words in message, message


def test_a_generated_secret_is_stored_vault_encrypted_inline_when_the_run_has_a_vault_secret(tmp_path):
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path), vault=vault())
    sealed = lock.seal("generated-password-123")
    assert isinstance(sealed, VaultText)
    lock.put("database api -> pg", entry("x", password=sealed, username="postgres"))
    lock.save()
    text = path.read_text()
    assert "generated-password-123" not in text and "password: !vault |" in text and "$ANSIBLE_VAULT;1.1;AES256" in text
    def reveal(secrets):
        lock = LockFile(str(path), vault=secrets)
        return lock.reveal(lock.entries["database api -> pg"]["fields"]["password"], "database api -> pg", "password")
    assert reveal(vault()) == "generated-password-123"
    with pytest.raises(LockFileError, match="entry 'database api -> pg': field password is vault-encrypted"):
        reveal(None)
    with pytest.raises(LockFileError, match="cannot be decrypted"):
        reveal(vault("wrong"))
    # Without a vault secret it is stored as is, in a 0600 file.
    assert LockFile(str(tmp_path / "other.yml")).seal("pw") == "pw"


def test_a_lock_file_encrypted_as_a_whole_is_read_and_written_back_encrypted(tmp_path):
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    lock.put("network a -> b", entry("one"))
    lock.save()
    path.write_bytes(vault().encrypt(path.read_text()))   # what `ansible-vault encrypt clockwork.lock.yml` does
    os.chmod(str(path), 0o600)
    with pytest.raises(LockFileError, match="encrypted with ansible-vault: run with its vault password"):
        LockFile(str(path)).entries   # pylint: disable=expression-not-assigned
    lock = LockFile(str(path), vault=vault())
    assert lock.get("network a -> b", "0123456789abcdef")["fields"] == {"network_name": "one"}
    assert lock.seal("pw") == "pw"   # the whole file is encrypted: no inline vault needed
    lock.put("database c -> d", entry("x", password="pw"))
    lock.save()
    raw = path.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.1;AES256") and b"completions" not in raw
    assert sorted(yaml.safe_load(vault().decrypt(raw))["completions"]) == ["database c -> d", "network a -> b"]
