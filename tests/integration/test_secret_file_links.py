"""A password file (`password_delivery: file`) is never written through a symbolic link on the
real module path: a link placed where its directory is expected is refused by the pre-flight,
naming it, in --check and in a run, before the first change (no container, no network of the
stack exists), and nothing is written through it; once the link is gone the stack converges with
the file 0400 in a real directory: check -> apply -> idempotent -> check again. Destroy refuses a
link where the password files' directory is expected, before removing anything."""
import os
import shutil
import stat

import pytest
import yaml

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, docker, env_of, inspect, run_playbook

PASSWORD = "l1nk-s3cret-pw"  # pragma: allowlist secret


def stack_play(stack, workdir, state="present"):
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
                "name": stack, "resources": resources, "connections": connections, "state": state}}]}], handle)
    return path


def objects_of(stack):
    """The stack's containers and networks as the engine lists them (by label)."""
    label = "label=io.clockwork.stack=%s" % stack
    return docker("ps", "-aq", "--filter", label).split() + docker("network", "ls", "-q", "--filter", label).split()


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
            msg = refused.result("stack")["msg"]
            assert "nothing was changed" in msg and "database %s -> %s: password_delivery: %s is a symbolic link " \
                "where a directory is expected" % (stack + "-api", stack + "-pg", secrets) in msg, msg
            assert PASSWORD not in refused.output, refused.output
            assert os.listdir(str(elsewhere)) == [] and os.path.islink(secrets), "written through the link"
            assert objects_of(stack) == [], "the pre-flight let a change through before refusing"

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

        # Destroy never removes through a link: the password files moved aside, a link in their place.
        aside = tmp_path / "aside"
        os.rename(secrets, str(aside))
        os.symlink(str(aside), secrets)
        destroy = stack_play(stack, str(tmp_path), state="absent")
        running = objects_of(stack)
        for check in (True, False):
            kept = run_playbook(destroy, check=check, env=env)
            assert kept.rc != 0 and "%s is a symbolic link where the stack's password-file directory is expected: " \
                "destroy never removes through a link" % secrets in kept.result("stack")["msg"], kept.output
            assert objects_of(stack) == running and inspect("container", stack + "-pg")["State"]["Running"]
            assert os.listdir(str(aside / (stack + "-api"))) == ["DATABASE_URL"] and os.path.islink(secrets)
        os.unlink(secrets)
        os.rename(str(aside), secrets)
        gone = run_playbook(destroy, env=env)
        assert gone.rc == 0 and gone.changed, gone.output
        assert objects_of(stack) == [] and not os.path.lexists(secrets)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_link_where_the_password_file_is_expected_is_refused_before_any_change(stack, tmp_path):
    """The file itself a link (to a file of someone else's): the pre-flight names it, nothing of the
    stack is made, and the link's target keeps its content."""
    secrets = os.path.join(os.path.expanduser("~"), ".clockwork", stack, "secrets")
    target = tmp_path / "theirs"
    target.write_text("theirs")
    link = os.path.join(secrets, stack + "-api", "DATABASE_URL")
    os.makedirs(os.path.dirname(link), 0o700)
    os.symlink(str(target), link)
    path = stack_play(stack, str(tmp_path))
    try:
        for check in (True, False):
            refused = run_playbook(path, check=check)
            assert refused.rc != 0, refused.output
            assert "password_delivery: %s is a symbolic link where a file is expected" % link in \
                refused.result("stack")["msg"], refused.output
            assert PASSWORD not in refused.output, refused.output
            assert objects_of(stack) == [] and target.read_text() == "theirs" and os.path.islink(link)
    finally:
        shutil.rmtree(os.path.dirname(secrets), ignore_errors=True)
