"""Password files on the Docker host are never written through a symbolic link (no Docker):
each directory from the home down is lstat-checked and opened with O_NOFOLLOW, the file too.
The same walk for TLS material, for password files read back (client_env), for destroy, and
the pre-flight that refuses a link before the first change. The real module path is in
tests/integration/test_secret_file_links.py."""
import os
import stat

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils import host_files
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.database import client_env
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import (
    DryRunFiles, HostFiles, write_secret_file)
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.apply.preflight import Preflight
from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import connection_type as service_mesh
from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import tls
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine, memory_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_applier import DockerApplier

SECRET = "s3cret-not-to-leak"  # pragma: allowlist secret


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def refused(path, files=None):
    result = ConnectionResult("database", "app", "db")
    with pytest.raises(ClockworkError) as error:
        write_secret_file(path, SECRET, HostFiles() if files is None else files, result)
    assert SECRET not in str(error.value) + str(result.actions)
    return str(error.value)


def tree(root):
    """Every path under `root`, with the content of each regular file."""
    found = {}
    for directory, dirs, files in os.walk(str(root)):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found[path] = open(path).read() if os.path.isfile(path) and not os.path.islink(path) else None
    return found


@pytest.mark.parametrize("link", [".clockwork", ".clockwork/shop", ".clockwork/shop/secrets",
                                  ".clockwork/shop/secrets/app"])
def test_a_link_where_a_directory_is_expected_is_refused_naming_it_and_nothing_is_written(home, tmp_path, link):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(str(elsewhere), str(home / link))
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    before = tree(tmp_path)
    for files in (DryRunFiles(), HostFiles()):   # --check tells the truth too
        assert refused(path, files) == (
            "%s is a symbolic link where a directory is expected: a file holding a secret and its directories are "
            "never written through a link; remove it and run again" % (home / link))
    assert tree(tmp_path) == before and os.listdir(str(elsewhere)) == []


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_a_link_where_the_file_is_expected_is_refused_and_its_target_untouched(home, tmp_path, dangling):
    target = tmp_path / "target"
    if not dangling:
        target.write_text("theirs")
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    os.makedirs(os.path.dirname(path), 0o700)
    os.symlink(str(target), path)
    for files in (DryRunFiles(), HostFiles()):
        assert refused(path, files).startswith("%s is a symbolic link where a file is expected" % path)
    assert (target.read_text() == "theirs") if not dangling else not os.path.lexists(str(target))
    assert os.path.islink(path)


def test_something_else_where_a_directory_or_the_file_is_expected_is_refused(home):
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    os.makedirs(os.path.dirname(os.path.dirname(path)))
    with open(os.path.dirname(path), "w") as handle:
        handle.write("")
    assert refused(path) == "%s is not a directory, where the directory of a file holding a secret is expected" % \
        os.path.dirname(path)
    os.unlink(os.path.dirname(path))
    os.makedirs(path)
    assert refused(path) == "%s is not a regular file, where a file holding a secret is expected" % path


def test_a_link_swapped_in_after_the_check_is_refused_too(home, tmp_path, monkeypatch):
    """lstat said directory; by the open it is a link: O_NOFOLLOW refuses it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    secrets = home / ".clockwork" / "shop" / "secrets"
    secrets.parent.mkdir(parents=True)
    os.symlink(str(elsewhere), str(secrets))
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):
        info = real_stat(path, *args, **kwargs)
        if path == "secrets" and not kwargs.get("follow_symlinks", True):
            return os.stat_result((stat.S_IFDIR | 0o700,) + tuple(info)[1:])
        return info
    monkeypatch.setattr(host_files.os, "stat", stale_stat)
    assert refused(client_env.secret_file("shop", "app", "DATABASE_URL")).startswith(
        "%s is a symbolic link where a directory is expected" % secrets)
    assert os.listdir(str(elsewhere)) == []


def test_the_home_itself_may_be_a_link_and_the_directories_are_made_0700(tmp_path, monkeypatch):
    """/home -> /var/home is a system's choice, not an attack: the checks start below the home."""
    real = tmp_path / "var-home"
    real.mkdir()
    os.symlink(str(real), str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    result = ConnectionResult("database", "app", "db")
    assert write_secret_file(path, SECRET, HostFiles(), result) is True
    written = real / ".clockwork" / "shop" / "secrets" / "app" / "DATABASE_URL"
    assert written.read_text() == SECRET and stat.S_IMODE(os.stat(str(written)).st_mode) == 0o400
    for directory in (".clockwork", ".clockwork/shop", ".clockwork/shop/secrets", ".clockwork/shop/secrets/app"):
        assert stat.S_IMODE(os.stat(str(real / directory)).st_mode) == 0o700, directory
    assert result.actions == ["write %s (mode 0400)" % path]
    os.chmod(str(written), 0o644)
    again = ConnectionResult("database", "app", "db")
    assert write_secret_file(path, SECRET, HostFiles(), again) is False
    assert again.actions == ["chmod 400 %s" % path] and stat.S_IMODE(os.stat(str(written)).st_mode) == 0o400


def test_secret_path_problem_says_what_a_write_would_refuse_and_changes_nothing(home, tmp_path):
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    assert host_files.secret_path_problem(path) is None and not (home / ".clockwork").exists()
    (home / ".clockwork" / "shop").mkdir(parents=True)
    os.symlink(str(tmp_path), str(home / ".clockwork" / "shop" / "secrets"))
    assert host_files.secret_path_problem(path).startswith(
        "%s is a symbolic link where a directory is expected" % (home / ".clockwork" / "shop" / "secrets"))


# -- everything else that reaches the stack's own directory: the same walk ----------------

def _planted(tmp_path, home, link):
    """A link at `link` (relative to the home) to a directory of someone else's."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(str(elsewhere), str(home / link))
    return elsewhere


@pytest.mark.parametrize("link", [".clockwork", ".clockwork/shop", ".clockwork/shop/tls"])
def test_tls_material_is_never_written_through_a_linked_directory(home, tmp_path, link):
    elsewhere = _planted(tmp_path, home, link)
    directory = service_mesh.default_tls_dir("shop")
    before = tree(tmp_path)
    for files in (DryRunFiles(), HostFiles()):   # --check tells the truth too
        with pytest.raises(ClockworkError) as error:
            tls.ensure_certificates(directory, "shop", "api", ["api"], files)
        assert str(error.value).startswith("%s is a symbolic link where a directory is expected" % (home / link))
    assert tree(tmp_path) == before and os.listdir(str(elsewhere)) == []


@pytest.mark.parametrize("name", ["ca.key", "api.key", "ca.crt", "api.crt"])
def test_a_link_where_tls_material_is_expected_is_refused_and_its_target_untouched(home, tmp_path, name):
    directory = service_mesh.default_tls_dir("shop")
    tls.ensure_certificates(directory, "shop", "api", ["api"], HostFiles())
    target = tmp_path / "theirs"
    target.write_text("theirs")
    path = os.path.join(directory, name)
    os.unlink(path)
    os.symlink(str(target), path)
    for files in (DryRunFiles(), HostFiles()):
        with pytest.raises(ClockworkError) as error:
            tls.ensure_certificates(directory, "shop", "api", ["api", "api.internal"], files)
        assert str(error.value).startswith("%s is a symbolic link where a file is expected" % path)
    assert target.read_text() == "theirs" and os.path.islink(path)


def test_tls_directories_are_made_0700_from_the_home_down_and_keys_rewritten_in_place(home):
    directory = service_mesh.default_tls_dir("shop")
    actions, paths = tls.ensure_certificates(directory, "shop", "api", ["api"], HostFiles())
    assert actions == ["generate CA for stack shop", "generate certificate for api (api)"]
    for sub in (".clockwork", ".clockwork/shop", ".clockwork/shop/tls"):
        assert stat.S_IMODE(os.lstat(str(home / sub)).st_mode) == 0o700, sub
    modes = dict((key, stat.S_IMODE(os.lstat(paths[key]).st_mode)) for key in ("ca_key", "key", "ca", "cert"))
    assert modes == {"ca_key": 0o600, "key": 0o600, "ca": 0o644, "cert": 0o644}
    inode = os.stat(paths["key"]).st_ino
    assert tls.ensure_certificates(directory, "shop", "api", ["api", "api.internal"], HostFiles())[0] == [
        "generate certificate for api (api, api.internal)"]
    assert os.stat(paths["key"]).st_ino == inode   # a bind mount of it sees the new key


def _client(path, stack="shop"):
    """A client container's attributes as Docker shows them, its password given as a file."""
    return {"Config": {"Env": ["DATABASE_URL_FILE=/run/secrets/DATABASE_URL", "MODE=prod"],
                       "Labels": {"io.clockwork.stack": stack}},
            "Mounts": [{"Type": "bind", "Source": path, "Destination": "/run/secrets/DATABASE_URL"}]}


def test_client_env_reads_a_password_file_back_and_refuses_one_that_is_a_link(home, tmp_path):
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    write_secret_file(path, SECRET, HostFiles(), ConnectionResult("database", "app", "db"))
    assert client_env.client_env(_client(path))["DATABASE_URL"] == SECRET
    os.unlink(path)
    assert "DATABASE_URL" not in client_env.client_env(_client(path))   # missing: as if not given
    theirs = tmp_path / "theirs"
    theirs.write_text("someone-elses-secret")
    os.symlink(str(theirs), path)
    with pytest.raises(ClockworkError) as error:
        client_env.client_env(_client(path))
    assert str(error.value).startswith("%s is a symbolic link where a file is expected" % path)
    assert "someone-elses-secret" not in str(error.value)


def test_client_env_refuses_a_password_file_behind_a_linked_directory(home, tmp_path):
    elsewhere = _planted(tmp_path, home, ".clockwork/shop/secrets")
    (elsewhere / "app").mkdir()
    (elsewhere / "app" / "DATABASE_URL").write_text("planted")
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    with pytest.raises(ClockworkError) as error:
        client_env.client_env(_client(path))
    assert str(error.value).startswith("%s is a symbolic link where a directory is expected" %
                                       (home / ".clockwork/shop/secrets"))


def _Engine(check_mode):
    """A stack with nothing left on the engine but its password files (docker/memory.py): every call
    recorded; in check mode a dry run over it."""
    return dry_run_gateway(live=MemoryEngine()) if check_mode else memory_gateway()


def _destroy(check_mode):
    engine = _Engine(check_mode)
    report = DockerApplier(engine, "shop", [], []).absent()
    return engine, report


@pytest.mark.parametrize("link", [".clockwork/shop/secrets", ".clockwork/shop", ".clockwork"])
def test_destroy_refuses_a_linked_password_file_directory_before_any_change(home, tmp_path, link):
    elsewhere = _planted(tmp_path, home, link)
    (elsewhere / "keep").write_text("theirs")
    for check_mode in (True, False):
        engine = _Engine(check_mode)
        with pytest.raises(ClockworkError) as error:
            DockerApplier(engine, "shop", [], []).absent()
        assert engine.api.calls == [], "destroy touched the engine before refusing"
        assert str(error.value).startswith("%s is a symbolic link where " % (home / link))
    assert (elsewhere / "keep").read_text() == "theirs" and os.path.islink(str(home / link))
    if link.endswith("secrets"):
        assert str(error.value) == (
            "%s is a symbolic link where the stack's password-file directory is expected: destroy never removes "
            "through a link; remove the link and run again" % (home / link))


def test_destroy_removes_the_password_files_directory_and_check_mode_only_says_so(home):
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    write_secret_file(path, SECRET, HostFiles(), ConnectionResult("database", "app", "db"))
    secrets = host_files.stack_secrets("shop")
    _engine, dry = _destroy(True)
    assert {"kind": "password files", "name": secrets, "changed": True, "actions": ["remove"], "reasons": []} in \
        dry["entries"] and os.path.isdir(secrets)
    _engine, done = _destroy(False)
    assert done["changed"] and not os.path.lexists(secrets)
    _engine, again = _destroy(False)   # nothing left: nothing to say
    assert not again["changed"]


def _plan(engine="docker", froms=("api", "worker")):
    resources = [{"name": "db", "image": "postgres"}] + [{"name": name, "image": "app"} for name in froms]
    connections = [{"type": "database", "from": name, "to": "db", "password": SECRET, "password_delivery": "file"}
                   for name in froms]
    return Plan("shop", resources, connections, base_dir="/srv/play", engine=engine)


def test_the_preflight_names_each_link_once_under_the_connection_that_needs_it(home, tmp_path):
    preflight = Preflight(None, _plan())
    preflight._password_file_problems()
    assert preflight.problems.items == []   # nothing there yet: the run makes it
    _planted(tmp_path, home, ".clockwork/shop/secrets/worker")
    preflight._password_file_problems()
    assert preflight.problems.items == [
        "connection database worker -> db: password_delivery: %s is a symbolic link where a directory is expected: a "
        "file holding a secret and its directories are never written through a link; remove it and run again"
        % (home / ".clockwork/shop/secrets/worker")]
    os.unlink(str(home / ".clockwork/shop/secrets/worker"))
    os.rmdir(str(home / ".clockwork/shop/secrets"))
    os.rename(str(tmp_path / "elsewhere"), str(tmp_path / "before"))
    _planted(tmp_path, home, ".clockwork/shop/secrets")
    again = Preflight(None, _plan())
    again._password_file_problems()
    assert [p.split(": ", 1)[0] for p in again.problems.items] == ["connection database api -> db"], \
        "one link, one problem"
    with pytest.raises(ClockworkError) as error:
        again.problems.raise_if_any(again.heading % "shop")
    assert "nothing was changed" in str(error.value) and SECRET not in str(error.value)


def test_the_swarm_preflight_asks_nothing_of_password_files(home, tmp_path):
    """Swarm keeps them in its secret store: no file on the host, nothing to refuse."""
    _planted(tmp_path, home, ".clockwork/shop/secrets")
    preflight = Preflight(None, _plan("swarm"))
    preflight._password_file_problems()
    assert preflight.problems.items == []
