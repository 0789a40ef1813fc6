"""Issue 31 on the real engine: a hostile compose file is data, never code.

A compose file with Jinja in values, keys, labels, its `.env`, an env_file and a database password
goes two ways: through playbooks/compose_import.yml, whose stack.yml and stack.secrets.yml are then
loaded with vars_files and deployed with the stack role (as their header says), and through the
role's clockwork_compose_file. Each: check -> apply -> idempotent (changed=false) -> check
(changed=false), with -vvv --diff; `docker inspect` and `docker exec env` show the literal text; the
marker file a `lookup('pipe')` would make never exists; the password is never in the output.

Refused files (a read outside the directory, a Docker socket bind, Jinja in a service name, an
alias bomb...) fail before any change: no container, network or volume of the stack exists after,
and the message names the service, the key and the opt-in. An allowed grant deploys with what it
grants.

Service names carry the stack's unique tag: the stack names its containers after them, and the
engine is shared with other tests."""
import os
import textwrap
from urllib.parse import quote

import pytest
import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, ROOT, as_text, docker, env_of, inspect, run_playbook
from test_rotation import stack  # noqa: F401  (the stack fixture that also removes carried anonymous volumes)

PASSWORD = "Pw{{7*7}}x-%s"  # pragma: allowlist secret  (templated, it would be Pw49x: a canary)
IMPORT_PLAYBOOK = os.path.join(ROOT, "playbooks", "compose_import.yml")


def run(touch):
    """Jinja that, templated, makes the marker file."""
    return "{{ lookup('pipe', 'touch %s') }}" % touch


def hostile(tag, marker):
    """(compose text, the files beside it, {container: {env name: literal value}}, {container: labels})."""
    jinja = run(marker)
    env = {
        "PLAIN": jinja,
        "ENDRAW": "{% endraw %}" + jinja + "{% raw %}",
        "COMMENT": "{# hidden #}" + jinja,
        "STATEMENT": "{%% set x = lookup('pipe', 'touch %s') %%}{{ x }}" % marker,
        "QUOTES": "x' }}" + jinja + "{{ '",
        "DOLLAR": "$${HOME} and $$1",
        "KEY_" + jinja: "value",
    }
    labels = {"note." + jinja: "{% endraw %}" + jinja, "plain": jinja}
    document = {"services": {
        "web-" + tag: {"image": NGINX_IMAGE, "environment": dict(env, FROM_DOTENV="${GREETING}",
                                                                  API_TOKEN="${API_TOKEN}"),
                       "env_file": ["web.env"], "labels": labels},
        "db-" + tag: {"image": POSTGRES_IMAGE,
                      "environment": {"POSTGRES_USER": "shop", "POSTGRES_DB": "shop",
                                      "POSTGRES_PASSWORD": "${DB_PASSWORD}"},
                      "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U shop -d shop"], "interval": "1s",
                                      "retries": 30}},
        "app-" + tag: {"image": NGINX_IMAGE,
                       "environment": {"DATABASE_URL": "postgresql://shop:${DB_PASSWORD}@db-%s:5432/shop" % tag},
                       "depends_on": {"db-" + tag: {"condition": "service_healthy"}}},
    }}
    password = PASSWORD % tag
    files = {
        "compose.yaml": yaml.safe_dump(document, sort_keys=False),
        ".env": "GREETING=\"{%% endraw %%}%s{%% raw %%}\"\nAPI_TOKEN='%s'\nDB_PASSWORD='%s'\n" % (jinja, jinja, password),
        "web.env": "FROM_ENV_FILE=%s\n" % jinja,
    }
    expected_env = {
        "web-" + tag: dict((k, v.replace("$$", "$")) for k, v in env.items()),
        "db-" + tag: {"POSTGRES_PASSWORD": password},
    }
    expected_env["web-" + tag].update(FROM_DOTENV="{% endraw %}" + jinja + "{% raw %}", API_TOKEN=jinja,
                                      FROM_ENV_FILE=jinja)
    return files, expected_env, {"web-" + tag: labels}, password


def write(directory, files):
    for name, content in files.items():
        (directory / name).write_text(content)


def secret_forms(password):
    return [password, quote(password, safe=""), quote(password)]


def play(workdir, tasks, check=False, vars_files=None, extra_vars=None):
    """One play on localhost, run with -vvv --diff."""
    document = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if vars_files:
        document["vars_files"] = vars_files
    path = os.path.join(str(workdir), "play.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([document], handle)
    return run_playbook(path, check=check, diff=True, extra_vars=extra_vars, extra_args=("-vvv",))


def role_task(**values):
    return {"name": "Deploy", "ansible.builtin.include_role": {"name": "clockwork.connections.stack"}, "vars": values}


def converged(result, stack_name):
    return result.result("Converge stack %s" % stack_name)


def stack_objects(stack_name, tag):
    """Every container, network and volume of the stack: by its label, or by a name of its own."""
    found = []
    for kind, listing in (("container", ["ps", "-a"]), ("network", ["network", "ls"]), ("volume", ["volume", "ls"])):
        by_label = docker(*(listing + ["-q", "--filter", "label=io.clockwork.stack=%s" % stack_name])).split()
        names = [n for n in docker(*(listing + ["--format", "{{.Name}}" if kind != "container" else "{{.Names}}"]))
                 .splitlines() if tag in n]
        found += ["%s %s" % (kind, x) for x in by_label + names]
    return sorted(set(found))


def assert_literal(expected_env, expected_labels):
    for container, env in expected_env.items():
        seen = env_of(container)
        for name, value in env.items():
            assert seen.get(name) == value, (container, name, seen.get(name))
        inside = docker("exec", container, "env")
        for name, value in env.items():
            if "\n" not in value:
                assert "%s=%s" % (name, value) in inside.splitlines(), (container, name)
    for container, labels in expected_labels.items():
        seen = inspect("container", container)["Config"]["Labels"]
        for key, value in labels.items():
            assert seen.get(key) == value, (container, key, seen.get(key))


def lifecycle(workdir, stack_name, tasks, password, vars_files=None):
    """check -> apply -> idempotent -> check, each with -vvv --diff: changed as due, the password in
    no output, --check touching nothing. Returns the outputs."""
    tag = stack_name.split("-")[-1]
    before = stack_objects(stack_name, tag)
    assert before == []
    outputs = []
    for step, check, changed in (("check", True, True), ("apply", False, True), ("idempotent", False, False),
                                 ("check again", True, False)):
        result = play(workdir, tasks, check=check, vars_files=vars_files)
        outputs.append(result.output)
        assert result.rc == 0, "%s:\n%s" % (step, result.output[-6000:])
        assert converged(result, stack_name)["changed"] is changed, "%s:\n%s" % (
            step, as_text(converged(result, stack_name)))
        for form in secret_forms(password):
            assert form not in result.output, "%s: the password (%r) is in the -vvv --diff output:\n%s" % (
                step, form, result.output)
        if step == "check":
            assert stack_objects(stack_name, tag) == [], "--check changed the engine"
    return outputs


def test_a_hostile_file_through_the_import_playbook_and_vars_files_deploys_its_literal_text(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    marker = tmp_path / "marker"
    files, expected_env, expected_labels, password = hostile(tag, marker)
    write(tmp_path, files)
    out = tmp_path / "stack.yml"
    imported = run_playbook(IMPORT_PLAYBOOK, diff=True, extra_args=("-vvv",), extra_vars={
        "compose_file": str(tmp_path / "compose.yaml"), "out": str(out), "stack": stack})
    assert imported.rc == 0, imported.output[-6000:]
    for form in secret_forms(password):
        assert form not in imported.output and form not in out.read_text(), imported.output
    secrets = tmp_path / "stack.secrets.yml"
    assert oct(os.stat(str(secrets)).st_mode & 0o777) == "0o600"
    assert "!unsafe" in out.read_text() and password in secrets.read_text()
    assert not marker.exists(), "importing ran a command"

    lifecycle(tmp_path, stack, [role_task()], password, vars_files=[str(out), str(secrets)])
    assert not marker.exists(), "deploying the written files ran a command"
    assert_literal(expected_env, expected_labels)
    # The database connection the import inferred logs in with the literal password.
    assert "%40db-" in env_of("app-" + tag)["DATABASE_URL"] or "@db-" in env_of("app-" + tag)["DATABASE_URL"]
    assert env_of("app-" + tag)["DATABASE_URL"] == "postgresql://shop:%s@db-%s:5432/shop" % (
        quote(password, safe=""), tag)
    assert docker("exec", "db-" + tag, "psql", "-X", "-w", "-At", env_of("app-" + tag)["DATABASE_URL"],
                  "-c", "select current_user") == "shop"


def test_a_hostile_file_through_the_roles_compose_file_deploys_its_literal_text(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    marker = tmp_path / "marker"
    files, expected_env, expected_labels, password = hostile(tag, marker)
    write(tmp_path, files)
    task = role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml")
    lifecycle(tmp_path, stack, [task], password)
    assert not marker.exists(), "the role's import ran a command"
    assert_literal(expected_env, expected_labels)
    assert docker("exec", "db-" + tag, "psql", "-X", "-w", "-At", env_of("app-" + tag)["DATABASE_URL"],
                  "-c", "select current_user") == "shop"


# -- refused before any change --------------------------------------------------------

def _outside(tag, tmp_path):
    (tmp_path.parent / ("outside-%s.env" % tag)).write_text("LEAKED=outside-value\n")
    return {"services": {"web-" + tag: {"image": NGINX_IMAGE, "env_file": ["../outside-%s.env" % tag]}}}


def _linked(tag, tmp_path):
    (tmp_path.parent / ("outside-%s.env" % tag)).write_text("LEAKED=outside-value\n")
    (tmp_path / "linked.env").symlink_to(tmp_path.parent / ("outside-%s.env" % tag))
    return {"services": {"web-" + tag: {"image": NGINX_IMAGE, "env_file": ["linked.env"]}}}


def _socket(tag, _tmp_path):
    return {"services": {"web-" + tag: {"image": NGINX_IMAGE,
                                        "volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}}}


def _root(tag, _tmp_path):
    return {"services": {"web-" + tag: {"image": NGINX_IMAGE, "volumes": ["/:/host:ro"], "privileged": True}}}


def _forged(tag, _tmp_path):
    return {"services": {"web-" + tag: {"image": NGINX_IMAGE, "labels": {"io.clockwork.connection-mounts": "/x"}}}}


def _service_name(tag, tmp_path):
    return {"services": {"web-%s{{ lookup('pipe', 'touch %s') }}" % (tag, tmp_path / "marker"): {"image": NGINX_IMAGE}}}


def _image(tag, tmp_path):
    return {"services": {"web-" + tag: {"image": "%s{{ lookup('pipe', 'touch %s') }}" % (NGINX_IMAGE, tmp_path / "marker")}}}


def _bomb(tag, _tmp_path):
    lines = ["a0: &a0 [%s]" % ",".join(["lol"] * 10)]
    lines += ["a%d: &a%d [%s]" % (i, i, ",".join(["*a%d" % (i - 1)] * 10)) for i in range(1, 9)]
    lines.append("services: {web-%s: {image: '%s', command: *a8}}" % (tag, NGINX_IMAGE))
    return "\n".join(lines) + "\n"


def _dollar_secret(tag, tmp_path):
    (tmp_path / ".env").write_text("DB_PASSWORD=Xk9${q7pLm2\n")
    return {"services": {"db-" + tag: {"image": POSTGRES_IMAGE, "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"}}}}


REFUSED = {
    # case: (the file, words the message has, words it must not have)
    "env_file outside": (_outside, ["service web-{t}", "env_file", "../outside-{t}.env",
                                    "is outside the compose file's directory", "clockwork_compose_allowed_paths"],
                         ["outside-value"]),
    "env_file through a link": (_linked, ["service web-{t}", "env_file", "linked.env", "clockwork_compose_allowed_paths"],
                                ["outside-value"]),
    "docker socket": (_socket, ["service web-{t}", "volumes[0]", "/var/run/docker.sock",
                                "add docker_socket to clockwork_compose_allow"], []),
    "host root and privileged": (_root, ["service web-{t}", "volumes[0]", "add host_paths to clockwork_compose_allow",
                                         "privileged", "add privileged to clockwork_compose_allow"], []),
    "forged label": (_forged, ["service web-{t}", "labels", "io.clockwork.connection-mounts", "reserved"], []),
    "jinja in a service name": (_service_name, ["service web-{t}{{{{ lookup(", "is not a valid name"], []),
    "alias bomb": (_bomb, ["refused as a bomb"], []),
    "a secret with ${": (_dollar_secret, [".env.DB_PASSWORD", "an unclosed ${{"], ["Xk9", "q7pLm2"]),
}


def _text(case, tag, tmp_path):
    made = REFUSED[case][0](tag, tmp_path)
    return made if isinstance(made, str) else yaml.safe_dump(made, sort_keys=False)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_file_fails_before_any_change_naming_service_key_and_opt_in(stack, tmp_path, case):  # noqa: F811
    tag = stack.split("-")[-1]
    _make, wanted, unwanted = REFUSED[case]
    (tmp_path / "compose.yaml").write_text(_text(case, tag, tmp_path))
    marker = tmp_path / "marker"
    runs = []
    for check in (True, False):
        runs.append(play(tmp_path, [role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml")],
                         check=check))
    runs.append(run_playbook(IMPORT_PLAYBOOK, extra_args=("-vvv",), extra_vars={
        "compose_file": str(tmp_path / "compose.yaml"), "out": str(tmp_path / "stack.yml"), "stack": stack}))
    for result in runs:
        assert result.rc != 0, result.output[-4000:]
        assert "Traceback" not in result.output, result.output
        for word in wanted:
            assert word.format(t=tag) in result.output, "%r is not in:\n%s" % (
                word.format(t=tag), result.output[-4000:])
        for word in unwanted:
            assert word not in result.output, "%r is in:\n%s" % (word, result.output)
        assert not any(r["_task"].endswith("Converge stack %s" % stack) and not r.get("skipped")
                       for r in result.results), "the stack was converged:\n" + result.details
    assert stack_objects(stack, tag) == [], "a refused file changed the engine"
    assert not (tmp_path / "stack.yml").exists() and not marker.exists()


def _image_refusals(stack, tmp_path):
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(_image(tag, tmp_path)))
    task = role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml")
    runs = [play(tmp_path, [task], check=check) for check in (True, False)]
    for result in runs:
        assert result.rc != 0 and "Traceback" not in result.output, result.output
        assert NGINX_IMAGE + "{{ lookup('pipe', 'touch %s') }}" % (tmp_path / "marker") in result.output, result.output
    assert stack_objects(stack, tag) == [] and not (tmp_path / "marker").exists()
    return tag, runs


def test_jinja_in_the_image_is_refused_as_that_image_before_any_change(stack, tmp_path):  # noqa: F811
    """The image is imported as it is written: the plan refuses it as no image reference, literally."""
    _image_refusals(stack, tmp_path)


def test_an_image_the_engine_cannot_parse_is_refused_naming_the_resource(stack, tmp_path):  # noqa: F811
    tag, runs = _image_refusals(stack, tmp_path)
    for result in runs:
        messages = [str(r.get("msg")) for r in result.results if r.get("_status") == "failed"]
        assert messages and all("web-%s" % tag in m and "image:" in m for m in messages), messages


def test_a_fifty_megabyte_file_is_refused_quickly_with_a_short_message(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text("services: {web-%s: {image: '%s'}}\nx-pad: '%s'\n" % (
        tag, NGINX_IMAGE, "a" * (50 * 1024 * 1024)))
    result = play(tmp_path, [role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml")])
    assert result.rc != 0, result.output
    assert "more than the 4194304 a compose file may have" in result.output, result.output
    assert len(result.output) < 200000, "the file's text is in the output (%d characters), which begins:\n%s" % (
        len(result.output), result.output[:6000])
    assert stack_objects(stack, tag) == []


# -- allowed: kept, and deployed with what it grants ----------------------------------------

ALL_GRANTS = ["docker_socket", "host_paths", "privileged", "capabilities", "host_namespaces", "devices"]


def granted(tag, tmp_path, privileged=False):
    """Every grant; privileged only on request: this engine runs nested and cannot start a
    privileged container ("unable to apply caps"), so that one is kept and planned, not started.
    The Docker socket too: test_an_allowed_docker_socket_deploys says why."""
    (tmp_path.parent / ("allowed-%s" % tag)).mkdir(exist_ok=True)
    (tmp_path.parent / ("allowed-%s" % tag) / "extra.env").write_text("FROM_ALLOWED=yes\n")
    return textwrap.dedent("""\
        services:
          web-{t}:
            image: {nginx}
            env_file: [../allowed-{t}/extra.env]
            volumes: ["/etc:/host-etc:ro"]
            cap_add: [SYS_PTRACE]
            pid: host
            ipc: host
            userns_mode: host
            devices: ["/dev/null:/dev/xnull"]
        """).format(t=tag, nginx=NGINX_IMAGE) + ("    privileged: true\n" if privileged else "")


def test_the_grants_a_file_is_allowed_are_deployed_and_listed(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text(granted(tag, tmp_path))
    allowed_dir = str(tmp_path.parent / ("allowed-%s" % tag))
    task = role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml",
                     clockwork_compose_allow=ALL_GRANTS, clockwork_compose_allowed_paths=[allowed_dir])
    outputs = lifecycle(tmp_path, stack, [task], "no-password-in-this-file")
    for grant in ALL_GRANTS:
        if grant not in ("privileged", "docker_socket"):
            assert "kept, as clockwork_compose_allow lists %s" % grant in outputs[1], "%s:\n%s" % (grant, outputs[1])
    container = inspect("container", "web-" + tag)
    host = container["HostConfig"]
    assert host["Privileged"] is False
    assert "SYS_PTRACE" in [c.replace("CAP_", "") for c in host["CapAdd"] or []]
    assert (host["PidMode"], host["IpcMode"], host["UsernsMode"]) == ("host", "host", "host")
    assert [(d["PathOnHost"], d["PathInContainer"]) for d in host["Devices"]] == [("/dev/null", "/dev/xnull")]
    mounts = dict((m["Destination"], m["Source"]) for m in container["Mounts"])
    assert mounts.get("/host-etc") == "/etc"
    assert env_of("web-" + tag)["FROM_ALLOWED"] == "yes"
    # Not allowed this time: refused before any change, the running container left as it is.
    before = container["Id"]
    refused = play(tmp_path, [role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml",
                                        clockwork_compose_allow=["host_paths"],
                                        clockwork_compose_allowed_paths=[allowed_dir])])
    assert refused.rc != 0 and "add capabilities to clockwork_compose_allow" in refused.output, refused.output
    assert "add host_namespaces to clockwork_compose_allow" in refused.output, refused.output
    assert inspect("container", "web-" + tag)["Id"] == before


def test_an_allowed_privileged_is_kept_and_planned(stack, tmp_path):  # noqa: F811
    """privileged, allowed: listed, and the plan creates the container privileged (--check: this
    engine cannot start one)."""
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text(granted(tag, tmp_path, privileged=True))
    allowed_dir = str(tmp_path.parent / ("allowed-%s" % tag))
    task = role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml",
                     clockwork_compose_allow=ALL_GRANTS, clockwork_compose_allowed_paths=[allowed_dir])
    dry = play(tmp_path, [task], check=True)
    assert dry.rc == 0, dry.output[-6000:]
    assert "kept, as clockwork_compose_allow lists privileged" in dry.output, dry.output
    assert converged(dry, stack)["changed"] is True, dry.details
    assert '"privileged": true' in dry.output, dry.output
    assert stack_objects(stack, tag) == []


def test_an_allowed_docker_socket_deploys(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text(
        "services:\n  sock-{t}:\n    image: {nginx}\n    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n"
        .format(t=tag, nginx=NGINX_IMAGE))
    task = role_task(clockwork_stack_name=stack, clockwork_compose_file="compose.yaml",
                     clockwork_compose_allow=["docker_socket"])
    outputs = lifecycle(tmp_path, stack, [task], "no-password-in-this-file")
    assert "kept, as clockwork_compose_allow lists docker_socket" in outputs[1], "the apply's output:\n" + outputs[1]
    mounts = dict((m["Destination"], m["Source"]) for m in inspect("container", "sock-" + tag)["Mounts"])
    assert mounts.get("/var/run/docker.sock") == "/var/run/docker.sock"
