"""Completion you can trust, on the real engine: every connection type completed through the
`stack` role from vaulted, templated and extra vars (offline and with a fake OpenAI-compatible
endpoint); hostile answers and hand-edited lock entries never reach the engine; passwords
declared elsewhere never enter the lock file; a generated one is kept in Ansible Vault."""
import os
import re
import subprocess

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from fake_llm import FakeLLM
from helpers import (NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, VENV_BIN, as_text, docker, engine_state, env_of,
                     inspect, playbook, run_playbook)

VAULTED_PASSWORD = "vaulted-Pa55-from-vault"   # pragma: allowlist secret
VAULT_PASSWORD = "vault-pw-for-tests"   # pragma: allowlist secret
# The showcase's API stand-in: nginx answering /health on 8000.
API_COMMAND = ["sh", "-c", "cat > /etc/nginx/conf.d/api.conf <<'CONF'\nserver {\n    listen 8000;\n"
               "    location = /health { default_type text/plain; return 200 \"ok\\n\"; }\n}\nCONF\n"
               "exec nginx -g 'daemon off;'\n"]
PLAY_VARS = {"app": "cwshop", "net_description": "{{ app }} network for API and cache communication"}


@pytest.fixture
def llm():
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def foreign(stack):
    """A volume and a network the stack does not own (no labels), removed afterwards."""
    names = {"volume": stack + "-foreign-vol", "network": stack + "-foreign-net"}
    docker("volume", "create", names["volume"])
    docker("network", "create", names["network"])
    yield names
    docker("volume", "rm", "-f", names["volume"], check=False)
    docker("network", "rm", names["network"], check=False)


def vault_file(workdir):
    path = os.path.join(workdir, "vault-pass")
    with open(path, "w") as handle:
        handle.write(VAULT_PASSWORD + "\n")
    return path


def encrypt_string(workdir, name, value):
    """`ansible-vault encrypt_string`, as a user does it."""
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--vault-password-file",
                           vault_file(workdir), value, "--name", name], capture_output=True, text=True, check=True)
    return proc.stdout


def names(stack):
    return dict((short, "%s-%s" % (stack, short)) for short in ("pg", "cache", "files", "api", "web"))


# A server that declares no password: trust authentication. The local test image's initdb
# wants a password file all the same, so it gets one in the shell only, never in the declaration.
TRUST = {"env": {"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": "cwshopdb"},
         "command": ["sh", "-c", "POSTGRES_PASSWORD=initdb-only exec docker-entrypoint.sh postgres"]}


def resources(stack, pg_env=None, pg_command=None):
    n = names(stack)
    pg = {"name": n["pg"], "image": POSTGRES_IMAGE, "ports": ["5432"],
          "env": pg_env or {"POSTGRES_PASSWORD": "{{ db_password }}", "POSTGRES_DB": "{{ app }}db"},
          "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 30}}
    if pg_command:
        pg["command"] = pg_command
    return [
        pg,
        {"name": n["cache"], "image": REDIS_IMAGE, "ports": ["6379"],
         "healthcheck": {"test": "redis-cli ping", "interval": "1s", "retries": 30}},
        {"name": n["files"], "image": NGINX_IMAGE},
        {"name": n["api"], "image": NGINX_IMAGE, "ports": ["8000"], "command": API_COMMAND,
         "healthcheck": {"test": "curl -fsS http://localhost:8000/health", "interval": "1s", "retries": 30}},
        {"name": n["web"], "image": NGINX_IMAGE},
    ]


def connections(stack):
    """Four connections that all need completion; descriptions from templated vars."""
    n = names(stack)
    return [
        {"type": "database", "from": n["api"], "to": n["pg"],
         "description": "Connect to PostgreSQL database for {{ app }} data"},
        {"type": "network", "from": n["api"], "to": n["cache"], "description": "{{ net_description }}"},
        {"type": "file", "from": n["api"], "to": n["files"], "description": "shared volume for {{ app }} file uploads"},
        {"type": "service_mesh", "from": n["web"], "to": n["api"], "description": "web calls the api",
         "health_check_path": "/health"},
    ]


def write_role_play(workdir, stack, pg_env=None, vaulted=True, pg_command=None):
    """A playbook that includes the `stack` role; the stack name comes as an extra var."""
    if vaulted:
        with open(os.path.join(workdir, "secrets.yml"), "w") as handle:
            handle.write(encrypt_string(workdir, "db_password", VAULTED_PASSWORD))
    play = {"hosts": "localhost", "gather_facts": False,
            "vars_files": ["secrets.yml"] if vaulted else [],
            "vars": PLAY_VARS,
            "roles": [{"role": "clockwork.connections.stack", "vars": {
                "clockwork_stack_name": "{{ stack }}", "clockwork_diagram_path": "",
                "clockwork_resources": resources(stack, pg_env, pg_command), "clockwork_connections": connections(stack)}}]}
    path = os.path.join(workdir, "play.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([play], handle)
    return path


def role_run(workdir, stack, env=None, check=False, tags=None, vault=True, lock=None):
    args = ["-e", "stack=%s" % stack]
    if vault:
        args += ["--vault-password-file", vault_file(workdir)]
    env = dict(env or {}, CLOCKWORK_LOCK_FILE=lock or os.path.join(workdir, "clockwork.lock.yml"))
    return run_playbook(os.path.join(workdir, "play.yml"), check=check, tags=tags, extra_args=args, env=env)


def stack_state(stack):
    """engine_state() narrowed to this test's objects: others use the engine at the same time."""
    return dict((kind, [line for line in lines if stack in line or "cwshop" in line])
                for kind, lines in engine_state().items())


def recap_changed(run):
    return int(re.search(r"changed=(\d+)", run.output.split("PLAY RECAP")[-1]).group(1))


def converge_result(run, stack):
    return run.result("Converge stack %s" % stack)


def good_answers(stack):
    return {
        "connection_string_template": [{"connection_string_template":
                                        "postgresql://{user}:{password}@{host}:{port}/{database}",
                                        "username": "postgres", "database_name": "orders"}],
        "network_name": [{"network_name": stack + "-backend", "driver": "bridge"}],
        "mount_path": [{"mount_path": "/srv/uploads", "volume_name": stack + "-uploads"}],
        "port": [{"port": 8000, "service_name": stack + "-api"}],
    }


@pytest.mark.parametrize("mode", ["offline", "llm"])
def test_stack_role_completes_every_type_from_vaulted_templated_and_extra_vars(stack, llm, tmp_path, mode):
    workdir = str(tmp_path)
    n = names(stack)
    write_role_play(workdir, stack)
    env = llm.env() if mode == "llm" else {}
    llm.answer_by_field(good_answers(stack))
    lock_path = tmp_path / "clockwork.lock.yml"

    before = stack_state(stack)
    check = role_run(workdir, stack, env, check=True)
    assert check.rc == 0, check.output
    assert stack_state(stack) == before, "--check changed Docker's state"
    assert not lock_path.exists(), "--check wrote the lock file"

    llm.answer_by_field(good_answers(stack))
    deploy = role_run(workdir, stack, env)
    assert deploy.rc == 0, deploy.output
    assert "Traceback" not in deploy.output and VAULTED_PASSWORD not in deploy.output, deploy.output
    assert recap_changed(deploy) > 0, deploy.details
    completion = converge_result(deploy, stack)["completion"]
    kinds = ["database %s -> %s" % (n["api"], n["pg"]), "network %s -> %s" % (n["api"], n["cache"]),
             "file %s -> %s" % (n["api"], n["files"]), "service_mesh %s -> %s" % (n["web"], n["api"])]
    assert sorted(completion) == sorted(kinds), deploy.details
    assert {c["source"] for c in completion.values()} == {"local" if mode == "offline" else "llm"}, deploy.details
    if mode == "llm":
        assert sorted(len(llm.asked_for(f)) for f in ("connection_string_template", "network_name", "mount_path",
                                                     "port")) == [1, 1, 1, 1]
        for request in llm.requests:
            assert VAULTED_PASSWORD not in str(request["body"]), "a secret went to the model"
    database, network, files, mesh = (completion[k]["fields"] for k in kinds)
    assert completion[kinds[0]]["password"].startswith("from to env POSTGRES_PASSWORD"), deploy.details
    assert database["database_name"] == ("cwshopdb" if mode == "offline" else "orders"), deploy.details
    if mode == "offline":
        assert files == {"mount_path": "/data/uploads", "volume_name": files["volume_name"]}, deploy.details
        assert files["volume_name"] in ("cwshop-uploads", stack + "-cwshop-uploads"), deploy.details
        assert network["network_name"] in ("cwshop-network", stack + "-cwshop-network"), deploy.details
    assert mesh == {"port": 8000, "service_name": n["api"]}, deploy.details

    # What the engine has: the completed values, the vaulted password, and nothing else.
    api_env = env_of(n["api"])
    assert api_env["DATABASE_URL"] == "postgresql://postgres:%s@%s:5432/%s" % (
        VAULTED_PASSWORD, n["pg"], database["database_name"]), deploy.details
    assert api_env[n["cache"].upper().replace("-", "_") + "_HOST"] == n["cache"]
    assert env_of(n["web"])[n["api"].upper().replace("-", "_") + "_URL"] == "http://%s:8000" % n["api"]
    for container in (n["api"], n["files"]):
        mounts = dict((m["Destination"], m.get("Name")) for m in inspect("container", container)["Mounts"])
        assert mounts[files["mount_path"]] == files["volume_name"], deploy.details
    net = inspect("network", network["network_name"])
    assert net["Labels"]["io.clockwork.stack"] == stack, deploy.details
    assert sorted(c["Name"] for c in net["Containers"].values()) == sorted([n["api"], n["cache"]]), deploy.details
    converged = converge_result(deploy, stack)   # deploy and verify in one call
    assert converged["verified"] and len(converged["checks"]) >= 4, as_text(converged)
    assert all(c["ok"] for c in converged["checks"]), as_text(converged["checks"])

    # The lock file: the reference, never the password; plain YAML that loads.
    lock = lock_path.read_text()
    assert VAULTED_PASSWORD not in lock and "Pa55" not in lock
    entry = yaml.safe_load(lock)["completions"][kinds[0]]
    assert entry["password_from"] == "to env POSTGRES_PASSWORD" and "password" not in entry["fields"]
    assert oct(os.stat(str(lock_path)).st_mode & 0o777) == "0o600"

    llm.answer((500, "must not be asked"))
    ids = dict((name, inspect("container", name)["Id"]) for name in n.values())
    rerun = role_run(workdir, stack, env)
    assert rerun.rc == 0, rerun.output
    assert recap_changed(rerun) == 0, rerun.output
    assert llm.requests == [], "the rerun asked the model"
    assert lock_path.read_text() == lock
    assert dict((name, inspect("container", name)["Id"]) for name in n.values()) == ids
    assert all(c["from_lock"] for c in converge_result(rerun, stack)["completion"].values()), rerun.details

    state = stack_state(stack)
    recheck = role_run(workdir, stack, env, check=True)
    assert recheck.rc == 0 and recap_changed(recheck) == 0, recheck.output
    assert stack_state(stack) == state and llm.requests == []
    asserted = role_run(workdir, stack, env, tags="assert")
    assert asserted.rc == 0 and llm.requests == [], asserted.output
    checks = asserted.result("Verify every connection from inside the containers")["checks"]
    assert len(checks) == len(converged["checks"]) and all(c["ok"] for c in checks), as_text(checks)


HOSTILE_TEMPLATES = ["postgresql://{user}:{password}@elsewhere.example:5432/{database}",
                     "postgresql://{user}:{password}@{host}:{port}/{database}?host=elsewhere.example",
                     "postgresql://{user}:{password}@10.1.2.3:{port}/{database}"]


def hostile_answers(stack, foreign):
    return {
        "connection_string_template": [dict(connection_string_template=t, username="postgres", database_name="x")
                                       for t in HOSTILE_TEMPLATES],
        "mount_path": [{"mount_path": "/etc", "volume_name": stack + "-uploads"},
                       {"mount_path": "/srv/uploads", "volume_name": foreign["volume"]},
                       {"mount_path": "/var/run/docker.sock", "volume_name": stack + "-uploads"}],
        "network_name": [{"network_name": foreign["network"], "driver": "bridge"},
                         {"network_name": "host", "driver": "bridge"},
                         {"network_name": foreign["network"], "driver": "bridge"}],
        "port": [{"port": 8000, "service_name": stack + "-pg"}, {"port": 8000, "service_name": stack + "-cache"},
                 {"port": 8000, "service_name": stack + "-pg"}],
    }


def stack_task(stack):
    """The same stack through the stack module, in one task."""
    res = resources(stack, {"POSTGRES_PASSWORD": "declared-secret-9", "POSTGRES_DB": "{{ app }}db"})
    return [{"name": "stack", "register": "result", "clockwork.connections.stack": {
        "name": stack, "resources": res, "connections": connections(stack)}}]


def run_stack(stack, tmp_path, **kwargs):
    return playbook(stack_task(stack), workdir=str(tmp_path), play_extra={"vars": PLAY_VARS}, **kwargs)


def assert_nothing_hostile(stack, foreign):
    """What docker inspect sees: no other host, no system mount, nothing foreign, no alias taken."""
    n = names(stack)
    url = env_of(n["api"])["DATABASE_URL"]
    assert "@%s:5432/" % n["pg"] in url and "elsewhere" not in url and "10.1.2.3" not in url, url
    for name in n.values():
        attrs = inspect("container", name)
        if attrs is None:
            continue
        for mount in attrs["Mounts"]:
            assert mount["Destination"] not in ("/", "/etc", "/var/run/docker.sock"), (name, mount)
            assert mount.get("Name") != foreign["volume"], (name, mount)
        networks = attrs["NetworkSettings"]["Networks"]
        assert foreign["network"] not in networks and "host" not in networks, (name, list(networks))
        aliases = [a for net in networks.values() for a in net.get("Aliases") or []]
        for other in (n["pg"], n["cache"]):
            assert other == name or other not in aliases, (name, aliases)
    assert inspect("network", foreign["network"])["Containers"] == {}
    assert docker("ps", "-a", "--filter", "volume=" + foreign["volume"], "--format", "{{.Names}}") == ""


def test_hostile_answers_never_reach_the_engine(stack, llm, foreign, tmp_path):
    llm.answer_by_field(hostile_answers(stack, foreign))
    run = run_stack(stack, tmp_path, env=llm.env())
    assert run.rc == 0, run.output
    assert "Traceback" not in run.output, run.output
    assert len(llm.requests) == 12, "each connection is asked three times, no more"
    completion = run.result("stack")["completion"]
    assert {c["source"] for c in completion.values()} == {"local"}, run.details
    fallbacks = dict((name.split()[0], report["fallback"]) for name, report in completion.items())
    assert "connection_string_template" in fallbacks["database"] and "names the server" in fallbacks["database"], \
        run.details
    assert "mount_path '/var/run/docker.sock' is a system path" in fallbacks["file"], run.details
    assert "network_name" in fallbacks["network"] and "not the collection's" in fallbacks["network"], run.details
    assert "service_name" in fallbacks["service_mesh"] and "taken over" in fallbacks["service_mesh"], run.details
    # Every refusal went back to the model, naming the field.
    retries = [r["body"]["messages"][-1]["content"] for r in llm.requests if len(r["body"]["messages"]) > 2]
    for words in ("connection_string_template", "option 'host=elsewhere.example'", "mount_path '/etc'",
                  "volume_name volume %s exists" % foreign["volume"], "network_name network host exists",
                  "service_name '%s-pg'" % stack):
        assert any(words in text for text in retries), words
    # The user is told, with the connection and the field.
    flat = " ".join(run.output.split())
    assert "[WARNING]" in run.output and "gave no acceptable answer" in flat, run.details
    assert_nothing_hostile(stack, foreign)
    lock = (tmp_path / "clockwork.lock.yml").read_text()
    assert "declared-secret-9" not in lock and "elsewhere.example" not in lock and "/etc" not in lock


EDITS = [
    ("database", "connection_string_template", "postgresql://{user}:{password}@elsewhere.example:5432/{database}",
     "names the server"),
    ("file", "mount_path", "/etc", "is a system path"),
    ("file", "mount_path", "/var/run/docker.sock", "is a system path"),
    ("file", "volume_name", "FOREIGN_VOLUME", "exists and is not the collection's"),
    ("network", "network_name", "FOREIGN_NETWORK", "exists and is not the collection's"),
    ("service_mesh", "service_name", "PG", "taken over"),
    ("database", "password_from", "to env HOME", "refers to 'to env HOME'"),
]


def test_hand_edited_lock_entries_are_refused_naming_the_entry_and_the_field(stack, foreign, tmp_path):
    first = run_stack(stack, tmp_path)
    assert first.rc == 0, first.output
    lock_path = tmp_path / "clockwork.lock.yml"
    good = yaml.safe_load(lock_path.read_text())
    n = names(stack)
    ids = dict((name, inspect("container", name)["Id"]) for name in n.values())
    for kind, field, value, words in EDITS:
        value = {"FOREIGN_VOLUME": foreign["volume"], "FOREIGN_NETWORK": foreign["network"],
                 "PG": n["pg"]}.get(value, value)
        edited = yaml.safe_load(yaml.safe_dump(good))
        [name] = [k for k in edited["completions"] if k.startswith(kind + " ")]
        if field == "password_from":
            edited["completions"][name][field] = value
        else:
            edited["completions"][name]["fields"][field] = value
        lock_path.write_text(yaml.safe_dump(edited))
        for check in (True, False):
            run = run_stack(stack, tmp_path, check=check)
            assert run.rc != 0, "%s %r:\n%s" % (field, value, run.output)
            msg = run.result("stack")["msg"]
            assert "lock file %s: entry '%s': field %s" % (lock_path, name, field) in msg and words in msg, msg
            assert "Traceback" not in run.output, run.output
        assert dict((c, inspect("container", c)["Id"]) for c in n.values()) == ids, "a refused entry changed the stack"
        assert_nothing_hostile(stack, foreign)
    # A lock file that is not YAML: the file and the line.
    lock_path.write_text("completions:\n  network a -> b:\n    input: [oops\n")
    run = run_stack(stack, tmp_path)
    assert run.rc != 0 and "Traceback" not in run.output, run.output
    msg = run.result("stack")["msg"]
    assert "lock file %s is not valid YAML at line 4" % lock_path in msg and "line 3" in msg, msg
    # Restored: the stack is as it was.
    lock_path.write_text(yaml.safe_dump(good))
    again = run_stack(stack, tmp_path)
    assert again.rc == 0 and not again.changed, again.output


def test_a_generated_password_is_kept_in_ansible_vault(stack, tmp_path):
    """No declared password (trust authentication): one is generated, stored vault-encrypted
    inline in the lock file; an encrypted lock file works as well."""
    workdir = str(tmp_path)
    n = names(stack)
    write_role_play(workdir, stack, pg_env=TRUST["env"], pg_command=TRUST["command"], vaulted=False)
    run = role_run(workdir, stack)
    assert run.rc == 0, run.output
    report = converge_result(run, stack)["completion"]["database %s -> %s" % (n["api"], n["pg"])]
    assert report["password"] == "generated locally, vault-encrypted in the lock file", run.details
    lock_path = tmp_path / "clockwork.lock.yml"
    text = lock_path.read_text()
    assert "password: !vault |" in text
    url = env_of(n["api"])["DATABASE_URL"]
    generated = url.split("://postgres:", 1)[1].split("@", 1)[0]
    assert len(generated) >= 24 and generated not in text and generated not in run.output, run.output

    # The inline value decrypts with the vault password, as Ansible's own loader would.
    class Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        pass
    Loader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))
    entry = yaml.load(text, Loader=Loader)["completions"]["database %s -> %s" % (n["api"], n["pg"])]
    vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))])
    assert vault.decrypt(entry["fields"]["password"]).decode() == generated

    rerun = role_run(workdir, stack)
    assert rerun.rc == 0 and recap_changed(rerun) == 0, rerun.output
    # Without the vault password: refused, saying which entry and field, and how.
    locked = role_run(workdir, stack, vault=False)
    assert locked.rc != 0 and "Traceback" not in locked.output, locked.output
    msg = converge_result(locked, stack)["msg"]
    assert "entry 'database %s -> %s': field password is vault-encrypted" % (n["api"], n["pg"]) in msg, locked.details
    assert "--vault-password-file" in msg, locked.details

    # The whole lock file encrypted with ansible-vault: read and written back encrypted.
    subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt", "--vault-password-file", vault_file(workdir),
                    str(lock_path)], check=True, capture_output=True)
    encrypted = role_run(workdir, stack)
    assert encrypted.rc == 0 and recap_changed(encrypted) == 0, encrypted.output
    assert lock_path.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert env_of(n["api"])["DATABASE_URL"] == url


def test_hostile_answers_to_the_single_modules_never_reach_the_engine(stack, llm, foreign, tmp_path):
    """The same policy in front of database_connection, network_connection and file_connection."""
    n = names(stack)
    answers = hostile_answers(stack, foreign)
    answers["mount_path"][2] = {"mount_path": "/proc/sys", "volume_name": stack + "-uploads"}
    llm.answer_by_field(answers)
    container = "clockwork.connections.container"
    tasks = [
        {"name": "pg", container: {"name": n["pg"], "image": POSTGRES_IMAGE, "stack": stack, "ports": ["5432"],
                                   "env": {"POSTGRES_PASSWORD": "declared-secret-9", "POSTGRES_DB": "cwshopdb"},
                                   "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 30}}},
        {"name": "cache", container: {"name": n["cache"], "image": REDIS_IMAGE, "stack": stack, "ports": ["6379"]}},
        {"name": "files", container: {"name": n["files"], "image": NGINX_IMAGE, "stack": stack}},
        {"name": "db", "register": "db", "clockwork.connections.database_connection": {
            "from": n["api"], "to": n["pg"], "stack": stack, "description": "Connect to PostgreSQL for cwshop data"}},
        {"name": "net", "register": "net", "clockwork.connections.network_connection": {
            "from": n["api"], "to": n["cache"], "stack": stack, "description": "cwshop network"}},
        {"name": "upload", "register": "upload", "clockwork.connections.file_connection": {
            "from": n["api"], "to": n["files"], "stack": stack, "description": "shared volume for cwshop uploads"}},
        {"name": "api", container: {"name": n["api"], "image": NGINX_IMAGE, "stack": stack, "contributions": [
            "{{ db.contribution }}", "{{ net.contribution }}", "{{ upload.contribution }}"]}},
        # The database result is hidden (it holds the URL): its completion is shown on its own.
        {"name": "show", "debug": {"msg": "{{ {'db': db.completion, 'net': net.completion, "
                                          "'upload': upload.completion} }}"}},
    ]
    run = playbook(tasks, workdir=str(tmp_path), env=llm.env())
    assert run.rc == 0, run.output
    assert "Traceback" not in run.output and "declared-secret-9" not in run.output, run.output
    assert len(llm.requests) == 9
    for task, field in (("db", "connection_string_template"), ("net", "network_name"), ("upload", "mount_path")):
        completion = run.result("show")["msg"][task]
        assert completion["source"] == "local" and field in completion["fallback"], as_text(completion)
    assert "mount_path '/proc/sys' is a system path" in run.result("show")["msg"]["upload"]["fallback"], run.details
    assert env_of(n["api"])["DATABASE_URL"] == "postgresql://postgres:declared-secret-9@%s:5432/cwshopdb" % n["pg"]
    assert_nothing_hostile(stack, foreign)
    lock = (tmp_path / "clockwork.lock.yml").read_text()
    assert "declared-secret-9" not in lock and "password_from: to env POSTGRES_PASSWORD" in lock
