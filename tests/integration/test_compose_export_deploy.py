"""playbooks/compose_export.yml and Compose v2 (`docker compose`, the reference) on the real engine: the
exported showcase is accepted by `docker compose config` (and by docker-compose 1.29's, a second column,
where it is installed), comes up with `docker compose up -d` from the local images, and its containers are
those the stack module makes of the same declaration, field by field (every field compose_compare reads)."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

from compose_compare import compose_v2, compose_v2_missing, differences, snapshot
from helpers import LOCAL_IMAGES, ROOT, docker, engine_state, env_of, inspect, playbook, run_playbook

EXPORT = os.path.join(ROOT, "playbooks/compose_export.yml")
PASSWORD = "s3cret 'pw'/$5"  # pragma: allowlist secret

pytestmark = pytest.mark.skipif(compose_v2_missing() is not None, reason=str(compose_v2_missing()))


def showcase_of(stack, api_replicas=1):
    """The showcase (roles/showcase/defaults/main.yml) with the local images, and every name that is
    global on the engine (containers, the named network and volume) made the test's own."""
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/showcase/defaults/main.yml")))
    text = yaml.safe_dump({"resources": defaults["showcase_resources"],
                           "connections": defaults["showcase_connections"]})
    values = dict(defaults, **LOCAL_IMAGES)
    values.update(showcase_db_password=PASSWORD, showcase_api_replicas=api_replicas)
    text = re.sub(r"\{\{ (\w+) \}\}", lambda m: str(values[m.group(1)]).replace("'", "''"), text)
    declaration = yaml.safe_load(text)
    own = dict((r["name"], "%s-%s" % (stack, r["name"])) for r in declaration["resources"])
    for resource in declaration["resources"]:
        resource["name"] = own[resource["name"]]
    for connection in declaration["connections"]:
        connection["from"], connection["to"] = own[connection["from"]], own[connection["to"]]
        if connection.get("network_name"):
            connection["network_name"] = stack + "-backend"
        if connection.get("volume_name"):
            connection["volume_name"] = stack + "-shared"
    return declaration


def mine(stack):
    """The engine's objects of this test (the engine is shared: others come and go)."""
    return dict((kind, [x for x in listed if stack in x]) for kind, listed in engine_state().items())


def compose(directory, project, *args, check=True):
    proc = compose_v2(["-p", project] + list(args), cwd=directory)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def compose_v1_config(directory, project):
    """docker-compose 1.29's `config` of the same file, where it is installed (a second column); None else."""
    if shutil.which("docker-compose") is None:
        return None
    return subprocess.run(["docker-compose", "-p", project, "config"], cwd=directory, capture_output=True,
                          text=True, timeout=300)


def containers(label):
    ids = docker("ps", "-aq", "--filter", "label=" + label).split()
    return [inspect("container", i) for i in ids]


def without_initdb(shape):
    """The init mount of the schema is the one field compose adds on purpose (the stack applies the schema itself)."""
    for fields in shape.values():
        fields["mounts"] = [m for m in fields["mounts"] if not m.startswith("/docker-entrypoint-initdb.d/")]
        if "mounts_full" in fields:   # the export writes the file resources' content beside the compose file (out/)
            fields["mounts_full"] = [m.replace("/out/", "/") for m in fields["mounts_full"]
                                     if ":/docker-entrypoint-initdb.d/" not in m]
    return shape


def of_service(containers_found, name):
    """The containers of one resource or compose service (replicas: several, named differently by each tool)."""
    return [c for c in containers_found if c["Config"]["Labels"].get("io.clockwork.resource",
                                                                      c["Config"]["Labels"].get("com.docker.compose.service")) == name]


@pytest.mark.parametrize("api_replicas", [1, 2])
def test_the_exported_showcase_comes_up_as_the_stack_makes_it(stack, tmp_path, api_replicas):
    """With 2 replicas of the API, the exported service has deploy.replicas and no container_name:
    Compose names them <project>-<service>-<k>, the stack <name>-<k>; each is the same container."""
    declaration = showcase_of(stack, api_replicas)
    shutil.copy(os.path.join(ROOT, "roles/showcase/files/schema.sql"), str(tmp_path / "schema.sql"))
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({
        "clockwork_stack_name": stack, "clockwork_resources": declaration["resources"],
        "clockwork_connections": declaration["connections"]}))
    out = tmp_path / "out"
    out.mkdir()
    extra = ["-e", "out=%s" % (out / "compose.yaml"), "-e", "stack_file=%s" % (tmp_path / "vars.yml")]

    # The export: check mode writes nothing, then the files, then nothing changes.
    before = mine(stack)
    dry = run_playbook(EXPORT, check=True, extra_args=extra)
    assert dry.rc == 0, dry.output
    assert os.listdir(str(out)) == [] and mine(stack) == before
    first = run_playbook(EXPORT, extra_args=extra)
    assert first.rc == 0, first.output
    assert first.changed, first.details
    again = run_playbook(EXPORT, extra_args=extra)
    assert again.rc == 0 and not again.changed, again.output
    for run in (dry, first, again):
        assert "s3cret" not in run.output, "a secret was printed:\n" + run.output
    text = (out / "compose.yaml").read_text()
    assert "s3cret" not in text, "a secret was written in the compose file"
    assert oct(os.stat(str(out / ".env")).st_mode & 0o777) == "0o600"
    assert (out / "initdb" / (stack + "-postgres")).is_dir()

    project = stack
    try:
        config = compose(str(out), project, "config")
        assert "s3cret 'pw'/$$5" in config.stdout, "Compose read the password from the .env as it is"
        assert not config.stderr.strip(), "Compose warned about the exported file:\n" + config.stderr
        v1 = compose_v1_config(str(out), project)
        assert v1 is None or (v1.returncode == 0 and "s3cret 'pw'/$$5" in v1.stdout), v1 and v1.stderr
        compose(str(out), project, "up", "-d", "--wait")
        label = "com.docker.compose.project=" + project
        theirs = without_initdb(snapshot(containers(label), project, full=True))
        apis = of_service(containers(label), stack + "-api")
        assert len(apis) == api_replicas, [a["Name"] for a in apis]
        url = env_of(apis[0]["Id"])["DATABASE_URL"]
        assert url.startswith("postgresql://postgres:") and url.endswith("@%s-postgres:5432/appdb" % stack)
        # The schema ran through the init mount: the table the showcase's schema makes is there.
        tables = docker("exec", stack + "-postgres", "psql", "-U", "postgres", "-d", "appdb", "-Atc",
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables, "the schema was not applied by the init mount"
        compose(str(out), project, "down", "-v", "--remove-orphans")
        assert containers(label) == []

        # The same declaration by the stack module.
        deploy = playbook([{"name": "stack", "register": "result", "clockwork.connections.stack": {
            "name": stack, "resources": declaration["resources"], "connections": declaration["connections"],
            "verify": True}}], workdir=str(tmp_path))
        assert deploy.rc == 0, deploy.output
        ours = without_initdb(snapshot(containers("io.clockwork.stack=" + stack), stack, full=True))
        assert differences(ours, theirs) == [], "\n".join(differences(ours, theirs))
        assert len(of_service(containers("io.clockwork.stack=" + stack), stack + "-api")) == api_replicas
        assert sorted(ours) == sorted("%s-%s" % (stack, n) for n in ("postgres", "redis", "storage", "api", "frontend"))
    finally:
        compose(str(out), project, "down", "-v", "--remove-orphans", check=False)
