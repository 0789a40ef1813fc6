"""A password file (`password_delivery: file`) is never written through a symbolic link on the
real module path: a link placed where its directory is expected is refused, naming it, in --check
and in a run, and nothing is written through it; once the link is gone the stack converges with
the file 0400 in a real directory: check -> apply -> idempotent -> check again."""
import os
import shutil
import stat

import pytest
import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, env_of, inspect, run_playbook

PASSWORD = "l1nk-s3cret-pw"  # pragma: allowlist secret


def stack_play(stack, workdir):
    pg, api = stack + "-pg", stack + "-api"
    resources = [
        {"name": pg, "image": POSTGRES_IMAGE, "env": {"POSTGRES_PASSWORD": PASSWORD},
         "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "retries": 30}},
        {"name": api, "image": NGINX_IMAGE},
    ]
    connections = [{"type": "database", "from": api, "to": pg, "password": PASSWORD, "password_delivery": "file"}]
    path = os.path.join(workdir, "play.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "stack", "clockwork.connections.stack": {
                "name": stack, "resources": resources, "connections": connections}}]}], handle)
    return path


@pytest.mark.parametrize("where", ["auto", "never"], ids=["in process", "module"])
def test_a_link_where_the_password_files_directory_is_expected_is_refused(stack, tmp_path, where):
    home = os.path.join(os.path.expanduser("~"), ".clockwork", stack)
    secrets = os.path.join(home, "secrets")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.makedirs(home)
    os.symlink(str(elsewhere), secrets)
    path = stack_play(stack, str(tmp_path))
    env = {"CLOCKWORK_STACK_IN_PROCESS": where}
    try:
        for check in (True, False):
            refused = run_playbook(path, check=check, env=env)
            assert refused.rc != 0, refused.output
            assert "%s is a symbolic link where a directory is expected" % secrets in refused.result("stack")["msg"]
            assert PASSWORD not in refused.output
            assert os.listdir(str(elsewhere)) == [] and os.path.islink(secrets), "written through the link"
            assert inspect("container", stack + "-api") is None or not any(
                m.get("Source", "").startswith(str(elsewhere)) for m in inspect("container", stack + "-api")["Mounts"])

        os.unlink(secrets)
        dry = run_playbook(path, check=True, env=env)
        assert dry.rc == 0 and dry.changed, dry.output
        assert not os.path.lexists(secrets), "--check made the directory"
        cold = run_playbook(path, env=env)
        assert cold.rc == 0 and cold.changed, cold.output
        written = os.path.join(secrets, stack + "-api", "DATABASE_URL")
        info = os.lstat(written)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o400
        assert stat.S_ISDIR(os.lstat(secrets).st_mode) and stat.S_IMODE(os.lstat(secrets).st_mode) == 0o700
        assert env_of(stack + "-api")["DATABASE_URL_FILE"] == "/run/secrets/DATABASE_URL"
        again = run_playbook(path, env=env)
        assert again.rc == 0 and not again.changed, again.output
        recheck = run_playbook(path, check=True, env=env)
        assert recheck.rc == 0 and not recheck.changed, recheck.output
        assert os.listdir(str(elsewhere)) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)
