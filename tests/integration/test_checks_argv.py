"""Checks run argv lists inside real containers: names, paths and URLs full of shell syntax
are harmless, a container without nc or timeout still gets a bounded check, and verify
refuses checks no connection type defines, before running any."""
import hashlib
import os

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, as_text, docker, playbook


def hostile(stack):
    """A file name that runs a command wherever a shell gets to read it (no `/`: it is one
    name; the command creates `pwned-<stack>` in the shell's working directory)."""
    return "x$(touch pwned-%s) 'q\" `touch pwned-%s`; y" % (stack, stack)


def pwned(stack, *containers):
    """Where the hostile values did run a command: in a container or on this host."""
    found = [c for c in containers if docker("exec", c, "find", "/", "-xdev", "-name", "pwned-" + stack) != ""]
    return found + [p for p in ("/tmp/pwned-" + stack, os.path.join(os.getcwd(), "pwned-" + stack))
                    if os.path.exists(p)]


def run_container(stack, name, image=NGINX_IMAGE, *args):
    docker("run", "-d", "--name", name, "--label", "io.clockwork.stack=" + stack, "--network", stack + "-net",
           "--network-alias", name, *(list(args) + [image]))


def verify(checks, **play):
    return playbook([{"name": "verify", "clockwork.connections.verify": {"checks": checks}}], **play)


def test_hostile_paths_and_urls_are_only_arguments(stack, tmp_path):
    api, storage = stack + "-api", stack + "-storage"
    weird = hostile(stack)
    host_dir = tmp_path / weird
    host_dir.mkdir()
    content = '{"name": "%s"}' % stack
    (host_dir / "conf $(id).json").write_text(content)
    mount_dir = "/etc/app dir/" + weird
    shared = "/data/" + weird
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net")
    docker("volume", "create", "--label", "io.clockwork.stack=" + stack, stack + "-shared")
    run_container(stack, api, NGINX_IMAGE, "-v", "%s:%s:ro" % (host_dir, mount_dir),
                  "-v", "%s-shared:%s" % (stack, shared))
    run_container(stack, storage, NGINX_IMAGE, "-v", "%s-shared:%s" % (stack, shared))

    checks = [
        {"kind": "file", "connection": "file", "container": api, "path": mount_dir + "/conf $(id).json",
         "read_only": True, "sha256": hashlib.sha256(content.encode()).hexdigest()},
        {"kind": "file", "connection": "dir", "container": api, "path": mount_dir, "directory": True},
        {"kind": "shared_volume", "connection": "shared", "container": api, "peer": storage, "path": shared},
        {"kind": "dns_tcp", "connection": "tcp", "container": storage, "host": api, "port": 80},
        {"kind": "http", "connection": "http", "container": storage,
         "url": "http://%s:80/?q=$(touch${IFS}/tmp/pwned-%s)&r=[1-2]" % (api, stack), "retry_for": 5},
    ]
    run = verify(checks)
    assert run.rc == 0, run.output
    reports = run.result("verify")["checks"]
    assert [r["ok"] for r in reports] == [True] * 5, as_text(reports)
    assert reports[0]["msg"].endswith("with the expected content, read-only"), run.details
    assert "answered 200" in reports[4]["msg"], run.details
    assert pwned(stack, api, storage) == []

    # The same path that does not exist is a failed check, not a command.
    missing = verify([dict(checks[0], path=mount_dir + "/none; touch /tmp/pwned-" + stack)])
    assert missing.rc != 0 and "is not readable in %s" % api in missing.result("verify")["msg"], missing.details
    assert pwned(stack, api, storage) == []


def test_a_container_without_nc_or_timeout_still_gets_a_bounded_check(stack):
    api, server = stack + "-bare", stack + "-server"
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net")
    run_container(stack, server)
    # nc and timeout masked by an empty, non-executable file: as if the image had neither.
    run_container(stack, api, NGINX_IMAGE, "-v", "/dev/null:/usr/bin/nc:ro", "-v", "/dev/null:/usr/bin/timeout:ro")
    assert docker("exec", api, "sh", "-c", "nc -h >/dev/null 2>&1; echo $?") in ("126", "127")
    run = verify([{"kind": "dns_tcp", "connection": "tcp", "container": api, "host": server, "port": 80},
                  {"kind": "dns_tcp", "connection": "closed", "container": api, "host": server, "port": 81}])
    assert run.rc != 0, run.output
    reports = run.result("verify")["checks"]
    assert reports[0]["ok"] is True, as_text(reports)   # bash's /dev/tcp, since nc is not there
    assert reports[1]["ok"] is False and "%s:81 does not accept TCP" % server in reports[1]["msg"], run.details


def test_verify_refuses_checks_no_connection_type_defines(stack):
    api = stack + "-api"
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net")
    run_container(stack, api)
    run = verify([
        {"kind": "dns_tcp", "connection": "fine", "container": api, "host": api, "port": 80},
        {"kind": "shell", "connection": "evil", "container": api, "command": "touch /tmp/pwned-" + stack},
        {"kind": "dns_tcp", "connection": "injected", "container": api, "host": "x$(touch /tmp/pwned-%s)" % stack},
        {"kind": "file", "connection": "extra", "container": api, "path": "/etc/hostname", "script": "id"},
        {"kind": "http", "connection": "scheme", "container": api, "url": "file:///etc/shadow"},
        {"kind": "file", "connection": "option", "container": api, "path": "--help"},
    ])
    assert run.rc != 0, run.output
    msg = run.result("verify")["msg"]
    assert msg.startswith("invalid checks, none was run: 5 problems:"), msg
    assert "checks[1] (evil): unknown check kind 'shell'" in msg, run.details
    assert "checks[2] (injected): dns_tcp check: argument 'host'" in msg and "is not a host name" in msg, run.details
    assert "checks[3] (extra): a file check has no field script" in msg, run.details
    assert "checks[4] (scheme)" in msg and "is not an http:// or https:// URL" in msg, run.details
    assert "checks[5] (option)" in msg and "starts with '-'" in msg, run.details
    assert "checks" not in run.result("verify") or not run.result("verify").get("checks"), run.details
    assert "Traceback" not in run.output, run.output
    assert pwned(stack, api) == []


def test_a_postgres_check_without_psql_says_so(stack):
    db, api = stack + "-db", stack + "-api"
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net")
    run_container(stack, db, POSTGRES_IMAGE, "-e", "POSTGRES_PASSWORD=pw", "-v", "/dev/null:/usr/bin/psql:ro",
                  "-v", "/dev/null:/usr/lib/postgresql/15/bin/psql:ro")
    run_container(stack, api, NGINX_IMAGE, "-e", "DATABASE_URL=postgresql://postgres:pw@%s:5432/postgres" % db)
    run = verify([{"kind": "database", "connection": "db", "engine": "postgresql", "container": db, "env_from": api,
                   "env_var": "DATABASE_URL"}])
    assert run.rc != 0, run.output
    msg = run.result("verify")["msg"]
    assert "psql is not in container %s" % db in msg and "pw@" not in msg, run.details
