"""file writing and TLS material: pure logic on a temporary directory (no Docker)."""
import datetime
import os

import pytest
from cryptography import x509

from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import tls
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import (
    DryRunFiles, HostFiles, file_mode, write_file)


def test_file_modes():
    assert file_mode("0644") == 0o644 and file_mode("600") == 0o600 and file_mode(0o640) == 0o640
    with pytest.raises(ClockworkError):
        file_mode("rw-r--r--")


def test_write_file_only_when_content_differs_and_keeps_the_inode(tmp_path):
    path = str(tmp_path / "config.json")
    first = ConnectionResult("file", "a", "b")
    write_file(path, "{}", "0640", None, HostFiles(), first)
    assert first.actions == ["write %s" % path, "chmod 640 %s" % path] and oct(os.stat(path).st_mode & 0o777) == "0o640"
    inode = os.stat(path).st_ino
    same = ConnectionResult("file", "a", "b")
    write_file(path, "{}", "0640", None, HostFiles(), same)
    assert same.actions == []
    changed = ConnectionResult("file", "a", "b")
    write_file(path, '{"a": 1}', "0640", None, HostFiles(), changed)
    assert os.stat(path).st_ino == inode and open(path).read() == '{"a": 1}'
    dry = ConnectionResult("file", "a", "b")
    write_file(path, "other", "0600", None, DryRunFiles(), dry)
    assert dry.changed and open(path).read() == '{"a": 1}' and oct(os.stat(path).st_mode & 0o777) == "0o640"


def test_certificates_made_once_then_only_on_new_names(tmp_path):
    directory = str(tmp_path / "tls")
    actions, paths = tls.ensure_certificates(directory, "shop", "api", ["api"], DryRunFiles())
    assert len(actions) == 2 and not os.path.exists(directory)
    actions, paths = tls.ensure_certificates(directory, "shop", "api", ["api", "api.internal"], HostFiles())
    assert actions == ["generate CA for stack shop", "generate certificate for api (api, api.internal)"]
    assert oct(os.stat(paths["key"]).st_mode & 0o777) == "0o600"
    assert oct(os.stat(paths["ca_key"]).st_mode & 0o777) == "0o600"
    cert = x509.load_pem_x509_certificate(open(paths["cert"], "rb").read())
    ca = x509.load_pem_x509_certificate(open(paths["ca"], "rb").read())
    cert.verify_directly_issued_by(ca)
    assert tls.ensure_certificates(directory, "shop", "api", ["api.internal", "api"], HostFiles())[0] == []
    assert tls.ensure_certificates(directory, "shop", "api", ["api"], HostFiles())[0] == ["generate certificate for api (api)"]


def test_certificate_expiring_within_30_days_is_renewed(tmp_path, monkeypatch):
    directory = str(tmp_path / "tls")
    tls.ensure_certificates(directory, "shop", "api", ["api"], HostFiles())
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=340)
    monkeypatch.setattr(tls, "_now", lambda: later)
    assert tls.ensure_certificates(directory, "shop", "api", ["api"], DryRunFiles())[0] == ["generate certificate for api (api)"]
