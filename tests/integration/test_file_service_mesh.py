"""file_connection and service_mesh_connection on a real engine."""
import os

import pytest

from helpers import NGINX_IMAGE, docker, engine_state, env_of, inspect, playbook

HEALTH_CONF = """server {
    listen 8000;
    location = /health { return 200 "ok\\n"; }
    location / { return 404 "nothing here\\n"; }
}
"""
TLS_CONF = """server {
    listen 8443 ssl;
    ssl_certificate /etc/clockwork/tls/tls.crt;
    ssl_certificate_key /etc/clockwork/tls/tls.key;
    location = /health { return 200 "secure ok\\n"; }
}
"""
# Serve TLS once the certificate is mounted (the TLS connection adds it to the container).
API_COMMAND = ["sh", "-c", "if [ -f /etc/clockwork/tls/tls.crt ]; then cp /srv/tls.conf /etc/nginx/conf.d/; fi; "
               "exec nginx -g 'daemon off;'"]


# Stops at once on SIGTERM and on the nginx image's SIGQUIT: as PID 1 `sleep infinity` ignores both,
# and each recreation waited for Docker's 10 s stop timeout.
IDLE = ["sh", "-c", "trap 'exit 0' TERM QUIT; while true; do sleep 0.2; done"]


def on_network(stack, name):
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net", check=False)
    return [{"name": stack + "-net", "aliases": [name]}]


def container(stack, name, register=None, **extra):
    args = dict(name=name, image=NGINX_IMAGE, stack=stack, networks=on_network(stack, name))
    args.update(extra)
    task = {"name": "container " + name, "clockwork.connections.container": args}
    if register:
        task["register"] = register
    return task


def connection(module, name, **args):
    return {"name": name, "register": name, "clockwork.connections." + module: args}


def verify(*registered):
    return {"name": "verify", "clockwork.connections.verify": {
        "checks": "{{ %s }}" % " + ".join("%s.contribution.checks" % r for r in registered)}}


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "health.conf").write_text(HEALTH_CONF)
    (tmp_path / "tls.conf").write_text(TLS_CONF)
    return tmp_path


def file_tasks(stack, api_env=None):
    api, storage = stack + "-api", stack + "-storage"
    return [
        container(stack, storage, command=IDLE),
        connection("file_connection", "config", **{
            "from": api, "to": "api-config", "source_path": "config.json", "content": '{"log_level": "info"}',
            "mode": "0644", "mount_path": "/etc/app/config.json", "read_only": True, "stack": stack}),
        connection("file_connection", "shared", **{
            "from": api, "to": storage, "volume_name": stack + "-shared", "mount_path": "/data/shared",
            "stack": stack}),
        container(stack, api, env=api_env or {}, contributions=["{{ config.contribution }}", "{{ shared.contribution }}"]),
        verify("config", "shared"),
    ]


def test_config_file_and_shared_volume(stack, workdir):
    api, storage = stack + "-api", stack + "-storage"
    wd = str(workdir)
    tasks = file_tasks(stack)
    before = engine_state()
    check = playbook(tasks[1:3], check=True, diff=True, workdir=wd)
    assert check.rc == 0, check.output
    assert engine_state() == before and not (workdir / "config.json").exists()

    run = playbook(file_tasks(stack), workdir=wd)
    assert run.rc == 0, run.output
    # The relative source_path resolved against the playbook's directory.
    assert (workdir / "config.json").read_text() == '{"log_level": "info"}'
    assert docker("exec", api, "cat", "/etc/app/config.json") == '{"log_level": "info"}'
    write = docker("exec", api, "sh", "-c", "echo x > /etc/app/config.json; echo rc=$?", check=False)
    assert "Read-only file system" in write or "rc=1" in write or "rc=2" in write
    assert (workdir / "config.json").read_text() == '{"log_level": "info"}'
    # The shared volume: mounted in both, at the same path; a round trip.
    docker("exec", api, "sh", "-c", "echo 'test data' > /data/shared/test.txt")
    assert docker("exec", storage, "cat", "/data/shared/test.txt") == "test data"
    assert inspect("volume", stack + "-shared")["Labels"]["io.clockwork.stack"] == stack
    assert [c["ok"] for c in run.result("verify")["checks"]] == [True, True], run.details

    again = playbook(file_tasks(stack), workdir=wd)
    assert again.rc == 0, again.output
    assert not again.changed, again.details
    # storage's own task (without the mount) keeps the mount a connection added: nothing changes.
    assert "/data/shared" in [m["Destination"] for m in inspect("container", storage)["Mounts"]]
    state = engine_state()
    last = playbook(file_tasks(stack), check=True, workdir=wd)
    assert last.rc == 0 and not last.changed and engine_state() == state, last.details


def test_named_volume_data_survives_recreation_of_from(stack, workdir):
    api = stack + "-api"
    wd = str(workdir)
    _run = playbook(file_tasks(stack), workdir=wd)
    assert _run.rc == 0, _run.output
    old_id = inspect("container", api)["Id"]
    docker("exec", api, "sh", "-c", "echo precious > /data/shared/keep.txt")
    rerun = playbook(file_tasks(stack, api_env={"LOG": "debug"}), workdir=wd)
    assert rerun.rc == 0, rerun.output
    assert inspect("container", api)["Id"] != old_id
    assert docker("exec", api, "cat", "/data/shared/keep.txt") == "precious"


def test_missing_source_path_and_relative_mount_path_fail_clearly(stack, workdir):
    missing = playbook([connection("file_connection", "f", **{
        "from": "a", "to": "b", "source_path": "nope.json", "mount_path": "/x", "stack": stack})], workdir=str(workdir))
    assert missing.rc != 0, missing.output
    assert "source_path %s does not exist" % os.path.join(str(workdir), "nope.json") in missing.result("f")["msg"], \
        missing.details
    relative = playbook([connection("file_connection", "f", **{
        "from": "a", "to": "b", "volume_name": "v", "mount_path": "data", "stack": stack})])
    assert relative.rc != 0 and "must be an absolute path" in relative.result("f")["msg"], relative.details


def api_container(stack, workdir, **extra):
    api = stack + "-api"
    return container(stack, api, ports=["8000"], command=API_COMMAND, mounts=[
        {"type": "bind", "source": str(workdir / "health.conf"), "target": "/etc/nginx/conf.d/health.conf",
         "read_only": True},
        {"type": "bind", "source": str(workdir / "tls.conf"), "target": "/srv/tls.conf", "read_only": True}], **extra)


def mesh_tasks(stack, workdir, **mesh):
    api, frontend = stack + "-api", stack + "-frontend"
    args = {"from": frontend, "to": api, "protocol": "http", "health_check_path": "/health",
            "load_balancing": "round_robin", "stack": stack, "tls_dir": str(workdir / "tls"),
            "health_check_timeout": 5}
    args.update(mesh)
    return [api_container(stack, workdir), connection("service_mesh_connection", "mesh", **args),
            container(stack, frontend, contributions=["{{ mesh.contribution }}"]), verify("mesh")]


def test_service_url_and_health_check_over_http(stack, workdir):
    api, frontend = stack + "-api", stack + "-frontend"
    tasks = mesh_tasks(stack, workdir)
    before = engine_state()
    check = playbook(tasks, check=True, diff=True)
    assert check.rc == 0, check.output
    assert check.result("mesh")["service"]["port_source"] == "unknown until %s exists (check mode)" % api, check.details
    assert check.result("verify")["checks"] == [], check.details   # nothing to prove yet
    assert engine_state() == before

    run = playbook(tasks)
    assert run.rc == 0, run.output
    assert run.result("mesh")["service"]["port_source"] == "declared by %s" % api, run.details
    env_key = api.upper().replace("-", "_") + "_URL"
    assert env_of(frontend)[env_key] == "http://%s:8000" % api
    assert run.result("verify")["checks"][0]["msg"] == "GET http://%s:8000/health from %s answered 200" % (api, frontend), \
        run.details
    docker("exec", frontend, "nc", "-zv", api, "8000")

    again = playbook(tasks)
    assert again.rc == 0 and not again.changed, again.details
    state = engine_state()
    last = playbook(tasks, check=True)
    assert last.rc == 0 and not last.changed and engine_state() == state, last.details

    wrong = playbook(mesh_tasks(stack, workdir, health_check_path="/nope"))
    assert wrong.rc != 0, wrong.output
    msg = wrong.result("verify")["msg"]
    assert "GET http://%s:8000/nope" % api in msg and "status 404" in msg and "nothing here" in msg, wrong.details


def test_health_check_over_https_with_the_generated_ca(stack, workdir):
    api, frontend = stack + "-api", stack + "-frontend"
    tls = mesh_tasks(stack, workdir, tls_enabled=True, port=8443)
    before = engine_state()
    check = playbook(tls, check=True)
    assert check.rc == 0, check.output
    assert engine_state() == before and not (workdir / "tls").exists()

    run = playbook(tls)
    assert run.rc == 0, run.output
    env = env_of(frontend)
    prefix = api.upper().replace("-", "_")
    assert env[prefix + "_URL"] == "https://%s:8443" % api
    assert env[prefix + "_CA_FILE"] == "/etc/clockwork/tls/ca.crt"
    assert "answered 200" in run.result("verify")["checks"][0]["msg"], run.details
    key = workdir / "tls" / (api + ".key")
    assert oct(os.stat(str(key)).st_mode & 0o777) == "0o600"
    # The certificate is verified against the CA: without it, curl refuses.
    refused = docker("exec", frontend, "sh", "-c", "curl -sS https://%s:8443/health 2>&1; echo rc=$?" % api, check=False)
    assert "rc=60" in refused
    cert_before = (workdir / "tls" / (api + ".crt")).read_bytes()

    again = playbook(tls)
    assert again.rc == 0 and not again.changed, again.details
    state = engine_state()
    last = playbook(tls, check=True)
    assert last.rc == 0 and not last.changed and engine_state() == state, last.details
    assert (workdir / "tls" / (api + ".crt")).read_bytes() == cert_before

    # Another service name changes the certificate's names: a new certificate, and the server restarts.
    renamed = playbook(tls[:2] + [connection("service_mesh_connection", "mesh2", **dict(
        tls[1]["clockwork.connections.service_mesh_connection"], service_name=api))])
    assert renamed.rc == 0, renamed.output


def test_port_discovery_from_the_image_and_bad_load_balancing(stack, workdir):
    api = stack + "-plain"
    run = playbook([container(stack, api), connection("service_mesh_connection", "mesh", **{
        "from": "x", "to": api, "stack": stack})])
    assert run.rc == 0, run.output
    assert run.result("mesh")["service"]["port_source"] == "exposed by %s's image" % api, run.details
    assert run.result("mesh")["service"]["url"] == "http://%s:80" % api, run.details
    bad = playbook([connection("service_mesh_connection", "mesh", **{
        "from": "x", "to": api, "load_balancing": "least_conn", "stack": stack})])
    assert bad.rc != 0 and "least_conn cannot be honoured" in bad.result("mesh")["msg"], bad.details
