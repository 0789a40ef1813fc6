"""Issue 31, property-based: compose documents made by Hypothesis, valid and not, through
from_compose and to_compose (no Docker).

- from_compose raises nothing but ComposeError, with a message; to_compose nothing but ExportError.
- No file outside the compose file's directory is opened (an audit hook sees every open of the
  process; Python's own files, the venv's and the collection's are not the compose file's reads).
- Where the import succeeds and the export too, importing the exported file gives the same
  declaration back.
"""
import os
import shutil
import sys
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import ExportError, export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import ComposeError, from_compose

from test_compose_import import quiet_fallback  # noqa: F401  (autouse: the compact schema's warning left out)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


# -- every open() of the process, while a call runs -------------------------------------------

class Opened(object):
    """The paths opened while recording (sys.addaudithook: builtins.open, io.open and os.open all
    raise the "open" event). A hook cannot be removed: one for the module, switched on and off."""

    paths = None

    @classmethod
    def hook(cls, event, args):
        if event == "open" and cls.paths is not None and args and isinstance(args[0], (str, bytes, os.PathLike)):
            cls.paths.append(os.fsdecode(args[0]))

    def __enter__(self):
        Opened.paths = []
        return Opened.paths

    def __exit__(self, *exc):
        Opened.paths = None


sys.addaudithook(Opened.hook)

# What the interpreter, its libraries and the collection itself may open (modules, the schema).
TRUSTED = sorted(set(os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, ROOT)
                     + tuple(sys.path) if p and os.path.isdir(p)))


def foreign_reads(paths, base_dir):
    """The opened paths that are neither under base_dir nor the interpreter's, the libraries' or the
    collection's own (a relative path is under the current directory, which is the repository)."""
    allowed = [os.path.realpath(base_dir)] + TRUSTED
    out = []
    for path in paths:
        real = os.path.realpath(path)
        if not any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in allowed):
            out.append(path)
    return out


# -- a directory with files a compose file may name, and one beside it it must not read -------

WORLD = tempfile.mkdtemp(prefix="clockwork-property-")
BASE = os.path.join(WORLD, "project")
OUTSIDE = os.path.join(WORLD, "outside")
for directory in (BASE, OUTSIDE, os.path.join(BASE, "migrations"), os.path.join(OUTSIDE, "migrations")):
    os.makedirs(directory)
for path, content in ((os.path.join(BASE, "app.env"), "APP_MODE=prod\nAPP_TOKEN='t{{ok}}$x'\n"),
                      (os.path.join(BASE, "password.txt"), "pw-inside\n"),
                      (os.path.join(BASE, "schema.sql"), "CREATE TABLE t (x int);\n"),
                      (os.path.join(BASE, "migrations", "001.sql"), "CREATE TABLE m (x int);\n"),
                      (os.path.join(OUTSIDE, "secret.env"), "LEAKED=outside\n"),
                      (os.path.join(OUTSIDE, "schema.sql"), "CREATE TABLE leaked (x int);\n")):
    with open(path, "w") as handle:
        handle.write(content)
os.symlink(os.path.join(OUTSIDE, "secret.env"), os.path.join(BASE, "link.env"))
os.symlink(OUTSIDE, os.path.join(BASE, "linkdir"))


@pytest.fixture(scope="module", autouse=True)
def world():
    yield
    shutil.rmtree(WORLD, ignore_errors=True)


# -- strategies -----------------------------------------------------------------------------

TRICKY = ["{{", "}}", "{%", "%}", "{#", "#}", "{% endraw %}", "{% raw %}", "${", "}", "$$", "$", "${X}", "${X:-d}",
          "${X:?gone}", "$X", "'", '"', "\\", "\u2028", "\u2029", "\x85", "\n", "\r", "\t", "#", ": ", "- ", "&a", "*a",
          "!unsafe ", "é", "\u00a0", "😀", "lookup('pipe', 'id')", "nextcloud", "pw-inside", "postgres", "://",
          "@db:5432/", "%", "{password}", "{host}"]

text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=6)), max_size=6).map("".join)
# Keys YAML reads as a number, a boolean or null among the names: a ComposeError each.
odd_keys = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False, width=16))
names = st.one_of(st.sampled_from(["web", "db", "cache", "api", "app", "worker", "w-1", "w.2", "x_3"]),
                  st.from_regex(r"\A[a-z][a-z0-9_-]{0,7}\Z"), text, odd_keys)
env_names = st.one_of(st.sampled_from(["POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "DATABASE_URL",
                                       "REDIS_URL", "API_TOKEN", "DB_HOST", "MODE", "MYSQL_PASSWORD_FILE"]),
                      st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,6}\Z"), text, odd_keys)
env_values = st.one_of(text, st.sampled_from([
    "postgresql://u:pw-inside@db:5432/app", "postgres://nextcloud:nextcloud@db/nextcloud", "redis://cache:6379/0",
    "http://api:8000/health", "db", "cache", "${MISSING:-fallback}", "$$HOME", "/run/secrets/pw"]),
    st.integers(-5, 70000), st.booleans(), st.none())
environment = st.one_of(st.dictionaries(env_names, env_values, max_size=5),
                        st.lists(st.one_of(text, st.builds("{}={}".format, env_names, text)), max_size=4))
ports = st.lists(st.one_of(st.sampled_from(["80", "8080:80", "127.0.0.1:5432:5432", "9000/udp", "1-3:1-3",
                                            "65536:1", "0:0", "[::1]:80:80", "x:y"]),
                           st.integers(-1, 70000), text), max_size=3)
volumes = st.lists(st.one_of(st.sampled_from([
    "./data:/data", "../outside:/o", "../outside/secret.env:/s", "/srv/x:/x", "/etc:/e", "/:/host",
    "/var/run/docker.sock:/var/run/docker.sock", "named:/n", "named:/n:ro", "link.env:/l", "linkdir:/ld",
    "./app.env:/app.env:ro", "data", ":", "/x:", "~/.ssh:/ssh"]),
    st.fixed_dictionaries({"type": st.sampled_from(["bind", "volume", "tmpfs", "npipe", 3]),
                           "source": st.sampled_from(["./data", "../outside", "/", "named", "/var/run/docker.sock"]),
                           "target": st.sampled_from(["/t", "", "relative"])}),
    text), max_size=3)
labels = st.one_of(st.dictionaries(st.one_of(st.sampled_from(["io.clockwork.stack", "io.clockwork.connection-mounts",
                                                              "team", "com.example.x"]), text),
                                   st.one_of(text, st.integers()), max_size=3),
                   st.lists(text, max_size=2))
env_files = st.one_of(st.sampled_from(["app.env", "../outside/secret.env", "link.env", "linkdir/secret.env",
                                       os.path.join(OUTSIDE, "secret.env"), "/etc/hostname", "missing.env"]),
                      st.lists(st.sampled_from(["app.env", "link.env", "../outside/secret.env", "missing.env"]),
                               max_size=2),
                      st.lists(st.fixed_dictionaries({"path": st.sampled_from(["app.env", "link.env", "missing.env"]),
                                                      "required": st.booleans()}), max_size=2))
grant_keys = st.fixed_dictionaries({}, optional={
    "privileged": st.booleans(), "cap_add": st.lists(st.sampled_from(["ALL", "SYS_ADMIN", "CHOWN", "net_admin"]),
                                                     max_size=2),
    "pid": st.sampled_from(["host", "service:db", ""]), "ipc": st.sampled_from(["host", "private"]),
    "network_mode": st.sampled_from(["host", "bridge", "none"]), "devices": st.lists(st.sampled_from(
        ["/dev/fuse", "/dev/null:/dev/x:r"]), max_size=1)})
service_extension = st.fixed_dictionaries({}, optional={
    "fields": st.one_of(st.dictionaries(st.sampled_from(["state", "timeout", "wait", "privileged", "mounts", "image"]),
                                        st.one_of(text, st.integers(0, 100), st.booleans()), max_size=2), text),
    "contributed": st.fixed_dictionaries({}, optional={"env": st.lists(env_names, max_size=2)}),
    "defaulted": st.lists(st.sampled_from(["healthcheck.interval", "replicas"]), max_size=1)})

service = st.fixed_dictionaries({}, optional={
    "image": st.one_of(st.sampled_from(["postgres:15", "redis:7", "nginx:1.22", "mysql:8", "nextcloud:28"]), text),
    "command": st.one_of(text, st.lists(text, max_size=3)),
    "environment": environment, "ports": ports, "expose": st.lists(st.sampled_from(["80", "5432", 6379]), max_size=2),
    "volumes": volumes, "labels": labels, "env_file": env_files,
    "networks": st.one_of(st.lists(st.sampled_from(["front", "back", "default"]), max_size=2),
                          st.dictionaries(st.sampled_from(["front", "back"]),
                                          st.one_of(st.none(), st.fixed_dictionaries(
                                              {"aliases": st.lists(text, max_size=1)})), max_size=2)),
    "depends_on": st.lists(names, max_size=2),
    "secrets": st.lists(st.sampled_from(["pw", "outside", "linked", "missing"]), max_size=2),
    "healthcheck": st.fixed_dictionaries({"test": st.one_of(text, st.lists(text, max_size=3))},
                                         optional={"interval": st.sampled_from(["5s", "1m", "x"])}),
    "restart": st.sampled_from(["always", "unless-stopped", "on-failure:3", "no", "sometimes"]),
    "x-clockwork": service_extension,
}).flatmap(lambda keys: grant_keys.map(lambda grants: dict(keys, **grants)))

top_extension = st.fixed_dictionaries({"version": st.sampled_from([1, 1, 2, "1"])}, optional={
    "order": st.lists(names, max_size=3),
    "resources": st.one_of(text, st.lists(st.fixed_dictionaries(
        {"name": names, "type": st.sampled_from(["file", "volume", "container"])},
        optional={"path": st.sampled_from(["conf.txt", "../x", "/etc/passwd", os.path.join(OUTSIDE, "f"),
                                           "linkdir/f", "sub/f"]),
                  "content": text, "labels": labels}), max_size=2)),
    "connections": st.one_of(text, st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["database", "file", "dependency", "network", "service_mesh", "bogus"]),
         "from": names, "to": names},
        optional={"schema_file": st.sampled_from(["schema.sql", "../outside/schema.sql", "linkdir/schema.sql",
                                                  "/etc/passwd"]),
                  "migrations_dir": st.sampled_from(["migrations", "../outside/migrations", "/etc"]),
                  "password": text, "source_path": st.sampled_from(["conf.txt", "../x", "/etc"]),
                  "mount_path": st.sampled_from(["/m", "rel"])}), max_size=2))})

document = st.fixed_dictionaries({"services": st.dictionaries(names, service, min_size=1, max_size=4)}, optional={
    "name": text,
    "networks": st.dictionaries(st.sampled_from(["front", "back"]), st.one_of(st.none(), st.fixed_dictionaries(
        {}, optional={"internal": st.booleans(), "driver": st.sampled_from(["bridge", "overlay"])})), max_size=2),
    "volumes": st.dictionaries(st.sampled_from(["named", "data"]), st.none(), max_size=2),
    "secrets": st.just({"pw": {"file": "./password.txt"}, "outside": {"file": "../outside/secret.env"},
                        "linked": {"file": "link.env"}, "missing": {"file": "missing.txt"}}),
    "x-clockwork": top_extension,
    "x-anchor": text,
})


# Documents a user may well write (valid names, images, ports and mounts), their text as hostile as
# above: what the round trip is about.
safe_names = st.from_regex(r"\A[a-z][a-z0-9-]{1,7}\Z")
safe_text = text.map(lambda value: value.replace("$", "$$"))   # a literal $, as a compose file writes it
valid_service = st.fixed_dictionaries({"image": st.sampled_from(["postgres:15", "redis:7", "nginx:1.22", "mysql:8",
                                                                 "example.org/team/app:1.0"])}, optional={
    "command": st.lists(safe_text, min_size=1, max_size=3),
    "environment": st.dictionaries(st.from_regex(r"\A[A-Z][A-Z0-9_]{0,8}\Z"), st.one_of(safe_text, st.sampled_from([
        "postgresql://app:pw-inside@db:5432/app", "redis://cache:6379/0", "db", "$${HOME}", "x$$y"])), max_size=4),
    "ports": st.lists(st.sampled_from(["80", "127.0.0.1::5432", "9000/udp"]), max_size=2, unique=True),
    "volumes": st.lists(st.sampled_from(["./data:/data", "named:/var/lib/named", "./site:/srv/site:ro",
                                         "/srv/app:/app:ro"]), max_size=2, unique=True),
    "labels": st.dictionaries(st.sampled_from(["team", "com.example.note", "tier"]), safe_text, max_size=2),
    "healthcheck": st.fixed_dictionaries({"test": st.lists(safe_text, min_size=1, max_size=2).map(
        lambda words: ["CMD"] + words), "interval": st.sampled_from(["5s", "1m"])}),
    "restart": st.sampled_from(["always", "unless-stopped", "no"]),
    "networks": st.lists(st.sampled_from(["front", "back"]), max_size=2, unique=True),
    "cap_drop": st.lists(st.sampled_from(["ALL", "NET_RAW"]), max_size=1),
})
valid_document = st.dictionaries(safe_names, valid_service, min_size=1, max_size=4).map(lambda services: {
    "services": services, "networks": {"front": None, "back": {"internal": True}}, "volumes": {"named": None}})


def dumped(doc):
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# Whole texts: the dumped documents, some cut short or with a line of noise, and raw text.
texts = st.one_of(
    document.map(dumped),
    st.tuples(document.map(dumped), st.integers(0, 400)).map(lambda pair: pair[0][:pair[1]]),
    st.tuples(document.map(dumped), text).map(lambda pair: pair[0] + pair[1] + "\n"),
    text,
)


# -- the properties -------------------------------------------------------------------------

def imported_or_refused(source_text, base_dir=BASE, **options):
    """from_compose's declaration, or None when it refuses with a ComposeError that says why;
    any other exception fails the test. No file outside base_dir may be opened."""
    with Opened() as opened:
        try:
            result = from_compose(source_text, project_name="prop", base_dir=base_dir, **options)
        except ComposeError as error:
            assert str(error).strip() and error.problems and all(p.strip() for p in error.problems), repr(error)
            result = None
    assert not foreign_reads(opened, base_dir), "read outside %s: %s" % (base_dir, foreign_reads(opened, base_dir))
    return result


@SETTINGS
@given(texts)
def test_from_compose_raises_only_its_own_error_and_reads_nothing_outside(source_text):
    imported_or_refused(source_text)


@SETTINGS
@given(document)
def test_allowing_every_grant_and_the_outside_directory_raises_only_its_own_error(doc):
    """With every opt-in, more of the file is read and kept; still only ComposeError, and still
    nothing opened beyond the directories allowed."""
    with Opened() as opened:
        try:
            from_compose(dumped(doc), project_name="prop", base_dir=BASE, allowed_paths=[OUTSIDE],
                         allow=["docker_socket", "host_paths", "privileged", "capabilities", "host_namespaces",
                                "devices"])
        except ComposeError as error:
            assert error.problems
    assert not [p for p in foreign_reads(opened, BASE) if not os.path.realpath(p).startswith(OUTSIDE)]


def exported_files(result, directory):
    with open(os.path.join(directory, "compose.yaml"), "w") as handle:
        handle.write(result["text"])
    for path, entry in result["files"].items():
        target = os.path.join(directory, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(entry["content"])


def as_declared(connections, directory):
    """The connections with the controller paths the import made absolute relative again."""
    prefixes = [os.path.realpath(directory) + os.sep, directory + os.sep, BASE + os.sep]
    out = []
    for connection in connections:
        connection = dict(connection)
        for key in ("schema_file", "migrations_dir"):
            for prefix in prefixes:
                if str(connection.get(key, "")).startswith(prefix):
                    connection[key] = connection[key][len(prefix):]
        out.append(connection)
    return out


@SETTINGS
@given(st.one_of(valid_document, valid_document, document))
def test_what_imports_exports_and_imports_again_the_same(doc):
    first = imported_or_refused(dumped(doc))
    if first is None:
        return
    stack = {"name": "prop", "resources": first["resources"], "connections": first["connections"]}
    try:
        result = export(stack, base_dir=BASE)
    except ExportError as error:
        assert str(error).strip()
        return
    directory = tempfile.mkdtemp(dir=WORLD)
    try:
        exported_files(result, directory)
        # A bind of the first directory is an absolute path in the second: the user lists it.
        again = imported_or_refused(result["text"], base_dir=directory, allowed_paths=[BASE])
        assert again is not None, "the exported file is refused:\n%s" % result["text"]
        assert again["resources"] == first["resources"]
        assert as_declared(again["connections"], directory) == as_declared(first["connections"], BASE)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_audit_hook_sees_a_read_outside():
    """The hook that the properties rely on does see an open() and an os.open()."""
    with Opened() as opened:
        open(os.path.join(OUTSIDE, "secret.env")).close()
        os.close(os.open(os.path.join(OUTSIDE, "schema.sql"), os.O_RDONLY))
    assert foreign_reads(opened, BASE) == [os.path.join(OUTSIDE, "secret.env"), os.path.join(OUTSIDE, "schema.sql")]


def test_restart_no_round_trips(tmp_path):
    first = from_compose("services: {web: {image: 'nginx:1.22', restart: 'no'}}", project_name="prop")
    result = export({"name": "prop", "resources": first["resources"], "connections": first["connections"]})
    exported_files(result, str(tmp_path))
    assert from_compose(result["text"], base_dir=str(tmp_path))["resources"] == first["resources"]


def test_an_absolute_bind_round_trips(tmp_path):
    first = from_compose("services: {web: {image: 'nginx:1.22', volumes: ['/srv/app:/app:ro']}}", project_name="prop")
    result = export({"name": "prop", "resources": first["resources"], "connections": first["connections"]})
    exported_files(result, str(tmp_path))
    again = from_compose(result["text"], base_dir=str(tmp_path))
    assert (again["resources"], again["connections"]) == (first["resources"], first["connections"])
