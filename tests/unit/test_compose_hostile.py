"""Issue 31, a compose file is data, never code: hostile compose files through from_compose and
the vars file that playbooks/compose_import.yml writes (no Docker).

The vars file and its secrets file are loaded as `vars_files` loads them (Ansible's DataLoader and
its AnsibleLoader, the file trusted as a playbook's own) and templated with Ansible's Templar: what
comes back is the compose file's text, and nothing of it ran (the marker file a `lookup('pipe')`
would make does not exist). A control proves that the same Templar does run such a lookup when
the text is the playbook's own, so that these tests can fail.
"""
import os
import textwrap
import time

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.clockwork.connections.plugins.filter.compose import FilterModule
from ansible_collections.clockwork.connections.plugins.filter.compose_declaration import compose_vars_file
from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import ship_files
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose import guard as compose_guard
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.declaration import vars_file
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import ComposeError, from_compose

from test_compose_import import quiet_fallback  # noqa: F401  (autouse: the compact schema's warning left out)

STACK = "shop"


# -- how Ansible reads what the importer writes -----------------------------------------

def ansible_loads(path):
    """A vars file as `vars_files` loads it: DataLoader (AnsibleLoader underneath), the file
    trusted as the playbook's own where ansible-core knows trust (2.19 and later)."""
    loader = DataLoader()
    try:
        return loader.load_from_file(str(path), trusted_as_template=True)
    except TypeError:   # ansible-core before 2.19: every loaded string may be templated
        return loader.load_from_file(str(path))


def templated(value, variables):
    """`value` templated by Ansible's Templar, as a task's arguments are."""
    return Templar(loader=DataLoader(), variables=variables).template(value)


def as_deployed(written, directory):
    """stack.yml and stack.secrets.yml loaded as their header says, then templated: the
    declaration the stack role would be given ({clockwork_stack_name, resources, connections})."""
    variables = {}
    for name, text in (("stack.secrets.yml", written["secrets"]), ("stack.yml", written["text"])):
        if text is not None:
            (directory / name).write_text(text)
            variables.update(ansible_loads(directory / name))
    return dict((key, templated(value, variables)) for key, value in variables.items()
                if key.startswith("clockwork_"))


def plain(node):
    """Ansible's string, list and dict types as the plain ones (for ==)."""
    if isinstance(node, dict):
        return dict((str(k), plain(v)) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def write(directory, files):
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return str(directory)


def imported(text, base_dir=None, **options):
    return from_compose(textwrap.dedent(text), project_name=STACK, base_dir=base_dir, **options)


def refused(text, base_dir=None, **options):
    with pytest.raises(ComposeError) as error:
        imported(text, base_dir=base_dir, **options)
    return str(error.value)


def by_name(result):
    """{name: resource} of an import's result, or of a list of resources."""
    return dict((r["name"], r) for r in (result["resources"] if isinstance(result, dict) else result))


# -- Jinja everywhere a compose file holds text ----------------------------------------

def payloads(marker):
    """Text that, templated, would run a command making `marker`."""
    run = "lookup('pipe', 'touch %s')" % marker
    return {
        "PLAIN": "{{ %s }}" % run,
        "ENDRAW": "{%% endraw %%}{{ %s }}{%% raw %%}" % run,
        "ENDRAW_ALONE": "{%% endraw %%}{{ %s }}" % run,
        "STATEMENT": "{%% set x = %s %%}{{ x }}" % run,
        "COMMENT": "{# hidden #}{{ %s }}{# again #}" % run,
        "IF": "{%% if %s %%}yes{%% endif %%}" % run,
        # Legacy Jinja in Ansible read a leading #jinja2: line as its delimiters.
        "HEADER": "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ %s ]]" % run,
        "QUOTES": "x' }}{{ %s }}{{ '" % run,
    }


def hostile_project(directory, marker):
    """A compose file with Jinja in values, keys, labels, the image, the command, a healthcheck,
    the `.env`, an env_file and a secret (the database password): (text, the files beside it)."""
    jinja = payloads(marker)
    run = "{{ lookup('pipe', 'touch %s') }}" % marker
    document = {
        "services": {
            "db": {
                "image": "postgres:15",
                "environment": {"POSTGRES_USER": "shop", "POSTGRES_DB": "shop",
                                "POSTGRES_PASSWORD_FILE": "/run/secrets/db_password"},
                "secrets": ["db_password"],
                "labels": {"team" + run: "data" + run},
            },
            "web": {
                "image": "nginx:1.22" + run,
                "command": ["sh", "-c", "echo " + run],
                "environment": dict(jinja, **{"KEY" + run: "value", "FROM_DOTENV": "${GREETING}",
                                              "API_TOKEN": "${API_TOKEN}"}),
                "env_file": ["web.env"],
                "labels": {"note": run},
                "healthcheck": {"test": ["CMD", "sh", "-c", "test " + run], "interval": "5s"},
            },
            "app": {
                "image": "nginx:1.22",
                "environment": {"DATABASE_URL": "postgresql://shop:${DB_PASSWORD}@db:5432/shop"},
            },
        },
        "secrets": {"db_password": {"file": "./db_password.txt"}},
    }
    files = {
        ".env": "GREETING=\"{%% endraw %%}%s{%% raw %%}\"\nAPI_TOKEN='%s'\nDB_PASSWORD='Pw-%s'\n" % (
            run, run, "abc"),
        "web.env": "FROM_ENV_FILE=%s\n" % run,
        "db_password.txt": "Pw-abc\n",
    }
    write(directory, files)
    return yaml.safe_dump(document, sort_keys=False), files


def test_the_control_a_template_of_the_playbooks_own_does_run_its_lookup(tmp_path):
    """The tests below can fail: Ansible's Templar, given the same lookup as the playbook's own
    text, runs it."""
    marker = tmp_path / "control"
    (tmp_path / "own.yml").write_text("own: \"{{ lookup('pipe', 'touch %s') }}\"\n" % marker)
    templated(ansible_loads(tmp_path / "own.yml"), {})
    assert marker.exists()


def test_jinja_anywhere_in_the_file_is_written_as_text_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker"
    text, _files = hostile_project(tmp_path, marker)
    written = vars_file(text, stack=STACK, base_dir=str(tmp_path), secrets_file="stack.secrets.yml")
    deployed = as_deployed(written, tmp_path)
    assert not marker.exists(), "loading and templating the vars file ran a command"
    direct = imported(text, base_dir=str(tmp_path))
    assert plain(deployed["clockwork_resources"]) == direct["resources"]
    assert plain(deployed["clockwork_connections"]) == direct["connections"]
    assert deployed["clockwork_stack_name"] == STACK
    assert not marker.exists()
    # And the text is the file's, byte for byte, where a reader expects it.
    run = "{{ lookup('pipe', 'touch %s') }}" % marker
    web = by_name(plain(deployed["clockwork_resources"]))["web"]
    assert web["image"] == "nginx:1.22" + run
    assert web["command"] == ["sh", "-c", "echo " + run]
    assert web["labels"] == {"note": run}
    assert web["healthcheck"]["test"] == ["CMD", "sh", "-c", "test " + run]
    for name, value in payloads(marker).items():
        assert web["env"][name] == value, name
    assert web["env"]["KEY" + run] == "value"
    assert web["env"]["FROM_DOTENV"] == "{% endraw %}" + run + "{% raw %}"
    assert web["env"]["FROM_ENV_FILE"] == run
    assert web["env"]["API_TOKEN"] == run
    assert by_name(plain(deployed["clockwork_resources"]))["db"]["labels"] == {"team" + run: "data" + run}


def test_the_secrets_are_variables_whose_values_are_the_literal_text(tmp_path):
    marker = tmp_path / "marker"
    text, _files = hostile_project(tmp_path, marker)
    written = vars_file(text, stack=STACK, base_dir=str(tmp_path), secrets_file="stack.secrets.yml")
    run = "{{ lookup('pipe', 'touch %s') }}" % marker
    # The API token (a secret-named env value, from the .env) is a reference to the secrets file.
    assert "API_TOKEN: '{{ shop_web_api_token }}'" in written["text"]
    secrets = ansible_loads(_saved(tmp_path, "s.yml", written["secrets"]))
    values = dict((k, str(templated(v, {}))) for k, v in secrets.items())
    assert run in values.values()
    assert "Pw-abc" in values.values()
    assert not marker.exists()
    # Every secrets file value carries !unsafe, whatever it holds.
    body = yaml.load(written["secrets"], Loader=_TaggedLoader)
    assert body and all(isinstance(value, _Unsafe) for value in body.values()), body


def _saved(directory, name, text):
    (directory / name).write_text(text)
    return directory / name


def test_the_templates_the_importer_writes_are_only_references_to_its_secrets(tmp_path):
    """The only text Ansible templates in the vars file is `{{ <stack>_..._password }}` (and its
    `| urlencode`), a variable of the secrets file."""
    marker = tmp_path / "marker"
    text, _files = hostile_project(tmp_path, marker)
    written = vars_file(text, stack=STACK, base_dir=str(tmp_path), secrets_file="stack.secrets.yml")
    secrets = yaml.safe_load(written["secrets"].replace("!unsafe", ""))
    document = yaml.load(written["text"].split("\n---\n", 1)[1], Loader=_TaggedLoader)
    for template in _templates(document):
        inner = template[2:-2].strip().replace(" | urlencode", "")
        assert template.startswith("{{ ") and inner in secrets, template


class _TaggedLoader(yaml.SafeLoader):
    """!unsafe text as an _Unsafe string, so the rest can be found."""


class _Unsafe(str):
    pass


_TaggedLoader.add_constructor("!unsafe", lambda loader, node: _Unsafe(loader.construct_scalar(node)))


def _templates(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _templates(key)
            yield from _templates(value)
    elif isinstance(node, list):
        for value in node:
            yield from _templates(value)
    elif isinstance(node, str) and not isinstance(node, _Unsafe) and ("{" in node or "%" in node or "#" in node):
        yield node


@pytest.mark.parametrize("separator", ["\n", "\r", "\u2028", "\u2029", "\x85", "\x0b"])
def test_a_line_break_in_a_warning_never_becomes_a_key_of_the_vars_file(tmp_path, separator):
    """The importer's warnings are comments at the top of the vars file: a name holding a line
    break YAML knows must not end the comment and write a key."""
    name = "A%sclockwork_stack_name: pwned" % separator
    text = yaml.safe_dump({"services": {"web": {"image": "nginx:1.22", "environment": [name]}}})
    written = vars_file(text, stack=STACK, base_dir=str(tmp_path))
    assert any("clockwork_stack_name: pwned" in w for w in written["warnings"])
    loaded = ansible_loads(_saved(tmp_path, "stack.yml", written["text"]))
    assert loaded["clockwork_stack_name"] == STACK and "pwned" not in str(plain(loaded))


def test_a_service_name_with_jinja_is_refused_naming_it(tmp_path):
    marker = tmp_path / "marker"
    for name in ("web{{ lookup('pipe', 'touch %s') }}" % marker, "w{% endraw %}", "w{#c#}"):
        message = refused(yaml.safe_dump({"services": {name: {"image": "nginx:1.22"}}}))
        assert "service %s" % name in message and "is not a valid name" in message
    assert not marker.exists()


def test_the_filters_results_are_unsafe_for_ansible(tmp_path):
    """What the role passes on (from_compose) and the playbook writes (compose_vars_file) are
    wrapped as unsafe: Ansible templates none of it."""
    marker = tmp_path / "marker"
    text, _files = hostile_project(tmp_path, marker)
    result = FilterModule().filters()["from_compose"](text, STACK, base_dir=str(tmp_path))
    again = templated(result, {})
    assert plain(again["resources"]) == imported(text, base_dir=str(tmp_path))["resources"]
    written = compose_vars_file(text, STACK, base_dir=str(tmp_path), secrets_file="s.yml")
    templated(written, {})
    assert not marker.exists()


# -- reads outside the compose file's directory ------------------------------------------

OUTSIDE_CONTENT = "LEAKED=outside-secret-value\n"


@pytest.fixture
def project(tmp_path):
    """A compose file's directory, a directory beside it holding what must not be read, and a
    link inside pointing out."""
    base, outside = tmp_path / "project", tmp_path / "elsewhere"
    base.mkdir()
    outside.mkdir()
    (outside / "secret.env").write_text(OUTSIDE_CONTENT)
    (outside / "schema.sql").write_text("CREATE TABLE leaked (x text);")
    (outside / "migrations").mkdir()
    (outside / "migrations" / "001.sql").write_text("CREATE TABLE leaked (x text);")
    (base / "link.env").symlink_to(outside / "secret.env")
    (base / "link.sql").symlink_to(outside / "schema.sql")
    (base / "linkdir").symlink_to(outside)
    return base, outside


def _reference(kind, path):
    """A compose file whose `kind` reads `path`."""
    if kind == "env_file":
        return {"services": {"web": {"image": "nginx:1.22", "env_file": [path]}}}, ["service web", "env_file"]
    if kind == "env_file long form":
        return ({"services": {"web": {"image": "nginx:1.22", "env_file": [{"path": path, "required": False}]}}},
                ["service web", "env_file"])
    if kind == "secret":
        return ({"services": {"web": {"image": "nginx:1.22", "secrets": ["token"]}},
                 "secrets": {"token": {"file": path}}}, ["service web", "secrets[0]", "secret token"])
    if kind == "config":
        return ({"services": {"web": {"image": "nginx:1.22", "configs": ["site"]}},
                 "configs": {"site": {"file": path}}}, ["service web", "configs[0]", "config site"])
    if kind == "password secret":   # read: the database connection's password
        return ({"services": {
            "db": {"image": "mysql:8", "secrets": ["pw"],
                   "environment": {"MYSQL_DATABASE": "wp", "MYSQL_USER": "wp", "MYSQL_PASSWORD_FILE": "/run/secrets/pw"}},
            "wordpress": {"image": "wordpress:6", "secrets": ["pw"], "environment": {
                "WORDPRESS_DB_HOST": "db", "WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_NAME": "wp",
                "WORDPRESS_DB_PASSWORD_FILE": "/run/secrets/pw"}}},
            "secrets": {"pw": {"file": path}}}, ["service wordpress", "secrets[0]", "secret pw"])
    extension = {"version": 1, "order": ["app", "db"], "resources": [], "connections": []}
    document = {"services": {"app": {"image": "nginx:1.22"},
                             "db": {"image": "postgres:15", "environment": {"POSTGRES_PASSWORD": "pw"}}},
                "x-clockwork": extension}
    if kind in ("schema_file", "migrations_dir"):
        extension["connections"] = [{"type": "database", "from": "app", "to": "db", "password": "pw", kind: path}]
        return document, ["x-clockwork.connections[0].%s" % kind]
    if kind == "file resource path":
        extension["order"].append("conf")
        extension["resources"] = [{"name": "conf", "type": "file", "path": path, "content": "x"}]
        return document, ["x-clockwork.resources[0].path"]
    raise AssertionError(kind)


KINDS = ["env_file", "env_file long form", "secret", "config", "password secret", "schema_file", "migrations_dir"]
FILE_KINDS = ["env_file", "env_file long form", "secret", "config", "password secret", "schema_file"]


def _targets(outside):
    """(how, the path a compose file gives, what the path is) for each way out of the directory."""
    return [("relative", "../elsewhere/%s", "../elsewhere/%s"),
            ("absolute", str(outside) + "/%s", str(outside) + "/%s"),
            ("through a symlinked directory", "linkdir/%s", "linkdir/%s")]


@pytest.mark.parametrize("how", ["relative", "absolute", "through a symlinked directory", "a symlinked file"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_read_outside_the_directory_is_refused_naming_service_key_and_path(project, kind, how):
    base, outside = project
    name = "migrations" if kind == "migrations_dir" else "schema.sql" if kind == "schema_file" else "secret.env"
    if how == "a symlinked file":
        if kind == "migrations_dir":
            path = "linkdir/migrations"
        else:
            path = "link.sql" if kind == "schema_file" else "link.env"
    else:
        pattern = dict((h, p) for h, p, _ in _targets(outside))[how]
        path = pattern % name
    document, where = _reference(kind, path)
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    for part in where + [path, "is outside the compose file's directory", "clockwork_compose_allowed_paths"]:
        assert part in message, (part, message)
    assert "outside-secret-value" not in message and "leaked" not in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_outside_is_allowed_when_its_directory_is_listed(project, kind):
    base, outside = project
    name = "migrations" if kind == "migrations_dir" else "schema.sql" if kind == "schema_file" else "secret.env"
    for path in ("../elsewhere/" + name, str(outside / name), "linkdir/" + name):
        document, _where = _reference(kind, path)
        result = imported(yaml.safe_dump(document), base_dir=str(base), allowed_paths=[str(outside)])
        if kind.startswith("env_file"):
            assert by_name(result)["web"]["env"] == {"LEAKED": "outside-secret-value"}
        if kind == "password secret":
            assert [c["password"] for c in result["connections"] if c["type"] == "database"] == [
                OUTSIDE_CONTENT.strip()]


@pytest.mark.parametrize("how", ["absolute", "relative", "through a symlinked file"])
def test_the_dot_env_outside_the_directory_is_refused(project, how):
    """The .env is the compose file's own: one that is a link pointing out is refused, and so is
    an absolute one that is not there (the project's .env is the only one read)."""
    base, outside = project
    (base / ".env").symlink_to(outside / "secret.env" if how != "relative" else "../elsewhere/secret.env")
    text = "services: {web: {image: 'nginx:1.22', environment: {X: '${LEAKED:-none}'}}}"
    message = refused(text, base_dir=str(base))
    assert ".env" in message and "is outside the compose file's directory" in message
    assert "outside-secret-value" not in message
    allowed = imported(text, base_dir=str(base), allowed_paths=[str(outside)])
    assert by_name(allowed)["web"]["env"] == {"X": "outside-secret-value"}


@pytest.mark.parametrize("path", ["../elsewhere/conf", "/etc/shadow", "/tmp/anywhere/conf"])
def test_an_x_clockwork_file_resource_outside_is_refused(project, path):
    base, _outside = project
    document, where = _reference("file resource path", path)
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    assert where[0] in message and path in message and "refused" in message


@pytest.mark.parametrize("path,grant", [("/etc", "host_paths"), ("/", "host_paths"), ("/var/run/docker.sock", "docker_socket"),
                                        ("/srv/app", None)])
def test_an_x_clockwork_file_resource_without_content_is_a_bind_under_the_grant_rules(project, path, grant):
    base, _outside = project
    document, where = _reference("file resource path", path)
    del document["x-clockwork"]["resources"][0]["content"]
    if grant is None:
        assert by_name(imported(yaml.safe_dump(document), base_dir=str(base)))["conf"]["path"] == path
        return
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    assert where[0] in message and "add %s to clockwork_compose_allow" % grant in message
    result = imported(yaml.safe_dump(document), base_dir=str(base), allow=[grant])
    assert any("kept, as clockwork_compose_allow lists %s" % grant in w for w in result["warnings"])


def test_an_x_clockwork_file_resource_inside_or_allowed_is_kept_and_listed(project):
    base, outside = project
    document, _where = _reference("file resource path", "conf/app.conf")
    result = imported(yaml.safe_dump(document), base_dir=str(base))
    assert by_name(result)["conf"]["path"] == "conf/app.conf"
    assert any("x-clockwork adds the file resource conf at conf/app.conf" in w for w in result["warnings"])
    document, _where = _reference("file resource path", str(outside / "conf"))
    assert by_name(imported(yaml.safe_dump(document), base_dir=str(base), allowed_paths=[str(outside)]))["conf"]


def test_an_x_clockwork_file_resource_through_a_symlinked_directory_is_refused(project):
    base, _outside = project
    document, where = _reference("file resource path", "linkdir/authorized_keys")
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    assert where[0] in message and "linkdir/authorized_keys" in message


def test_a_migration_file_linked_out_of_the_directory_is_refused(project):
    base, outside = project
    (base / "migrations").mkdir()
    (base / "migrations" / "001_init.sql").symlink_to(outside / "secret.env")
    document, _where = _reference("migrations_dir", "migrations")
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    assert "x-clockwork.connections[0].migrations_dir" in message and "001_init.sql" in message
    assert "is outside the compose file's directory" in message and "outside-secret-value" not in message


def test_a_migrations_dir_inside_is_read_as_it_is(project):
    """The control: its own files are read, and shipped."""
    base, _outside = project
    (base / "migrations").mkdir()
    (base / "migrations" / "001_init.sql").write_text("CREATE TABLE t (x int);")
    document, _where = _reference("migrations_dir", "migrations")
    result = imported(yaml.safe_dump(document), base_dir=str(base))
    shipped = ship_files(dict(result["connections"][0]), lambda p: p, True)
    assert shipped["migrations"] == [{"name": "001_init.sql", "content": "CREATE TABLE t (x int);"}]


def test_no_file_is_opened_outside_the_directory_when_refused(project, monkeypatch):
    """Refused means not read: no open() of anything outside, whatever the kind."""
    base, outside = project
    opened = []
    real_open = open

    def recording_open(path, *args, **kwargs):
        opened.append(os.path.realpath(str(path)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", recording_open)
    for kind in KINDS:
        document, _where = _reference(kind, "../elsewhere/secret.env")
        with pytest.raises(ComposeError):
            imported(yaml.safe_dump(document), base_dir=str(base))
    assert not [p for p in opened if p.startswith(str(outside))], opened


# -- io.clockwork. labels ----------------------------------------------------------------

@pytest.mark.parametrize("label", ["io.clockwork.stack", "io.clockwork.resource", "io.clockwork.connection-mounts",
                                   "io.clockwork.ports", "io.clockwork.anything"])
def test_a_forged_clockwork_label_of_a_service_is_refused(label):
    for labels in ({label: "other"}, ["%s=other" % label]):
        message = refused(yaml.safe_dump({"services": {"web": {"image": "nginx:1.22", "labels": labels}}}))
        assert "service web: labels" in message and "label %s" % label in message and "reserved" in message


def test_a_forged_clockwork_label_of_an_x_clockwork_resource_is_refused(project):
    base, _outside = project
    document, _where = _reference("file resource path", "conf/app.conf")
    document["x-clockwork"]["resources"][0]["labels"] = {"io.clockwork.stack": "other"}
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    assert "x-clockwork.resources[0].labels" in message and "label io.clockwork.stack" in message


def test_a_label_merely_like_clockworks_is_kept():
    result = imported(yaml.safe_dump({"services": {"web": {"image": "nginx:1.22", "labels": {
        "io.clockworks.x": "a", "com.example.io.clockwork.stack": "b"}}}}))
    assert by_name(result)["web"]["labels"] == {"io.clockworks.x": "a", "com.example.io.clockwork.stack": "b"}


# -- grants of the host ------------------------------------------------------------------

SOCKET = "/var/run/docker.sock"
GRANT_CASES = [
    # (case, service keys, grant, the key named, what the kept resource has)
    ("docker socket", {"volumes": ["%s:%s" % (SOCKET, SOCKET)]}, "docker_socket", "volumes[0]", None),
    ("docker socket long form", {"volumes": [{"type": "bind", "source": SOCKET, "target": "/s.sock"}]},
     "docker_socket", "volumes[0]", None),
    ("docker socket through /run", {"volumes": ["/run/docker.sock:/s.sock:ro"]}, "docker_socket", "volumes[0]", None),
    ("host root", {"volumes": ["/:/host"]}, "host_paths", "volumes[0]", None),
    ("host root read-only", {"volumes": ["/:/host:ro"]}, "host_paths", "volumes[0]", None),
    ("/etc", {"volumes": ["/etc:/host-etc"]}, "host_paths", "volumes[0]", None),
    ("/root", {"volumes": ["/root:/r"]}, "host_paths", "volumes[0]", None),
    ("/home", {"volumes": ["/home:/h"]}, "host_paths", "volumes[0]", None),
    ("under /home", {"volumes": ["/home/someone/.ssh:/ssh"]}, "host_paths", "volumes[0]", None),
    ("/var/lib/docker", {"volumes": ["/var/lib/docker:/d"]}, "host_paths", "volumes[0]", None),
    ("/etc unnormalised", {"volumes": ["/srv/../etc/:/e"]}, "host_paths", "volumes[0]", None),
    ("privileged", {"privileged": True}, "privileged", "privileged", {"privileged": True}),
    ("cap_add ALL", {"cap_add": ["ALL"]}, "capabilities", "cap_add", {"cap_add": ["ALL"]}),
    ("cap_add SYS_ADMIN", {"cap_add": ["SYS_ADMIN"]}, "capabilities", "cap_add", {"cap_add": ["SYS_ADMIN"]}),
    ("cap_add NET_ADMIN", {"cap_add": ["NET_ADMIN"]}, "capabilities", "cap_add", {"cap_add": ["NET_ADMIN"]}),
    ("cap_add SYS_PTRACE", {"cap_add": ["CAP_SYS_PTRACE"]}, "capabilities", "cap_add", {"cap_add": ["CAP_SYS_PTRACE"]}),
    ("cap_add lower case", {"cap_add": ["sys_admin"]}, "capabilities", "cap_add", {"cap_add": ["sys_admin"]}),
    ("pid host", {"pid": "host"}, "host_namespaces", "pid", {"pid_mode": "host"}),
    ("ipc host", {"ipc": "host"}, "host_namespaces", "ipc", {"ipc_mode": "host"}),
    ("userns_mode host", {"userns_mode": "host"}, "host_namespaces", "userns_mode", {"userns_mode": "host"}),
    ("network_mode host", {"network_mode": "host"}, "host_namespaces", "network_mode", None),
    ("devices", {"devices": ["/dev/fuse:/dev/fuse"]}, "devices", "devices", {"devices": ["/dev/fuse:/dev/fuse"]}),
    ("devices long form", {"devices": [{"source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"}]},
     "devices", "devices", {"devices": ["/dev/fuse:/dev/fuse:rwm"]}),
]


def _granted(keys, name="web"):
    return yaml.safe_dump({"services": {name: dict({"image": "nginx:1.22"}, **keys)}})


@pytest.mark.parametrize("case,keys,grant,key,_kept", GRANT_CASES, ids=[c[0] for c in GRANT_CASES])
def test_a_grant_of_the_host_is_refused_naming_service_key_and_opt_in(case, keys, grant, key, _kept):
    message = refused(_granted(keys, "svc-granted"))
    assert "service svc-granted: %s:" % key in message, message
    assert "add %s to clockwork_compose_allow" % grant in message, message
    # The opt-in is named, and only that one.
    assert [g for g in compose_guard.GRANTS if "add %s to" % g in message] == [grant]


@pytest.mark.parametrize("case,keys,grant,key,kept", GRANT_CASES, ids=[c[0] for c in GRANT_CASES])
def test_an_allowed_grant_is_kept_and_listed_in_the_warnings(case, keys, grant, key, kept):
    if case == "network_mode host":   # allowed, yet the stack puts every container on its networks
        message = refused(_granted(keys), allow=[grant])
        assert "service web: network_mode: network_mode: host is allowed, but" in message
        return
    result = imported(_granted(keys), allow=[grant])
    assert any(w.startswith("service web: %s:" % key) and "kept, as clockwork_compose_allow lists %s" % grant in w
               for w in result["warnings"]), result["warnings"]
    web = by_name(result)["web"]
    if kept is not None:
        assert dict((k, web.get(k)) for k in kept) == kept
    else:   # a bind: a file resource at the host path, mounted by a file connection
        source = keys["volumes"][0]["source"] if isinstance(keys["volumes"][0], dict) else keys["volumes"][0].split(":")[0]
        files = [r for r in result["resources"] if r.get("type") == "file"]
        assert [os.path.normpath(f["path"]) for f in files] == [os.path.normpath(source)]
        assert [(c["type"], c["from"], c["to"]) for c in result["connections"]] == [("file", "web", files[0]["name"])]
    # The stack takes it (the container resource has the fields).
    Plan(STACK, result["resources"], result["connections"], base_dir="/srv/play")


def test_every_grant_at_once_is_refused_with_every_problem_told():
    keys = {"volumes": ["%s:%s" % (SOCKET, SOCKET), "/:/host"], "privileged": True, "cap_add": ["SYS_ADMIN"],
            "pid": "host", "ipc": "host", "userns_mode": "host", "devices": ["/dev/fuse"]}
    message = refused(_granted(keys))
    for grant in compose_guard.GRANTS:
        assert "add %s to clockwork_compose_allow" % grant in message, grant
    result = imported(_granted(keys), allow=list(compose_guard.GRANTS))
    assert sum("kept, as clockwork_compose_allow lists" in w for w in result["warnings"]) == 8


def test_a_grant_that_is_not_one_is_no_problem():
    keys = {"volumes": ["./data:/data", "/srv/app:/app", "/var/log/app:/log"], "cap_add": ["CHOWN", "NET_BIND_SERVICE"],
            "cap_drop": ["ALL"], "pid": "service:db", "ipc": "shareable", "privileged": False, "devices": []}
    result = imported(_granted(keys))
    assert by_name(result)["web"]["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert not [w for w in result["warnings"] if "clockwork_compose_allow" in w]


def test_a_grant_through_a_symlink_in_the_directory_is_named(tmp_path):
    (tmp_path / "sock").symlink_to(SOCKET)
    (tmp_path / "etc").symlink_to("/etc")
    message = refused(_granted({"volumes": ["./sock:/s.sock", "./etc:/e"]}), base_dir=str(tmp_path))
    assert "volumes[0]" in message and "add docker_socket to" in message
    assert "volumes[1]" in message and "add host_paths to" in message


def test_a_grant_of_an_x_clockwork_bind_or_field_is_refused(project):
    base, _outside = project
    document, _where = _reference("file resource path", "conf/app.conf")
    document["services"]["app"]["x-clockwork"] = {"fields": {"privileged": True, "mounts": [
        {"type": "bind", "source": "/", "target": "/host"}], "state": "started"}}
    message = refused(yaml.safe_dump(document), base_dir=str(base))
    assert "service app: x-clockwork.fields.privileged: is not a field x-clockwork may set" in message
    assert "service app: x-clockwork.fields.mounts: is not a field x-clockwork may set" in message
    assert "state" not in message.split("(only")[0]


@pytest.mark.parametrize("grant", ["docker-socket", "all", "", "root"])
def test_an_unknown_grant_is_refused_naming_the_known_ones(grant):
    message = refused(_granted({}), allow=[grant])
    assert "clockwork_compose_allow: %s is not one of %s" % (grant, ", ".join(compose_guard.GRANTS)) in message


# -- bounded input -----------------------------------------------------------------------

def alias_bomb(width=10, depth=9):
    """YAML of about 540 bytes whose aliases expand to width**depth (10**9) nodes."""
    lines = ["a0: &a0 [%s]" % ",".join(["lol"] * width)]
    for level in range(1, depth):
        lines.append("a%d: &a%d [%s]" % (level, level, ",".join(["*a%d" % (level - 1)] * width)))
    lines.append("services: {web: {image: 'nginx:1.22', command: *a%d}}" % (depth - 1))
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_well_under_a_second():
    text = alias_bomb()
    assert 450 < len(text) < 620
    started = time.time()
    message = refused(text)
    assert time.time() - started < 0.3
    assert "expands to more than %d nodes (YAML aliases): refused as a bomb" % compose_guard.MAX_NODES in message


def test_an_alias_bomb_through_merge_keys_and_mappings_is_refused_quickly():
    lines = ["m0: &m0 {a: [%s]}" % ",".join(['"x"'] * 10)]
    for level in range(1, 9):
        lines.append("m%d: &m%d {%s}" % (level, level, ", ".join("k%d: *m%d" % (i, level - 1) for i in range(10))))
    lines.append("services: {web: {image: 'nginx:1.22', labels: {<<: *m8}}}")
    started = time.time()
    message = refused("\n".join(lines) + "\n")
    assert time.time() - started < 0.3 and "refused as a bomb" in message


def test_an_alias_that_holds_itself_is_refused():
    assert "an alias refers to itself" in refused("a: &a [*a]\nservices: {web: {image: 'nginx:1.22', command: *a}}")


def test_a_moderate_use_of_aliases_is_fine():
    text = "x-env: &env {A: '1', B: '2'}\nservices:\n" + "".join(
        "  s%d: {image: 'nginx:1.22', environment: *env}\n" % i for i in range(50))
    assert len(imported(text)["resources"]) == 50


def test_a_fifty_megabyte_file_is_refused_quickly():
    text = "services: {web: {image: 'nginx:1.22'}}\nx-padding: '%s'\n" % ("a" * (50 * 1024 * 1024))
    started = time.time()
    message = refused(text)
    assert time.time() - started < 2
    assert "more than the %d a compose file may have" % compose_guard.MAX_TEXT_BYTES in message


def test_a_big_env_file_is_refused(tmp_path):
    (tmp_path / "big.env").write_text("A=%s\n" % ("b" * (compose_guard.MAX_FILE_BYTES + 1)))
    message = refused("services: {web: {image: 'nginx:1.22', env_file: big.env}}", base_dir=str(tmp_path))
    assert "service web: env_file: big.env is bigger than %d bytes: refused" % compose_guard.MAX_FILE_BYTES in message


def test_deep_nesting_is_refused_with_a_message():
    message = refused("services: {web: {image: 'nginx:1.22', command: %s%s}}" % ("[" * 5000, "]" * 5000))
    assert "invalid YAML" in message


@pytest.mark.parametrize("text", [
    "services: {1: {image: 'nginx:1.22'}}",
    "services: {web: {image: 'nginx:1.22', environment: {1: x}}}",
    "services: {web: {image: 'nginx:1.22', labels: {true: x}}}",
    "services: {web: {image: 'nginx:1.22', environment: {null: x}}}",
    "services: {web: {image: 'nginx:1.22', networks: {1: {}}}}",
    "services: {web: {image: 'nginx:1.22'}}\n1: x",
])
def test_a_key_that_is_not_a_string_is_a_compose_error(text):
    message = refused(text)
    assert "is not a name; quote it" in message
    assert any(key in message for key in ("the key 1 ", "the key true ", "the key null "))


def test_a_python_tag_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    message = refused("services: {web: {image: 'nginx:1.22'}}\nx-y: !!python/object/apply:os.system ['touch %s']"
                      % marker)
    assert "invalid YAML" in message and not marker.exists()


# -- secrets never in a message ----------------------------------------------------------

SECRET_WITH_DOLLAR = "Xk9${q7pLm2"  # pragma: allowlist secret


@pytest.mark.parametrize("line", ["DB_PASSWORD=Xk9${q7pLm2", 'DB_PASSWORD="Xk9${q7pLm2"', "export DB_PASSWORD=Xk9${q7pLm2"])
def test_a_dot_env_secret_with_an_unclosed_interpolation_is_refused_without_its_value(tmp_path, line):
    (tmp_path / ".env").write_text(line + "\n")
    text = "services: {db: {image: 'postgres:15', environment: {POSTGRES_PASSWORD: '${DB_PASSWORD}'}}}"
    message = refused(text, base_dir=str(tmp_path))
    assert ".env.DB_PASSWORD: an unclosed ${" in message
    for fragment in ("Xk9", "q7pLm2", SECRET_WITH_DOLLAR):
        assert fragment not in message
    with pytest.raises(AnsibleFilterError) as error:   # the role's filter says the same
        FilterModule().filters()["from_compose"](text, STACK, base_dir=str(tmp_path))
    assert "q7pLm2" not in str(error.value) and "Xk9" not in str(error.value)


def test_a_single_quoted_dot_env_secret_with_a_dollar_is_kept_as_it_is(tmp_path):
    (tmp_path / ".env").write_text("DB_PASSWORD='%s'\n" % SECRET_WITH_DOLLAR)
    result = imported("services: {db: {image: 'postgres:15', environment: {POSTGRES_PASSWORD: '${DB_PASSWORD}'}}}",
                      base_dir=str(tmp_path))
    assert by_name(result)["db"]["env"]["POSTGRES_PASSWORD"] == SECRET_WITH_DOLLAR


def test_a_secret_with_an_unclosed_interpolation_in_the_file_is_refused_without_its_value():
    message = refused("services: {db: {image: 'postgres:15', environment: {POSTGRES_PASSWORD: '%s'}}}"
                      % SECRET_WITH_DOLLAR)
    assert "service db: environment.POSTGRES_PASSWORD: an unclosed ${" in message and "q7pLm2" not in message


def test_a_dot_env_secret_with_an_invalid_interpolation_is_refused_without_any_of_its_value(tmp_path):
    (tmp_path / ".env").write_text("DB_PASSWORD=Xk9${q7pL!m2}\n")
    message = refused("services: {db: {image: 'postgres:15', environment: {POSTGRES_PASSWORD: '${DB_PASSWORD}'}}}",
                      base_dir=str(tmp_path))
    assert "DB_PASSWORD" in message and "q7pL" not in message


# -- x-clockwork: everything it adds is listed ------------------------------------------

def test_what_x_clockwork_adds_is_listed_in_the_warnings(project):
    base, _outside = project
    (base / "schema.sql").write_text("CREATE TABLE t (x int);")
    document = {
        "services": {"app": {"image": "nginx:1.22", "x-clockwork": {"fields": {"state": "started", "timeout": 90}}},
                     "db": {"image": "postgres:15", "environment": {"POSTGRES_PASSWORD": "pw"}}},
        "x-clockwork": {"version": 1, "order": ["app", "db", "conf", "data"],
                        "resources": [{"name": "conf", "type": "file", "path": "conf/app.conf", "content": "x"},
                                      {"name": "data", "type": "volume"}],
                        "connections": [{"type": "database", "from": "app", "to": "db", "password": "pw",
                                         "schema_file": "schema.sql"},
                                        {"type": "file", "from": "app", "to": "conf", "mount_path": "/etc/app.conf"},
                                        {"type": "dependency", "from": "app", "to": "db"}]}}
    result = imported(yaml.safe_dump(document), base_dir=str(base))
    expected = ["x-clockwork.resources[0]: x-clockwork adds the file resource conf at conf/app.conf on the Docker host",
                "x-clockwork.resources[1]: x-clockwork adds the volume resource data",
                "x-clockwork.connections[0]: x-clockwork adds the database connection app -> db",
                "x-clockwork.connections[1]: x-clockwork adds the file connection app -> conf",
                "x-clockwork.connections[2]: x-clockwork adds the dependency connection app -> db",
                "service app: x-clockwork.fields.state: x-clockwork sets state of the container",
                "service app: x-clockwork.fields.timeout: x-clockwork sets timeout of the container"]
    assert sorted(result["warnings"]) == sorted(expected)
    # The schema file is read from where it was checked.
    assert result["connections"][0]["schema_file"] == str(base / "schema.sql")
    # And the vars file lists them at its top.
    header = vars_file(yaml.safe_dump(document), stack=STACK, base_dir=str(base))["text"].split("\n---\n")[0]
    for line in expected:
        assert "#   - " + line in header


@pytest.mark.parametrize("field", ["privileged", "mounts", "image", "env", "labels", "cap_add", "devices", "command",
                                   "networks", "ports"])
def test_an_x_clockwork_field_other_than_the_allowed_ones_is_refused(field):
    document = {"services": {"app": {"image": "nginx:1.22", "x-clockwork": {"fields": {field: "x"}}}},
                "x-clockwork": {"version": 1, "order": ["app"], "resources": [], "connections": []}}
    message = refused(yaml.safe_dump(document))
    assert "service app: x-clockwork.fields.%s: is not a field x-clockwork may set" % field in message


def test_an_x_clockwork_container_resource_is_refused():
    document = {"services": {"app": {"image": "nginx:1.22"}},
                "x-clockwork": {"version": 1, "order": ["app", "evil"], "connections": [], "resources": [
                    {"name": "evil", "type": "container", "image": "nginx:1.22", "privileged": True}]}}
    message = refused(yaml.safe_dump(document))
    assert "x-clockwork.resources[0]: a container is declared by a service, not by x-clockwork" in message


# -- ansible-core 2.17 and 2.18: their unsafe text ----------------------------------------------

class LegacyUnsafeBytes(bytes):
    """As ansible-core 2.17's and 2.18's AnsibleUnsafeBytes (ansible/utils/unsafe_proxy.py): decoded, unsafe text."""

    def __str__(self):
        return self.decode()

    def decode(self, encoding="utf-8", errors="strict"):
        return LegacyUnsafeText(super().decode(encoding=encoding, errors=errors))


class LegacyUnsafeText(str):
    """As ansible-core 2.17's and 2.18's AnsibleUnsafeText: str() of it, "%s" % it, its encode and
    their decode all give unsafe text back, never a plain str."""

    def __str__(self):
        return self

    def __format__(self, spec):
        return LegacyUnsafeText(super().__format__(spec))

    def encode(self, encoding="utf-8", errors="strict"):
        return LegacyUnsafeBytes(super().encode(encoding=encoding, errors=errors))


def test_the_c_loader_refuses_such_text_as_on_2_17():
    """The stand-in is faithful where it matters: PyYAML's C loader refuses it."""
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("no libyaml")
    with pytest.raises(TypeError, match="a string or stream input is required"):
        yaml.load(LegacyUnsafeText("a: 1"), Loader=yaml.CSafeLoader)
    assert type("%s" % LegacyUnsafeText("x")) is LegacyUnsafeText
    assert type(LegacyUnsafeText("x").encode().decode()) is LegacyUnsafeText


def test_a_compose_file_read_by_ansible_2_17_imports():
    text = LegacyUnsafeText("services: {web: {image: 'nginx:1.22', environment: {A: '{{ x }}'}}}")
    assert by_name(imported(text))["web"]["env"] == {"A": "{{ x }}"}
    assert vars_file(text, stack=STACK)["stack"] == STACK


def test_a_stack_read_by_ansible_2_17_exports():
    stack = {"name": LegacyUnsafeText("shop"), "connections": [],
             "resources": [{"name": LegacyUnsafeText("web"), "image": LegacyUnsafeText("nginx:1.22"),
                            "env": {LegacyUnsafeText("A"): LegacyUnsafeText("{{ x }}")}}]}
    assert yaml.safe_load(export(stack)["text"])["services"]["web"]["environment"] == {"A": "{{ x }}"}


# -- a password equal to the user and the database name ------------------------------------

SAME = """
    services:
      db:
        image: postgres:15
        environment: {POSTGRES_USER: nextcloud, POSTGRES_PASSWORD: nextcloud, POSTGRES_DB: nextcloud}
      app:
        image: nextcloud:28
        environment: {POSTGRES_HOST: db, POSTGRES_USER: nextcloud, POSTGRES_PASSWORD: nextcloud, POSTGRES_DB: nextcloud}
"""


def test_a_password_equal_to_the_user_and_database_round_trips_through_the_vars_file(tmp_path):
    text = textwrap.dedent(SAME)
    direct = from_compose(text, project_name="nextcloud")
    written = vars_file(text, stack="nextcloud", secrets_file="stack.secrets.yml")
    assert "nextcloud" not in written["text"].split("\n---\n")[1].replace("clockwork_stack_name: nextcloud", "") \
        .replace("image: nextcloud:28", "").replace("nextcloud_", "")
    assert "image: nextcloud:28" in written["text"], "the image is the image, not a reference to the password"
    deployed = as_deployed(written, tmp_path)
    assert deployed["clockwork_stack_name"] == "nextcloud"
    assert plain(deployed["clockwork_resources"]) == direct["resources"]
    assert plain(deployed["clockwork_connections"]) == direct["connections"]
    database = direct["connections"][0]
    assert (database["username"], database["password"], database["database_name"]) == ("nextcloud",) * 3


def test_a_password_equal_to_the_user_and_database_round_trips_through_to_compose(tmp_path):
    direct = from_compose(textwrap.dedent(SAME), project_name="nextcloud")
    stack = {"name": "nextcloud", "resources": direct["resources"], "connections": direct["connections"]}
    result = export(stack)
    (tmp_path / "compose.yaml").write_text(result["text"])
    for path, entry in result["files"].items():
        (tmp_path / path).write_text(entry["content"])
    back = from_compose(result["text"], base_dir=str(tmp_path))
    assert back["resources"] == direct["resources"]
    assert back["connections"] == direct["connections"]


def test_the_exported_file_names_the_image_and_stack_as_declared():
    direct = from_compose(textwrap.dedent(SAME), project_name="nextcloud")
    result = export({"name": "nextcloud", "resources": direct["resources"], "connections": direct["connections"]})
    document = yaml.safe_load(result["text"])
    assert document["services"]["app"]["image"] == "nextcloud:28"
    assert document["x-clockwork"]["stack"] == "nextcloud"
