"""Password files on the Docker host are never written through a symbolic link (no Docker):
each directory from the home down is lstat-checked and opened with O_NOFOLLOW, the file too.
The real module path is in tests/integration/test_secret_file_links.py."""
import os
import stat

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils import host_files
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.database import client_env
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import write_secret_file

SECRET = "s3cret-not-to-leak"  # pragma: allowlist secret


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def refused(path, check_mode=False):
    result = ConnectionResult("database", "app", "db")
    with pytest.raises(ClockworkError) as error:
        write_secret_file(path, SECRET, check_mode, result)
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
    for check_mode in (True, False):   # --check tells the truth too
        assert refused(path, check_mode) == (
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
    for check_mode in (True, False):
        assert refused(path, check_mode).startswith("%s is a symbolic link where a file is expected" % path)
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
    assert write_secret_file(path, SECRET, False, result) is True
    written = real / ".clockwork" / "shop" / "secrets" / "app" / "DATABASE_URL"
    assert written.read_text() == SECRET and stat.S_IMODE(os.stat(str(written)).st_mode) == 0o400
    for directory in (".clockwork", ".clockwork/shop", ".clockwork/shop/secrets", ".clockwork/shop/secrets/app"):
        assert stat.S_IMODE(os.stat(str(real / directory)).st_mode) == 0o700, directory
    assert result.actions == ["write %s (mode 0400)" % path]
    os.chmod(str(written), 0o644)
    again = ConnectionResult("database", "app", "db")
    assert write_secret_file(path, SECRET, False, again) is False
    assert again.actions == ["chmod 400 %s" % path] and stat.S_IMODE(os.stat(str(written)).st_mode) == 0o400


def test_secret_path_problem_says_what_a_write_would_refuse_and_changes_nothing(home, tmp_path):
    path = client_env.secret_file("shop", "app", "DATABASE_URL")
    assert host_files.secret_path_problem(path) is None and not (home / ".clockwork").exists()
    (home / ".clockwork" / "shop").mkdir(parents=True)
    os.symlink(str(tmp_path), str(home / ".clockwork" / "shop" / "secrets"))
    assert host_files.secret_path_problem(path).startswith(
        "%s is a symbolic link where a directory is expected" % (home / ".clockwork" / "shop" / "secrets"))
