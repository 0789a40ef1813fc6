"""The stack module, the roles and playbooks/showcase.yml on a real engine."""
import json
import os
import re

import pytest

from helpers import NGINX_IMAGE, ROOT, STOPPED_GRACEFULLY, docker, engine_state, env_of, inspect, playbook, remove_stack, run_playbook

SHOWCASE = os.path.join(ROOT, "playbooks/showcase.yml")
LOCAL_IMAGES = ["-e", "@" + os.path.join(ROOT, "tests/images/local-images.yml")]
CONTAINERS = ["postgres", "redis", "storage", "api", "frontend"]


def showcase(*args, **kwargs):
    return run_playbook(SHOWCASE, extra_args=LOCAL_IMAGES + list(args), **kwargs)


def recap_changed(run):
    found = re.search(r"changed=(\d+)", run.output.split("PLAY RECAP")[-1])
    return int(found.group(1))


def summary(run, task="Report what was done"):
    return run.result(task)["msg"]


@pytest.fixture
def clean_showcase():
    def clean():
        remove_stack("showcase")
        config = os.path.join(ROOT, "playbooks/config.json")
        if os.path.exists(config):
            os.unlink(config)
    clean()
    yield
    clean()
    docker("rm", "-f", "cw-foreign", check=False)


def test_showcase_check_deploy_rerun_assert_destroy(clean_showcase):
    before = engine_state()
    check = showcase(check=True)
    assert check.rc == 0, check.output
    assert engine_state() == before, "--check changed Docker's state"
    assert not os.path.exists(os.path.join(ROOT, "playbooks/config.json"))
    lines = summary(check)
    assert lines[0] == "order: postgres, redis, config_file, storage, api, frontend", check.output
    assert "container api: would be created, started" in lines, check.output

    deploy = showcase(diff=True, verbose=True)
    assert deploy.rc == 0, deploy.output
    assert "secret123" not in deploy.output, "the password was printed:\n" + deploy.output
    assert summary(deploy)[0] == "order: postgres, redis, config_file, storage, api, frontend", deploy.details
    # Deploy and verify in one call: the separate verify task is skipped, every check passed.
    converged = deploy.result("Converge stack showcase")
    assert converged["verified"] and len(converged["checks"]) == 6 and all(c["ok"] for c in converged["checks"]), \
        deploy.details
    assert "skip_reason" in deploy.result("Verify every connection from inside the containers"), deploy.details
    assert "showcase | api: create, start" in deploy.output, "no progress line:\n" + deploy.output

    # The seed's "Usage" section, as written.
    assert env_of("api")["DATABASE_URL"] == "postgresql://postgres:secret123@postgres:5432/appdb"
    assert env_of("api")["REDIS_HOST"] == "redis"
    assert env_of("frontend")["API_URL"] == "http://api:8000"
    docker("exec", "api", "ping", "-c", "3", "redis")
    docker("exec", "api", "nc", "-zv", "postgres", "5432")
    docker("exec", "frontend", "nc", "-zv", "api", "8000")
    assert docker("exec", "api", "cat", "/etc/app/config.json") == '{"log_level": "info"}'
    docker("exec", "api", "sh", "-c", 'echo "test data" > /data/shared/test.txt')
    assert docker("exec", "storage", "cat", "/data/shared/test.txt") == "test data"
    assert docker("exec", "postgres", "psql", "-U", "postgres", "-d", "appdb", "-tAc",
                  "SELECT to_regclass('users') IS NOT NULL") == "t"
    ids = dict((name, inspect("container", name)["Id"]) for name in CONTAINERS)

    rerun = showcase()
    assert rerun.rc == 0, rerun.output
    assert recap_changed(rerun) == 0, rerun.output
    assert dict((name, inspect("container", name)["Id"]) for name in CONTAINERS) == ids
    state = engine_state()
    recheck = showcase(check=True)
    assert recheck.rc == 0 and recap_changed(recheck) == 0, recheck.details
    assert engine_state() == state

    asserted = showcase(tags="assert")
    assert asserted.rc == 0, asserted.output
    assert recap_changed(asserted) == 0, asserted.details
    # --tags assert alone: the showcase's own argument validation, the verify and its report;
    # the stack role's arguments are not validated twice.
    assert [r["_task"].split(" : ")[-1] for r in asserted.results] == [
        "Validating arguments against arg spec 'main' - The connections showcase of the seed document, on "
        "clockwork.connections.stack", "Verify every connection from inside the containers", "Report what was done"], \
        asserted.details
    assert len(asserted.result("Verify every connection from inside the containers")["checks"]) == 6, asserted.details
    assert [line.split(" [")[1].split("]")[0] for line in summary(asserted)] == ["ok"] * 6, asserted.details

    # A broken stack: every failed check is listed, not only the first.
    docker("stop", "redis")
    broken = showcase(tags="assert")
    assert broken.rc != 0, broken.output
    msg = broken.result("Verify every connection from inside the containers")["msg"]
    assert msg.startswith("2 of 6 checks failed"), msg
    assert "network api -> redis" in msg and "dependency frontend -> redis" in msg, msg
    healed = showcase()
    assert healed.rc == 0 and "container redis: started" in summary(healed), healed.details

    docker("run", "-d", "--name", "cw-foreign", NGINX_IMAGE)
    state = engine_state()
    dry_destroy = showcase("-e", "clockwork_state=absent", check=True)
    assert dry_destroy.rc == 0 and engine_state() == state, dry_destroy.output
    assert "container api: would be stopped, removed" in summary(dry_destroy), dry_destroy.details
    data = [m["Name"] for m in inspect("container", "postgres")["Mounts"] if m["Destination"].startswith("/var/lib/")]
    assert len(data) == 1 and len(data[0]) == 64, "postgres keeps its data in an anonymous volume"
    destroy = showcase("-e", "clockwork_state=absent")
    assert destroy.rc == 0, destroy.output
    assert inspect("volume", data[0]) is not None, "destroy removed the database's data without purge"
    assert docker("ps", "-aq", "--filter", "label=io.clockwork.stack=showcase") == ""
    assert docker("network", "ls", "-q", "--filter", "label=io.clockwork.stack=showcase") == ""
    assert inspect("network", "backend-network") is None
    assert inspect("volume", "app-shared-data") is not None, "destroy removed a named volume"
    assert inspect("container", "cw-foreign")["State"]["Running"], "destroy touched a foreign container"
    again = showcase("-e", "clockwork_state=absent")
    assert again.rc == 0 and recap_changed(again) == 0, again.details
    purge = showcase("-e", "clockwork_state=absent", "-e", "clockwork_purge=true")
    assert purge.rc == 0 and inspect("volume", "app-shared-data") is None, purge.output
    assert inspect("volume", data[0]) is None, "the purge removed the data the destroy kept"


def stack_task(stack, resources, connections, **extra):
    args = dict(name=stack, resources=resources, connections=connections)
    args.update(extra)
    return {"name": "stack", "clockwork.connections.stack": args, "register": "result"}


@pytest.mark.parametrize("connections, message", [
    ([{"type": "network", "from": "a", "to": "b", "network_name": "n"},
      {"type": "dependency", "from": "b", "to": "a"}], "the connections form a cycle: {a} -> {b} -> {a}"),
    ([{"type": "dependency", "from": "a", "to": "ghost"}],
     "connection dependency {a} -> {ghost}: to: unknown resource {ghost}"),
    ([{"type": "dependency", "from": "a", "to": "b", "network_name": "x"}],
     "connection dependency {a} -> {b}: network_name: not a field of this type"),
    ([{"type": "database", "from": "a", "to": "b", "engine": "oracle"}],
     "connection database {a} -> {b}: value of engine must be one of"),
])
def test_invalid_stack_fails_before_anything_is_touched(stack, connections, message):
    resources = [{"name": stack + "-" + n, "image": NGINX_IMAGE} for n in ("a", "b")]
    for connection in connections:
        connection["from"], connection["to"] = stack + "-" + connection["from"], stack + "-" + connection["to"]
    message = message.format(**dict((n, stack + "-" + n) for n in ("a", "b", "ghost")))
    before = engine_state()
    run = playbook([stack_task(stack, resources, connections)])
    assert run.rc != 0, run.output
    assert message in run.result("stack")["msg"], run.result("stack")["msg"]
    assert "Traceback" not in run.output, run.output
    assert engine_state() == before


def test_every_bad_declaration_is_reported_at_once_before_the_first_change(stack, tmp_path):
    """Plan problems (no engine needed) in one message, on both paths; then pre-flight
    problems (the engine's view) in one message; the engine holds exactly what it held."""
    api, db, cache = stack + "-api", stack + "-db", stack + "-cache"
    resources = [{"name": api, "image": NGINX_IMAGE, "ports": ["127.0.0.1:18080:80"]},
                 {"name": db, "image": NGINX_IMAGE, "ports": ["127.0.0.1:18080:8000"]},
                 {"name": cache, "image": NGINX_IMAGE},
                 {"name": "bad name!", "image": NGINX_IMAGE}]
    connections = [
        {"type": "database", "from": api, "to": db, "connection_string_template": "postgresql://{user}@{hots}/x"},
        {"type": "database", "from": cache, "to": db, "schema_file": "missing.sql"},
        {"type": "file", "from": api, "to": cache, "mount_path": "relative/path", "volume_name": stack + "-v"},
        {"type": "service_mesh", "from": cache, "to": api, "load_balancing": "least_conn"},
    ]
    before = engine_state()
    for where in ("never", "auto"):
        run = playbook([stack_task(stack, resources, connections)], workdir=str(tmp_path),
                       env={"CLOCKWORK_STACK_IN_PROCESS": where})
        msg = run.result("stack")["msg"]
        assert run.rc != 0 and "Traceback" not in run.output, run.output
        assert msg.startswith("invalid stack %s: 6 problems found, nothing was changed" % stack), msg
        for part in ("resource %s: ports: 127.0.0.1:18080:8000/tcp publishes host port 18080/tcp, which resource %s "
                     "publishes too" % (db, api),
                     "resource bad name!: name: 'bad name!' is not a valid Docker name",
                     "connection database %s -> %s: connection_string_template: has an unknown placeholder {hots}"
                     % (api, db),
                     "connection database %s -> %s: schema_file: %s does not exist" % (cache, db,
                                                                                       tmp_path / "missing.sql"),
                     "connection file %s -> %s: mount_path: relative/path must be an absolute path" % (api, cache),
                     "connection service_mesh %s -> %s: load_balancing: least_conn cannot be honoured" % (cache, api)):
            assert part in msg, msg
        assert engine_state() == before
    bad_name = playbook([stack_task("Bad Stack!", [], [])])
    assert bad_name.rc != 0 and "stack: name: stack name 'Bad Stack!' must be lower-case" in \
        bad_name.result("stack")["msg"], bad_name.details

    # Pre-flight: what only the engine knows, every problem at once, before the first change.
    docker("run", "-d", "--name", stack + "-foreign", "-p", "127.0.0.1:18081:80", NGINX_IMAGE)
    docker("network", "create", "--internal", stack + "-theirs")
    try:
        before = engine_state()
        resources = [{"name": stack + "-foreign", "image": NGINX_IMAGE},
                     {"name": api, "image": "clockwork-test/nowhere:1", "ports": ["127.0.0.1:18081:80"]},
                     {"name": cache, "image": NGINX_IMAGE,
                      "mounts": [{"type": "bind", "source": str(tmp_path / "absent"), "target": "/x"}]}]
        connections = [{"type": "network", "from": cache, "to": stack + "-foreign", "network_name": stack + "-theirs"}]
        for check in (True, False):
            run = playbook([stack_task(stack, resources, connections)], check=check)
            msg = run.result("stack")["msg"]
            assert run.rc != 0 and "Traceback" not in run.output, run.output
            assert msg.startswith("stack %s cannot be deployed: 5 problems found, nothing was changed" % stack), msg
            for part in ("resource %s-foreign: name: container %s-foreign exists and is not owned by stack %s"
                         % (stack, stack, stack),
                         "resource %s: image: clockwork-test/nowhere:1 is not present on the Docker host and cannot "
                         "be pulled" % api,
                         "resource %s: ports: host port 18081/tcp (127.0.0.1:18081:80/tcp) is published by container "
                         "%s-foreign" % (api, stack),
                         "resource %s: mounts: bind source %s does not exist on the Docker host"
                         % (cache, tmp_path / "absent"),
                         "connection network %s -> %s-foreign: network %s-theirs exists with other settings (internal) "
                         "and is not owned by stack %s" % (cache, stack, stack, stack)):
                assert part in msg, msg
            assert engine_state() == before
    finally:
        docker("rm", "-fv", stack + "-foreign")
        docker("network", "rm", stack + "-theirs")


def test_stack_drift_is_recreated_with_its_reason_and_conflicts_name_both(stack):
    web = stack + "-web"
    resources = [{"name": web, "image": NGINX_IMAGE, "env": {"MODE": "a"}}]
    _run = playbook([stack_task(stack, resources, [])])
    assert _run.rc == 0, _run.output
    resources[0]["env"]["MODE"] = "b"
    run = playbook([stack_task(stack, resources, [])], diff=True)
    assert run.rc == 0, run.output
    entry = [e for e in run.result("stack")["entries"] if e["kind"] == "container"][0]
    assert entry["actions"] == ["replace start-first", "start"] and entry["reasons"] == ["env MODE"], run.details
    assert "container %s" % web in run.output, run.output  # the diff's header

    cache = stack + "-cache"
    env = cache.upper().replace("-", "_") + "_HOST"
    resources = [{"name": web, "image": NGINX_IMAGE, "env": {env: "elsewhere"}},
                 {"name": cache, "image": NGINX_IMAGE}]
    conflict = playbook([stack_task(stack, resources, [
        {"type": "network", "from": web, "to": cache, "network_name": stack + "-n"}])])
    assert conflict.rc != 0, conflict.output
    assert "env %s is set differently by the container's own env and by connection network %s -> %s" % (
        env, web, cache) in conflict.result("stack")["msg"], conflict.details
    assert "nothing was changed" in conflict.result("stack")["msg"], conflict.details


def test_stack_tls_and_renewal_restart_the_server(stack, tmp_path):
    from test_file_service_mesh import API_COMMAND, HEALTH_CONF, TLS_CONF
    (tmp_path / "health.conf").write_text(HEALTH_CONF)
    (tmp_path / "tls.conf").write_text(TLS_CONF)
    api, frontend = stack + "-api", stack + "-frontend"
    resources = [
        {"name": api, "image": NGINX_IMAGE, "ports": ["8443"], "command": API_COMMAND, "mounts": [
            {"type": "bind", "source": str(tmp_path / "health.conf"), "target": "/etc/nginx/conf.d/health.conf",
             "read_only": True},
            {"type": "bind", "source": str(tmp_path / "tls.conf"), "target": "/srv/tls.conf", "read_only": True}]},
        {"name": frontend, "image": NGINX_IMAGE}]
    mesh = {"type": "service_mesh", "from": frontend, "to": api, "tls_enabled": True,
            "tls_dir": str(tmp_path / "tls"), "health_check_timeout": 10}

    def run(**extra):
        connection = dict(mesh, **extra)
        return playbook([stack_task(stack, resources, [connection]),
                         stack_task(stack, resources, [connection], state="verified")])

    first = run()
    assert first.rc == 0, first.output
    assert env_of(frontend)[api.upper().replace("-", "_") + "_URL"] == "https://%s:8443" % api
    assert "answered 200" in first.result("stack")["checks"][0]["msg"], first.details
    started = inspect("container", api)["State"]["StartedAt"]
    again = run()
    assert again.rc == 0 and not again.results[0]["changed"], again.details

    # New names for the certificate: made again, and the running server restarted (same mounts).
    renamed = run(service_name=stack + "-secure")
    assert renamed.rc == 0, renamed.output
    entries = dict((e["kind"] + " " + e["name"], e) for e in renamed.results[0]["entries"])
    mesh_entry = entries["connection service_mesh %s -> %s" % (frontend, api)]
    assert any(a.startswith("generate certificate") for a in mesh_entry["actions"]), renamed.details
    assert "restart for its new certificate" in entries["container " + api]["actions"], renamed.details
    assert inspect("container", api)["State"]["StartedAt"] != started
    secure_url = "https://%s-secure:8443/health" % stack
    assert "answered 200" in renamed.result("stack")["checks"][0]["msg"] and secure_url in \
        renamed.result("stack")["checks"][0]["msg"], renamed.details


@pytest.mark.parametrize("where", ["never", "auto"])
def test_module_path_and_in_process_path_behave_alike(stack, tmp_path, where):
    """`never` runs the stack module as on a remote target; `auto` converges in the controller."""
    from helpers import POSTGRES_IMAGE
    password = "s3cret-%s-path" % where
    (tmp_path / "schema.sql").write_text("CREATE TABLE things (id int);\n")
    pg, app = stack + "-pg", stack + "-app"
    resources = [{"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": password},
                  "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 60}},
                 {"name": app, "image": NGINX_IMAGE}]
    connections = [{"type": "database", "from": app, "to": pg, "password": password, "schema_file": "schema.sql"}]
    env = {"CLOCKWORK_STACK_IN_PROCESS": where}
    first = playbook([stack_task(stack, resources, connections)], workdir=str(tmp_path), env=env, verbose=True, diff=True)
    assert first.rc == 0, first.output
    assert password not in first.output, first.output
    assert env_of(app)["DATABASE_URL"] == "postgresql://postgres:%s@%s:5432/postgres" % (password, pg)
    again = playbook([stack_task(stack, resources, connections)], workdir=str(tmp_path), env=env)
    assert again.rc == 0 and not again.changed, again.details
    broken = playbook([stack_task(stack, resources, [dict(connections[0], to=stack + "-ghost")])], env=env)
    assert broken.rc != 0 and "to: unknown resource %s-ghost" % stack in broken.result("stack")["msg"], broken.details


def test_check_mode_on_an_empty_engine_lists_each_action_once(stack, tmp_path):
    """A showcase-shaped stack of the test's own names: --check creates nothing and names every
    action once (a shared volume, a file, TLS material: each where it happens)."""
    from helpers import POSTGRES_IMAGE, REDIS_IMAGE
    (tmp_path / "schema.sql").write_text("CREATE TABLE users (id int);\n")
    n = dict((k, "%s-%s" % (stack, k)) for k in ("pg", "cache", "conf", "storage", "api", "web"))
    resources = [{"name": n["pg"], "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": "pw"}},
                 {"name": n["cache"], "image": REDIS_IMAGE},
                 {"name": n["conf"], "type": "file", "path": "config.json", "content": "{}"},
                 {"name": n["storage"], "image": NGINX_IMAGE},
                 {"name": n["api"], "image": NGINX_IMAGE, "ports": ["8000"]},
                 {"name": n["web"], "image": NGINX_IMAGE}]
    connections = [
        {"type": "database", "from": n["api"], "to": n["pg"], "password": "pw", "schema_file": "schema.sql"},
        {"type": "network", "from": n["api"], "to": n["cache"], "network_name": stack + "-backend"},
        {"type": "file", "from": n["api"], "to": n["conf"], "mount_path": "/etc/app/config.json"},
        {"type": "file", "from": n["api"], "to": n["storage"], "mount_path": "/data/shared",
         "volume_name": stack + "-shared"},
        {"type": "service_mesh", "from": n["web"], "to": n["api"], "tls_enabled": True,
         "tls_dir": str(tmp_path / "tls")},
        {"type": "dependency", "from": n["web"], "to": n["cache"]}]
    before = engine_state()
    run = playbook([stack_task(stack, resources, connections)], check=True, diff=True, workdir=str(tmp_path))
    assert run.rc == 0, run.output
    assert engine_state() == before
    assert not (tmp_path / "config.json").exists() and not (tmp_path / "tls").exists()
    result = run.result("stack")
    listed = [(e["kind"], e["name"], a) for e in result["entries"] for a in e["actions"]]
    assert len(listed) == len(set(listed)), "an action is listed twice: %s" % listed
    actions = [a for _kind, _name, a in listed if _kind != "container"]
    assert len(actions) == len(set(actions)), "an action is listed twice: %s" % actions
    assert [e["name"] for e in result["entries"] if e["kind"] == "container"] == [
        n[k] for k in ("pg", "cache", "storage", "api", "web")], run.details
    for action in ("create network %s_default" % stack, "create network %s-backend" % stack,
                   "create volume %s-shared" % stack, "write %s" % (tmp_path / "config.json"),
                   "generate CA for stack %s" % stack, "apply schema schema.sql"):
        assert action in actions, "\n".join(actions)
    assert result["plan"]["order"] == [n[k] for k in ("pg", "cache", "conf", "storage", "api", "web")], run.details
    assert result["plan"]["volumes"] == [stack + "-shared"], run.details
    assert result["plan"]["containers"][n["storage"]]["mounts"] == ["%s-shared:/data/shared" % stack], run.details
    assert "pw" not in json.dumps(result["plan"]), run.details


def test_destroy_stops_each_container_with_its_grace_period(stack, tmp_path):
    app = stack + "-app"
    resources = [{"name": app, "image": NGINX_IMAGE, "command": STOPPED_GRACEFULLY, "stop_grace_period": "20s",
                  "mounts": [{"type": "bind", "source": str(tmp_path), "target": "/data"}]}]
    _run = playbook([stack_task(stack, resources, [])])
    assert _run.rc == 0, _run.output
    state = engine_state()
    dry = playbook([stack_task(stack, resources, [], state="absent")], check=True)
    assert [e["actions"] for e in dry.result("stack")["entries"] if e["kind"] == "container"] == [["stop", "remove"]], \
        dry.details
    assert engine_state() == state and not (tmp_path / "marker").exists()
    destroyed = playbook([stack_task(stack, resources, [], state="absent")])
    assert destroyed.rc == 0, destroyed.output
    assert inspect("container", app) is None
    assert (tmp_path / "marker").read_text() == "stopped\n", "removed without its stop signal"
    again = playbook([stack_task(stack, resources, [], state="absent")])
    assert again.result("stack")["changed"] is False, again.details


def test_destroy_keeps_anonymous_data_unless_purged(stack):
    from helpers import POSTGRES_IMAGE
    pg = stack + "-pg"
    resources = [{"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": "pw"}}]
    _run = playbook([stack_task(stack, resources, [])])
    assert _run.rc == 0, _run.output
    data = [m["Name"] for m in inspect("container", pg)["Mounts"] if len(m.get("Name") or "") == 64]
    assert len(data) == 1
    state = engine_state()
    dry = playbook([stack_task(stack, resources, [], state="absent", purge=True)], check=True)
    assert dry.rc == 0 and engine_state() == state and inspect("volume", data[0]) is not None, dry.output
    assert any(e["actions"] == ["remove anonymous volume"] for e in dry.result("stack")["entries"]), dry.details
    purged = playbook([stack_task(stack, resources, [], state="absent", purge=True)])
    assert purged.rc == 0, purged.output
    assert inspect("container", pg) is None and inspect("volume", data[0]) is None
