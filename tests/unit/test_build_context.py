"""Issue 34 part 3: a build context read on the controller (plugin_utils/build_context.py) is
foreign input: .dockerignore honoured, nothing outside the context read (symbolic links sent as
links, a Dockerfile outside refused), the size bounded, and a content hash that changes exactly
when the content does."""
import io
import os
import shutil
import stat
import tarfile
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.clockwork.connections.plugins.plugin_utils import build_context
from ansible_collections.clockwork.connections.plugins.plugin_utils.build_context import (
    BuildContextError, IgnoreMatcher, ignore_patterns, read_context, ship_builds)


def write(root, files):
    """files: path -> bytes, or (bytes, mode)."""
    for path, content in files.items():
        mode = None
        if isinstance(content, tuple):
            content, mode = content
        full = os.path.join(str(root), path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        if mode is not None:
            os.chmod(full, mode)


def members(archive):
    with tarfile.open(archive) as tar:
        return dict((m.name, m) for m in tar.getmembers())


def content(archive, name):
    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read()


@pytest.fixture
def ctx(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    write(root, {"Dockerfile": "FROM clockwork-test/nginx:1.22\nCOPY site /usr/share/nginx/html\n",
                 "site/index.html": "<h1>hello</h1>\n", "site/run.sh": (b"#!/bin/sh\n", 0o755)})
    return root


def read(root, tmp_path, **options):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return read_context(str(root), where="resource web", directory=str(out), **options)


def test_tar_is_what_post_build_takes(ctx, tmp_path):
    read_ = read(ctx, tmp_path)
    found = members(read_.archive)
    assert sorted(found) == ["Dockerfile", "site", "site/index.html", "site/run.sh"]
    assert found["site"].isdir() and found["site/run.sh"].mode == 0o755
    assert all(m.uid == 0 and m.gid == 0 for m in found.values())
    assert content(read_.archive, "site/index.html") == b"<h1>hello</h1>\n"
    assert read_.size == len(b"<h1>hello</h1>\n") + len(b"#!/bin/sh\n") + len((ctx / "Dockerfile").read_bytes())
    assert read_.content_hash.startswith("sha256:")


def test_dockerignore_honoured_dockerfile_always_sent(ctx, tmp_path):
    write(ctx, {".dockerignore": "# comment\n*.log\nnode_modules\n**/*.tmp\nsecret/\n!secret/keep.txt\nDockerfile\n",
                "a.log": "x", "sub/b.log": "kept: * stays in one name", "node_modules/x/y.js": "x",
                "deep/er/c.tmp": "x", "secret/key.pem": "k", "secret/keep.txt": "ok"})
    found = members(read(ctx, tmp_path).archive)
    assert "a.log" not in found and "sub/b.log" in found
    assert not any(n.startswith("node_modules") for n in found)
    assert "deep/er/c.tmp" not in found
    assert "secret/key.pem" not in found and "secret/keep.txt" in found
    assert "Dockerfile" in found and ".dockerignore" in found


@pytest.mark.parametrize("pattern, path, excluded", [
    ("*.md", "README.md", True), ("*.md", "docs/README.md", False), ("**/*.md", "docs/a/README.md", True),
    ("docs", "docs/a/README.md", True), ("/docs", "docs/x", True), ("d?cs", "docs", True), ("d[a-o]cs", "docs", True),
    ("./build/../dist", "dist/app.js", True), ("**", "anything/at/all", True), ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True), ("a/**/b", "a/x/c", False),
])
def test_ignore_patterns_as_the_cli_matches_them(pattern, path, excluded):
    assert IgnoreMatcher(ignore_patterns(pattern)).excluded(path) is excluded


def test_last_matching_pattern_decides():
    matcher = IgnoreMatcher(ignore_patterns("*.txt\n!keep*.txt\nkeep-not.txt"))
    assert matcher.excluded("a.txt") and not matcher.excluded("keep.txt") and matcher.excluded("keep-not.txt")


# -- hostile contexts --------------------------------------------------------------------------

def test_symlink_out_of_the_context_is_sent_as_a_link_and_never_followed(ctx, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside, {"passwd": "root:x:0:0 SECRET-OUTSIDE"})
    os.symlink(str(outside / "passwd"), str(ctx / "site" / "leak"))
    os.symlink(str(outside), str(ctx / "site" / "dirleak"))
    os.symlink("../../outside/passwd", str(ctx / "site" / "relleak"))
    read_ = read(ctx, tmp_path)
    found = members(read_.archive)
    for name, target in (("site/leak", str(outside / "passwd")), ("site/dirleak", str(outside)),
                         ("site/relleak", "../../outside/passwd")):
        assert found[name].issym() and found[name].linkname == target
    assert not any(n.startswith("site/dirleak/") for n in found)
    with open(read_.archive, "rb") as handle:
        assert b"SECRET-OUTSIDE" not in handle.read()


def test_dockerfile_path_leaving_the_context_is_refused(ctx, tmp_path):
    write(tmp_path, {"Dockerfile.evil": "FROM scratch\n"})
    for dockerfile in ("../Dockerfile.evil", "site/../../Dockerfile.evil", str(tmp_path / "Dockerfile.evil"), ".."):
        with pytest.raises(BuildContextError) as caught:
            read(ctx, tmp_path, dockerfile=dockerfile)
        assert caught.value.msg.startswith("resource web: build.dockerfile: ")


def test_dockerfile_dot_dot_that_stays_inside_is_taken(ctx, tmp_path):
    write(ctx, {"docker/web.Dockerfile": "FROM clockwork-test/nginx:1.22\n"})
    read_ = read(ctx, tmp_path, dockerfile="site/../docker/web.Dockerfile")
    assert "docker/web.Dockerfile" in members(read_.archive)


def test_dockerfile_that_is_a_link_out_is_refused(ctx, tmp_path):
    write(tmp_path, {"elsewhere/Dockerfile": "FROM scratch\n"})
    os.unlink(str(ctx / "Dockerfile"))
    os.symlink(str(tmp_path / "elsewhere" / "Dockerfile"), str(ctx / "Dockerfile"))
    with pytest.raises(BuildContextError) as caught:
        read(ctx, tmp_path)
    assert "resource web: build.dockerfile:" in caught.value.msg and "symbolic link" in caught.value.msg


def test_dockerfile_through_a_linked_directory_is_refused(ctx, tmp_path):
    write(tmp_path, {"elsewhere/Dockerfile": "FROM scratch\n"})
    os.symlink(str(tmp_path / "elsewhere"), str(ctx / "docker"))
    with pytest.raises(BuildContextError, match="build.dockerfile"):
        read(ctx, tmp_path, dockerfile="docker/Dockerfile")


def test_missing_dockerfile_and_context_named(ctx, tmp_path):
    with pytest.raises(BuildContextError, match=r"resource web: build.dockerfile: nope is not a regular file"):
        read(ctx, tmp_path, dockerfile="nope")
    with pytest.raises(BuildContextError, match=r"resource web: build.context: .*absent is not a directory"):
        read(tmp_path / "absent", tmp_path)


def test_huge_file_refused_before_it_is_read(ctx, tmp_path):
    with open(str(ctx / "huge.bin"), "wb") as handle:   # sparse: 64 GiB that take no disk
        handle.truncate(64 * 1024 ** 3)
    with pytest.raises(BuildContextError) as caught:
        read(ctx, tmp_path)
    assert caught.value.msg.startswith("resource web: build.context: ")
    assert "more than 256 MiB" in caught.value.msg and "huge.bin" in caught.value.msg
    assert os.listdir(str(tmp_path / "out")) == []   # the partial tar is gone


def test_size_and_entry_bounds_are_totals(ctx, tmp_path):
    write(ctx, {"a.bin": b"x" * 600, "b.bin": b"y" * 600})
    with pytest.raises(BuildContextError, match="more than 1000 bytes"):
        read(ctx, tmp_path, max_bytes=1000)
    with pytest.raises(BuildContextError, match="more than 3 entries"):
        read(ctx, tmp_path, max_entries=3)


def test_fifo_left_out_unread(ctx, tmp_path):
    os.mkfifo(str(ctx / "pipe"))   # opening it for reading would block the run
    found = members(read(ctx, tmp_path).archive)
    assert "pipe" not in found and "Dockerfile" in found


def test_unreadable_file_named(ctx, tmp_path, monkeypatch):
    """A file the controller's user may not read (EACCES, as for a root-only file): named, not skipped."""
    write(ctx, {"locked": "x"})
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if path == "locked":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(build_context.os, "open", refusing_open)
    with pytest.raises(BuildContextError, match=r"resource web: build.context: locked in .* cannot be read: Permission denied"):
        read(ctx, tmp_path)


def test_dockerignore_too_big_or_with_a_bad_pattern_is_named(ctx, tmp_path):
    write(ctx, {".dockerignore": "[z-a]\n"})
    with pytest.raises(BuildContextError, match=r"resource web: build.context: .dockerignore in .*'\[z-a\]' is not a valid"):
        read(ctx, tmp_path)
    write(ctx, {".dockerignore": "#" * (1024 * 1024 + 1)})
    with pytest.raises(BuildContextError, match=r"resource web: build.context: its .dockerignore is over 1048576 bytes"):
        read(ctx, tmp_path)


# -- the hash --------------------------------------------------------------------------------

def test_hash_ignores_times_and_reading_order(ctx, tmp_path):
    first = read(ctx, tmp_path).content_hash
    os.utime(str(ctx / "site" / "index.html"), (1, 1))
    assert read(ctx, tmp_path).content_hash == first


@pytest.mark.parametrize("change", [
    lambda root: write(root, {"site/index.html": "<h1>changed</h1>\n"}),
    lambda root: os.chmod(str(root / "site" / "index.html"), 0o600),
    lambda root: os.rename(str(root / "site" / "index.html"), str(root / "site" / "other.html")),
    lambda root: write(root, {"site/new.txt": ""}),
    lambda root: os.mkdir(str(root / "empty")),
    lambda root: os.symlink("index.html", str(root / "site" / "alias")),
])
def test_hash_changes_with_the_content(ctx, tmp_path, change):
    before = read(ctx, tmp_path).content_hash
    change(ctx)
    assert read(ctx, tmp_path).content_hash != before


def test_hash_changes_with_the_build_settings_only_where_they_differ(ctx, tmp_path):
    base = read(ctx, tmp_path, args={"A": "1"}, target="web", labels={"x": "1"}).content_hash
    assert read(ctx, tmp_path, args={"A": "1"}, target="web", labels={"x": "1"}).content_hash == base
    for options in ({"args": {"A": "2"}}, {"args": {}}, {"target": "other"}, {"labels": {"x": "2"}}):
        merged = dict({"args": {"A": "1"}, "target": "web", "labels": {"x": "1"}}, **options)
        assert read(ctx, tmp_path, **merged).content_hash != base
    write(ctx, {"Dockerfile.alt": (ctx / "Dockerfile").read_bytes()})
    assert read(ctx, tmp_path, dockerfile="Dockerfile.alt").content_hash != read(ctx, tmp_path).content_hash


def test_ignored_file_does_not_change_the_hash(ctx, tmp_path):
    write(ctx, {".dockerignore": "*.log\n"})
    before = read(ctx, tmp_path).content_hash
    write(ctx, {"debug.log": "anything"})
    assert read(ctx, tmp_path).content_hash == before


_NAMES = st.sampled_from(["a", "b", "c.txt", "d/e", "d/f", "g/h/i"])
_TREES = st.dictionaries(_NAMES, st.tuples(st.binary(max_size=64), st.sampled_from([0o644, 0o755, 0o600])),
                         max_size=5)


def _tree_on_disk(root, tree):
    os.makedirs(str(root))
    write(root, dict({"Dockerfile": b"FROM scratch\n"}, **tree))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=_TREES, data=st.data())
def test_hash_changes_iff_the_content_does(tmp_path, first, data):
    """Two trees of files (names, bytes, modes), each written to disk fresh: equal hashes exactly
    when the trees are equal. A file's parent directories are part of the tree: a tree's
    directories are those its files need, so equal files mean equal trees. The second tree is
    the first one half of the time (written anew: other times, other inodes), else any tree."""
    second = dict(first) if data.draw(st.booleans()) else data.draw(_TREES)
    where = tempfile.mkdtemp(dir=str(tmp_path))
    roots = [tmp_path / where / side for side in ("one", "two")]
    _tree_on_disk(roots[0], first)
    _tree_on_disk(roots[1], second)
    hashes = [read_context(str(r), where="resource web", directory=where).content_hash for r in roots]
    assert (hashes[0] == hashes[1]) == (first == second)


# -- what the action calls -----------------------------------------------------------------

def test_ship_builds_reads_every_context_and_transfers_its_tar(ctx, tmp_path):
    sent, local = [], []

    def transfer(path):
        local.append(path)
        with open(path, "rb") as handle:
            sent.append(handle.read())
        return "/remote/tmp/" + os.path.basename(path)

    resources = [{"name": "db", "image": "postgres"},
                 {"name": "web", "build": {"context": "app", "archive": "/etc/shadow", "content_hash": "forged"}},
                 {"name": "short", "build": "app"}]
    shipped = ship_builds(resources, lambda path: str(tmp_path / path), transfer)
    assert shipped[0] == resources[0]
    assert shipped[1]["build"]["archive"].startswith("/remote/tmp/clockwork-build-")
    assert shipped[1]["build"]["content_hash"] == read(ctx, tmp_path).content_hash != "forged"
    assert shipped[2]["build"]["context"] == "app" and shipped[2]["build"]["content_hash"]
    assert len(sent) == 2 and tarfile.open(fileobj=io.BytesIO(sent[0])).getnames()
    assert resources[1]["build"]["archive"] == "/etc/shadow"   # the declaration itself is not changed
    assert not [p for p in local if os.path.exists(p)]   # the controller's tars are removed


def test_ship_builds_reports_every_bad_context_at_once(tmp_path):
    resources = [{"name": "one", "build": {"context": str(tmp_path / "none")}},
                 {"name": "two", "build": {"context": str(tmp_path), "dockerfile": "../x"}},
                 {"name": "three", "build": {"dockerfile": "Dockerfile"}}]   # no context: the plan says so
    with pytest.raises(BuildContextError) as caught:
        ship_builds(resources, lambda p: p, lambda p: p, heading="stack shop cannot be deployed")
    assert caught.value.msg.startswith("stack shop cannot be deployed: 2 problems found, nothing was changed:")
    assert "- resource one: build.context: " in caught.value.msg
    assert "- resource two: build.dockerfile: " in caught.value.msg


def test_reader_does_not_follow_a_file_swapped_for_a_link(ctx, tmp_path, monkeypatch):
    """A file replaced by a link between the walk's stat and its open is not read through the link."""
    write(tmp_path, {"outside/secret": "SECRET-OUTSIDE"})
    real_stat = os.stat

    def swapping_stat(name, *args, **kwargs):
        answer = real_stat(name, *args, **kwargs)
        if name == "index.html" and kwargs.get("dir_fd") is not None and stat.S_ISREG(answer.st_mode):
            os.unlink(str(ctx / "site" / "index.html"))
            os.symlink(str(tmp_path / "outside" / "secret"), str(ctx / "site" / "index.html"))
        return answer
    monkeypatch.setattr(build_context.os, "stat", swapping_stat)
    with pytest.raises(BuildContextError, match="site/index.html .* cannot be read"):
        read(ctx, tmp_path)


class _Shell(object):
    def __init__(self):
        self.tmpdir = None

    @staticmethod
    def join_path(*parts):
        return "/".join(parts)


class _Action(object):
    """What action_transfer asks of an ActionBase: its connection's shell, the remote tmp dir, put_file."""

    def __init__(self, remote):
        self._connection = type("Connection", (), {})()
        self._connection._shell = _Shell()
        self.remote, self.made, self.fixed = remote, 0, []

    def _make_tmp_path(self):
        self.made += 1
        self._connection._shell.tmpdir = str(self.remote)
        return self._connection._shell.tmpdir

    def _transfer_file(self, local, remote):
        shutil.copy(local, remote)
        return remote

    def _fixup_perms2(self, paths):
        self.fixed.append(tuple(paths))


def test_action_transfer_puts_each_tar_in_the_task_tmp_dir_made_once(ctx, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    action = _Action(remote)
    resources = [{"name": "one", "build": {"context": str(ctx)}}, {"name": "two", "build": {"context": str(ctx)}}]
    shipped = ship_builds(resources, lambda p: p, build_context.action_transfer(action))
    archives = [r["build"]["archive"] for r in shipped]
    assert action.made == 1 and all(os.path.dirname(a) == str(remote) for a in archives)
    assert [f[0] for f in action.fixed] == [str(remote)] * 2 and [f[1] for f in action.fixed] == archives
    assert tarfile.open(archives[0]).getnames() == tarfile.open(archives[1]).getnames()
    assert shipped[0]["build"]["content_hash"] == shipped[1]["build"]["content_hash"]


def test_ship_builds_leaves_what_is_no_list_of_builds_as_it_is():
    def never(path):
        raise AssertionError("nothing to transfer")
    for resources in (None, "web", {"name": "web"}, [], [{"name": "web", "image": "nginx"}], ["web"]):
        assert ship_builds(resources, lambda p: p, never) is resources


# -- the stack's own files beside its playbook ----------------------------------------------------

def test_the_stacks_own_files_are_no_part_of_a_context(ctx, tmp_path):
    """A `build: .` beside the playbook: the diagram (<stack>.stack.md) and clockwork.lock.yml the stack writes
    there change neither the tar nor the hash (else each run that writes them would rebuild), even where a
    .dockerignore takes them back in; a diagram_path or lock file of its own, named by the action, neither."""
    def shipped(own_files=()):
        kept = []

        def transfer(path):
            kept.append(members(path))
            return path
        resources = [{"name": "web", "build": {"context": str(ctx)}}]
        return ship_builds(resources, lambda p: p, transfer, own_files=own_files)[0]["build"]["content_hash"], kept[0]

    for directory in ("deploy", "docs", "locks"):   # directories of the context, which are sent
        (ctx / directory).mkdir()
    before, sent = shipped()
    write(ctx, {"shop.stack.md": "# shop\n", "clockwork.lock.yml": "connections: {}\n", "deploy/shop.stack.md": "x",
                "docs/picture.md": "# shop, elsewhere\n", "locks/prod.yml": "x: 1\n"})
    assert read(ctx, tmp_path).content_hash != before, "read alone, they are files of the context"
    after, sent_after = shipped([str(ctx / "docs" / "picture.md"), str(ctx / "locks" / "prod.yml"),
                                 str(tmp_path / "elsewhere.stack.md"), "relative.md"])
    assert after == before and sorted(sent_after) == sorted(sent)
    write(ctx, {".dockerignore": "!*.stack.md\n!clockwork.lock.yml\n"})
    again, sent_again = shipped([str(ctx / "docs" / "picture.md"), str(ctx / "locks" / "prod.yml")])
    assert sorted(sent_again) == sorted(list(sent) + [".dockerignore"])
    # A file of the build's own that merely looks alike is sent: only what the stack writes is left out.
    write(ctx, {"site/stack.md": "notes\n"})
    assert "site/stack.md" in shipped()[1]


def test_own_patterns_of_paths_inside_the_context_only(ctx):
    patterns = build_context.own_patterns(str(ctx), [str(ctx / "a[1].md"), str(ctx.parent / "x.md"), None, "rel.md"])
    assert patterns == list(build_context.OWN_FILES) + ["a\\[1].md"]
    assert IgnoreMatcher(patterns).excluded("a[1].md") and not IgnoreMatcher(patterns).excluded("a1.md")
