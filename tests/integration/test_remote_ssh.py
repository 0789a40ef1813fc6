"""A remote Docker host over SSH, with the playbook's files only on the controller.

The target is this machine reached through an sshd of the test's own on a loopback port
(key auth). The controller runs in a private mount namespace (`unshare -m`) where the
playbook, schema, migrations and a bind file live on a tmpfs: the module, started by sshd
outside that namespace, sees an empty directory there, so whatever it needs from those
files must come in its arguments, as the plan carries them.
"""
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid

import pytest
import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, ROOT, VENV_BIN, as_text, docker, env_of, inspect, remove_stack
from test_file_service_mesh import TLS_CONF

SSH_PORT = 2299
SCHEMA = "CREATE TABLE users (id serial PRIMARY KEY, name text);\n"
MIGRATIONS = {"1_add_email.sql": "ALTER TABLE users ADD COLUMN email text;\n",
              "2_seed.sql": "INSERT INTO users (name) VALUES ('ada');\n"}
MOTD = "served from the controller\n"


def _run(*cmd, **kwargs):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd of the test's own on 127.0.0.1:SSH_PORT, root with a key only; stopped afterwards."""
    if not shutil.which("sshd") and not os.path.exists("/usr/sbin/sshd"):
        _run("apt-get", "install", "-y", "-qq", "openssh-server", env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    home = tmp_path_factory.mktemp("sshd")
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "host_key"))
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "client_key"))
    shutil.copy(str(home / "client_key.pub"), str(home / "authorized_keys"))
    os.chmod(str(home), 0o700)
    (home / "sshd_config").write_text(
        "Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PidFile %s\nSubsystem sftp internal-sftp\n"
        % (SSH_PORT, home / "host_key", home / "authorized_keys", home / "sshd.pid"))
    os.makedirs("/run/sshd", exist_ok=True)
    daemon = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(home / "sshd_config")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(50):
        probe = subprocess.run(["ssh", "-i", str(home / "client_key"), "-p", str(SSH_PORT), "-o", "BatchMode=yes",
                                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                "root@127.0.0.1", "true"], capture_output=True)
        if probe.returncode == 0:
            break
        time.sleep(0.2)
    else:
        daemon.kill()
        pytest.fail("sshd did not accept the key: %s" % probe.stderr)
    yield home / "client_key"
    daemon.terminate()
    daemon.wait(10)


def controller_files(stack):
    """The playbook directory, as bytes of a tar archive: it will exist only on a private tmpfs."""
    resources = [
        {"name": stack + "-pg", "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": "{{ db_password }}"},
         "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 30}},
        {"name": stack + "-tlsconf", "type": "file", "path": "nginx/tls.conf", "content": TLS_CONF},
        {"name": stack + "-api", "image": NGINX_IMAGE, "ports": ["8443"],
         "command": ["sh", "-c", "cp /srv/tls.conf /etc/nginx/conf.d/ && exec nginx -g 'daemon off;'"]},
        {"name": stack + "-web", "image": NGINX_IMAGE},
    ]
    connections = [
        {"type": "database", "from": stack + "-web", "to": stack + "-pg", "password": "{{ db_password }}",
         "schema_file": "schema.sql", "migrations_dir": "migrations"},
        {"type": "file", "from": stack + "-api", "to": stack + "-tlsconf", "mount_path": "/srv/tls.conf",
         "read_only": True},
        {"type": "file", "from": stack + "-web", "to": stack + "-api", "source_path": "motd.txt",
         "mount_path": "/etc/motd.txt", "read_only": True},
        {"type": "service_mesh", "from": stack + "-web", "to": stack + "-api", "tls_enabled": True,
         "health_check_timeout": 20},
    ]
    play = [{
        "hosts": "remote", "gather_facts": False, "vars": {"db_password": "remote-s3cret"},
        "tasks": [
            {"name": "The target cannot see the controller's files",
             "ansible.builtin.stat": {"path": "{{ playbook_dir }}/schema.sql"}, "register": "seen",
             "tags": ["always"]},
            {"name": "Proof", "ansible.builtin.assert": {"that": ["not seen.stat.exists"]}, "tags": ["always"]},
            {"name": "The stack", "ansible.builtin.include_role": {"name": "clockwork.connections.stack"},
             "vars": {"clockwork_stack_name": stack, "clockwork_resources": resources,
                      "clockwork_connections": connections}, "tags": ["always"]},
        ]}]
    files = {"play.yml": yaml.safe_dump(play), "schema.sql": SCHEMA, "motd.txt": MOTD}
    files.update(("migrations/" + name, sql) for name, sql in MIGRATIONS.items())
    return tar_of(files)


def tar_of(files):
    """The tar of {path: text} that run_as_controller unpacks as the controller's directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def run_as_controller(key, stack, steps, outdir):
    """Run ansible-playbook once per step, all inside one private mount namespace whose
    tmpfs holds the playbook. Returns [(rc, output, results)] per step."""
    controller = "/srv/clockwork-controller-" + stack
    os.makedirs(controller, exist_ok=True)
    inventory = os.path.join(outdir, "inventory.ini")
    with open(inventory, "w") as handle:
        handle.write("remote ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s "
                     "ansible_python_interpreter=%s ansible_ssh_common_args='-o StrictHostKeyChecking=no "
                     "-o UserKnownHostsFile=/dev/null'\n" % (SSH_PORT, key, os.path.join(VENV_BIN, "python")))
    lines = ["set -u", "mount -t tmpfs -o mode=0700 clockwork-controller %s" % controller,
             "tar -x -C %s" % controller]
    for index, args in enumerate(steps):
        lines.append("CLOCKWORK_RESULTS_FILE=%s/%d.json %s/ansible-playbook -i %s %s/play.yml %s > %s/%d.log 2>&1; "
                     "echo $? > %s/%d.rc" % (outdir, index, VENV_BIN, inventory, controller, " ".join(args), outdir,
                                             index, outdir, index))
    lines.append("ls %s > %s/controller-files.txt" % (controller, outdir))
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("CLOCKWORK_LLM_", "OPENAI_")))
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests/integration/callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="clockwork_results", ANSIBLE_HOST_KEY_CHECKING="False")
    subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", "\n".join(lines)],
                   input=controller_files(stack), env=env, check=True, timeout=900, cwd=ROOT)
    assert os.listdir(controller) == [], "the controller's files leaked out of its namespace"
    os.rmdir(controller)
    runs = []
    for index in range(len(steps)):
        with open(os.path.join(outdir, "%d.log" % index)) as handle:
            output = handle.read()
        with open(os.path.join(outdir, "%d.rc" % index)) as handle:
            rc = int(handle.read())
        try:
            with open(os.path.join(outdir, "%d.json" % index)) as handle:
                results = json.load(handle)
        except (OSError, ValueError):
            results = []
        runs.append((rc, output, results))
    return runs


def recap_changed(output):
    return int(output.split("PLAY RECAP")[-1].split("changed=")[1].split()[0])


def test_remote_docker_host_over_ssh_with_controller_only_files(sshd, tmp_path):
    stack = "cwremote-" + uuid.uuid4().hex[:6]
    target_home = os.path.expanduser("~/.clockwork/" + stack)
    try:
        deploy, rerun, asserted, check = run_as_controller(
            sshd, stack, [["--tags", "deploy"], ["--tags", "deploy"], ["--tags", "assert"], ["--check", "--diff"]],
            str(tmp_path))
        assert deploy[0] == 0, deploy[1]
        assert "remote-s3cret" not in deploy[1], deploy[1]
        converge = [r for r in deploy[2] if r["_task"].endswith("Converge stack " + stack)][0]
        assert "invocation" in converge and converge["invocation"]["module_args"]["base_dir"] == target_home, \
            "the module ran on the target, with the target's base_dir:\n" + as_text(converge)
        # Schema and migrations came in the arguments: applied once, in order.
        pg, web, api = stack + "-pg", stack + "-web", stack + "-api"
        rows = docker("exec", pg, "psql", "-U", "postgres", "-tAc",
                      "SELECT kind || ' ' || name FROM clockwork_schema_migrations ORDER BY applied_at, name")
        assert rows.splitlines() == ["schema schema.sql", "migration 1_add_email.sql", "migration 2_seed.sql"]
        assert docker("exec", pg, "psql", "-U", "postgres", "-tAc", "SELECT name FROM users") == "ada"
        # The controller's bind file and the file resource were written on the Docker host, then mounted.
        assert docker("exec", web, "cat", "/etc/motd.txt") + "\n" == MOTD
        assert os.path.exists(os.path.join(target_home, "motd.txt"))
        assert os.path.exists(os.path.join(target_home, "nginx/tls.conf"))
        assert env_of(web)["DATABASE_URL"] == "postgresql://postgres:remote-s3cret@%s:5432/postgres" % pg
        assert env_of(web)[api.upper().replace("-", "_") + "_URL"] == "https://%s:8443" % api
        assert os.path.exists(os.path.join(target_home, "tls", api + ".crt")), "TLS material on the target"
        ids = dict((name, inspect("container", name)["Id"]) for name in (pg, api, web))

        assert rerun[0] == 0 and recap_changed(rerun[1]) == 0, rerun[1]
        assert asserted[0] == 0 and recap_changed(asserted[1]) == 0, asserted[1]
        checks = [r for r in asserted[2] if r["_task"].endswith("Verify every connection from inside the containers")]
        assert checks and all(c["ok"] for c in checks[0]["checks"]) and len(checks[0]["checks"]) == 4, \
            asserted[1] + as_text(asserted[2])
        assert any("answered 200" in c["msg"] for c in checks[0]["checks"]), as_text(checks[0]["checks"])
        assert check[0] == 0 and recap_changed(check[1]) == 0, check[1]
        assert dict((name, inspect("container", name)["Id"]) for name in (pg, api, web)) == ids
        assert "Traceback" not in deploy[1] + rerun[1] + asserted[1] + check[1], \
            deploy[1] + rerun[1] + asserted[1] + check[1]

        with open(os.path.join(str(tmp_path), "controller-files.txt")) as handle:
            assert stack + ".stack.md" in handle.read().split(), "the diagram is written on the controller"

        destroy, = run_as_controller(sshd, stack, [["-e", "clockwork_state=absent"]], str(tmp_path))
        assert destroy[0] == 0, destroy[1]
        assert docker("ps", "-aq", "--filter", "label=io.clockwork.stack=" + stack) == ""
    finally:
        remove_stack(stack)
        shutil.rmtree(target_home, ignore_errors=True)
