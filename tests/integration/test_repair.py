"""A stack broken by hand, or by a killed run, is named by the checks and repaired by a rerun."""
import os
import subprocess
import time

import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, ROOT, VENV_BIN, docker, inspect, kill_run, playbook


def declaration(stack):
    pg, cache, api = stack + "-pg", stack + "-cache", stack + "-api"
    resources = [
        {"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": "pw"},
         "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 60}},
        {"name": cache, "image": REDIS_IMAGE, "ports": ["6379"]},
        {"name": api, "image": NGINX_IMAGE},
    ]
    connections = [
        {"type": "database", "from": api, "to": pg, "password": "pw"},
        {"type": "network", "from": api, "to": cache, "network_name": stack + "-backend"},
    ]
    return resources, connections


def task(stack, state="present", verify=False):
    resources, connections = declaration(stack)
    return {"name": "stack", "clockwork.connections.stack": {
        "name": stack, "resources": resources, "connections": connections, "state": state, "verify": verify}}


def failed_checks(stack):
    run = playbook([task(stack, state="verified")])
    assert run.rc != 0, run.output
    return run.result("stack")["msg"]


def test_broken_by_hand_is_named_then_repaired(stack):
    pg, cache, api = stack + "-pg", stack + "-cache", stack + "-api"
    first = playbook([task(stack, verify=True)])
    assert first.rc == 0, first.output
    ids = dict((n, inspect("container", n)["Id"]) for n in (pg, cache, api))

    docker("kill", pg)                                            # the database killed
    msg = failed_checks(stack)
    assert "database %s -> %s: login with DATABASE_URL" % (api, pg) in msg, msg
    repaired = playbook([task(stack, verify=True)])
    assert repaired.rc == 0, repaired.output
    assert inspect("container", pg)["State"]["Running"] and inspect("container", pg)["Id"] == ids[pg]

    docker("network", "disconnect", stack + "-backend", api)      # a network detached
    msg = failed_checks(stack)
    assert "network %s -> %s: " % (api, cache) in msg, msg
    repaired = playbook([task(stack, verify=True)])
    assert repaired.rc == 0, repaired.output
    assert stack + "-backend" in inspect("container", api)["NetworkSettings"]["Networks"]

    docker("rm", "-f", cache)                                     # a container removed
    msg = failed_checks(stack)
    assert "network %s -> %s: " % (api, cache) in msg, msg
    repaired = playbook([task(stack, verify=True)])
    assert repaired.rc == 0, repaired.output
    again = playbook([task(stack, verify=True)])
    assert again.rc == 0 and not again.changed, again.output


def test_a_killed_run_is_repaired_by_the_next(stack, tmp_path):
    """SIGKILL the playbook while it deploys; the next run converges and the one after changes nothing."""
    path = str(tmp_path / "play.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task(stack)]}], handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.Popen([os.path.join(VENV_BIN, "ansible-playbook"), path, "-i",
                             os.path.join(ROOT, "playbooks/inventory.ini")], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not docker("ps", "-aq", "--filter", "name=%s-pg" % stack):
        time.sleep(0.1)
    # Mid-deploy: the database exists, the rest may not. Every process of the run, the worker too (it
    # calls setsid(): killing ansible-playbook's group alone would leave it deploying to its end).
    kill_run(proc)
    proc.wait()
    run = playbook([task(stack, verify=True)])
    assert run.rc == 0, run.output
    again = playbook([task(stack, verify=True)])
    assert again.rc == 0 and not again.changed, again.output
    for name in ("pg", "cache", "api"):
        assert len(docker("ps", "-aq", "--filter", "name=^%s-%s$" % (stack, name)).split()) == 1
