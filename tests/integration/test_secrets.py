"""No secret in any output: the complete output of every kind of run, at -vvv with --diff,
on both paths (in the controller's process and as a module), holds no secret value in any
of its forms."""
import os

import pytest
import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, env_of, run_playbook
from ansible.module_utils.six.moves.urllib.parse import quote, quote_plus

PASSWORD = "p@ss:w/rd s3cret-1"         # needs URL-encoding in DATABASE_URL
TOKEN = "tok-3f9a77c1-old"              # a resource's own secret env, not a connection's password
NEW_TOKEN = "tok-b81c2d90-new"
SESSION = "sess-5be0a4411d"


def forms(value):
    return set([value, quote(value, safe=""), quote_plus(value), quote(value)])


def stack_play(stack, workdir, token, mode, password=PASSWORD, server_password=PASSWORD, schema="schema.sql",
               state="present"):
    pg, api = stack + "-pg", stack + "-api"
    resources = [
        {"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": server_password},
         "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 30}},
        {"name": api, "image": NGINX_IMAGE, "env": {"API_TOKEN": token, "SESSION_SECRET": SESSION, "MODE": mode}},
    ]
    connections = [{"type": "database", "from": api, "to": pg, "password": password, "schema_file": schema}]
    path = os.path.join(workdir, "play.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "stack", "clockwork.connections.stack": {
                "name": stack, "resources": resources, "connections": connections, "state": state,
                "verify": state == "present"}}]}], handle)
    return path


@pytest.mark.parametrize("where", ["auto", "never"])
def test_no_secret_in_any_output(stack, tmp_path, where):
    workdir = str(tmp_path)
    (tmp_path / "schema.sql").write_text("CREATE TABLE users (id int);\n")
    (tmp_path / "bad.sql").write_text("CREATE TABLE ok (id int);\nCREATE TABLEE broken (id int);\n")
    env = {"CLOCKWORK_STACK_IN_PROCESS": where}

    def run(check=False, **declaration):
        path = stack_play(stack, workdir, **declaration)
        return run_playbook(path, check=check, diff=True, extra_args=["-vvv"], env=env)

    outputs = []
    cold = run(token=TOKEN, mode="a")
    assert cold.rc == 0, cold.output
    assert env_of(stack + "-api")["API_TOKEN"] == TOKEN, "the container gets the real value"
    outputs.append(cold.output)
    rerun = run(token=TOKEN, mode="a")
    assert rerun.rc == 0 and not rerun.changed, rerun.output
    outputs.append(rerun.output)
    drift = run(token=TOKEN, mode="b")                       # a recreate: its diff shows the env
    assert drift.rc == 0 and drift.changed, drift.output
    assert "MODE" in drift.output, drift.output
    outputs.append(drift.output)
    dry = run(check=True, token=NEW_TOKEN, mode="c")         # the previous and the next token in a diff
    assert dry.rc == 0, dry.output
    outputs.append(dry.output)
    rotated = run(token=NEW_TOKEN, mode="c")
    assert rotated.rc == 0, rotated.output
    outputs.append(rotated.output)
    bad_sql = run(token=NEW_TOKEN, mode="c", schema="bad.sql")
    assert bad_sql.rc != 0 and "Traceback" not in bad_sql.output, bad_sql.output
    outputs.append(bad_sql.output)
    destroyed = run(token=NEW_TOKEN, mode="c", state="absent")
    assert destroyed.rc == 0, destroyed.output
    outputs.append(destroyed.output)
    wrong = run(token=NEW_TOKEN, mode="c", password="not-" + PASSWORD)   # a fresh server, another password
    assert wrong.rc != 0 and "Traceback" not in wrong.output, wrong.output
    assert "password authentication failed" in wrong.output or "password" in wrong.result("stack")["msg"], wrong.details
    outputs.append(wrong.output)

    everything = "\n".join(outputs)
    assert "********" in everything, "nothing was masked: the test would prove nothing:\n" + everything
    for secret in (PASSWORD, "not-" + PASSWORD, TOKEN, NEW_TOKEN, SESSION):
        for form in forms(secret):
            assert form not in everything, "%r (a form of a secret) is in the output:\n%s" % (form, everything)
