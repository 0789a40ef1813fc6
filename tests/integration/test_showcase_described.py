"""playbooks/showcase-described.yml: the showcase whose database, network and file connections
carry only the seed's descriptions, deployed and asserted offline and with a fake endpoint.

It deploys the showcase's fixed container names: run it under
`flock /tmp/clockwork-showcase.lock`, like every test that deploys the showcase."""
import os
import re

import pytest
import yaml

from fake_llm import FakeLLM
from helpers import ROOT, as_text, docker, engine_state, env_of, inspect, remove_stack, run_playbook

DESCRIBED = os.path.join(ROOT, "playbooks/showcase-described.yml")
LOCAL_IMAGES = ["-e", "@" + os.path.join(ROOT, "tests/images/local-images.yml")]
CONTAINERS = ["postgres", "redis", "storage", "api", "frontend"]
OBJECTS = CONTAINERS + ["showcase_default", "backend-network", "user-uploads"]
VERIFY = "Verify every connection from inside the containers"
SEED_ANSWERS = {   # what the seed expects a model to answer
    "connection_string_template": [{"connection_string_template":
                                    "postgresql://{user}:{password}@{host}:{port}/{database}",
                                    "username": "postgres", "database_name": "appdb"}],
    "network_name": [{"network_name": "backend-network", "driver": "bridge"}],
    "mount_path": [{"mount_path": "/data/uploads", "volume_name": "user-uploads"}],
}


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


@pytest.fixture
def llm():
    server = FakeLLM()
    yield server
    server.close()


def described(lock, *args, **kwargs):
    env = dict(kwargs.pop("env", None) or {}, CLOCKWORK_LOCK_FILE=str(lock))
    return run_playbook(DESCRIBED, extra_args=LOCAL_IMAGES + list(args), env=env, **kwargs)


def recap_changed(run):
    return int(re.search(r"changed=(\d+)", run.output.split("PLAY RECAP")[-1]).group(1))


def showcase_state():
    """The showcase's objects as `docker ps -a`, `network ls`, `volume ls` list them."""
    return dict((kind, [line for line in lines if line.split()[-1] in OBJECTS or
                        any(" %s " % name in " %s " % line for name in OBJECTS)])
                for kind, lines in engine_state().items())


def completion_of(run):
    return run.result("Converge stack showcase")["completion"]


def assert_seed_usage():
    """The seed's "Usage" section, with the completed mount path and volume."""
    assert env_of("api")["DATABASE_URL"] == "postgresql://postgres:secret123@postgres:5432/appdb"
    assert env_of("api")["REDIS_HOST"] == "redis"
    assert env_of("frontend")["API_URL"] == "http://api:8000"
    docker("exec", "api", "nc", "-zv", "postgres", "5432")
    docker("exec", "api", "ping", "-c", "1", "redis")
    assert docker("exec", "api", "cat", "/etc/app/config.json") == '{"log_level": "info"}'
    for name in ("api", "storage"):
        mounts = dict((m["Destination"], m.get("Name")) for m in inspect("container", name)["Mounts"])
        assert mounts["/data/uploads"] == "user-uploads", mounts
    docker("exec", "api", "sh", "-c", 'echo "upload" > /data/uploads/test.txt')
    assert docker("exec", "storage", "cat", "/data/uploads/test.txt") == "upload"
    docker("exec", "api", "rm", "/data/uploads/test.txt")
    network = inspect("network", "backend-network")
    assert network["Labels"]["io.clockwork.stack"] == "showcase"
    assert sorted(c["Name"] for c in network["Containers"].values()) == ["api", "redis"]


def test_described_showcase_offline_then_with_an_endpoint(clean_showcase, llm, tmp_path):
    lock = tmp_path / "clockwork.lock.yml"
    before = showcase_state()
    check = described(lock, check=True)
    assert check.rc == 0, check.output
    assert showcase_state() == before and not lock.exists()

    deploy = described(lock, verbose=True)
    assert deploy.rc == 0, deploy.output
    assert "secret123" not in deploy.output and "Traceback" not in deploy.output, deploy.output
    completion = completion_of(deploy)
    assert completion == {
        "database api -> postgres": {
            "fields": {"connection_string_template": "postgresql://{user}:{password}@{host}:{port}/{database}",
                       "username": "postgres", "database_name": "appdb"},
            "source": "local", "from_lock": False,
            "password": "from to env POSTGRES_PASSWORD, resolved at run time (the lock file holds the reference "
                        "only)"},
        "network api -> redis": {"fields": {"network_name": "backend-network", "driver": "bridge"},
                                 "source": "local", "from_lock": False},
        "file api -> storage": {"fields": {"mount_path": "/data/uploads", "volume_name": "user-uploads"},
                                "source": "local", "from_lock": False},
    }, deploy.details
    converged = deploy.result("Converge stack showcase")   # deploy and verify in one call
    assert converged["verified"] and len(converged["checks"]) == 6, as_text(converged)
    assert all(c["ok"] for c in converged["checks"]), as_text(converged["checks"])
    assert_seed_usage()
    text = lock.read_text()
    assert "secret123" not in text and "password_from: to env POSTGRES_PASSWORD" in text

    ids = dict((name, inspect("container", name)["Id"]) for name in CONTAINERS)
    rerun = described(lock)
    assert rerun.rc == 0 and recap_changed(rerun) == 0, rerun.output
    assert lock.read_text() == text
    state = showcase_state()
    recheck = described(lock, check=True)
    assert recheck.rc == 0 and recap_changed(recheck) == 0 and showcase_state() == state, recheck.details
    asserted = described(lock, tags="assert")
    assert asserted.rc == 0 and recap_changed(asserted) == 0, asserted.output
    assert len(asserted.result(VERIFY)["checks"]) == 6, asserted.details

    # With an endpoint and no lock entry yet: three questions, the seed's answers, the same stack.
    fresh = tmp_path / "with-endpoint.lock.yml"
    llm.answer_by_field(SEED_ANSWERS)
    endpoint = described(fresh, env=llm.env())
    assert endpoint.rc == 0, endpoint.output
    assert [len(llm.asked_for(f)) for f in sorted(SEED_ANSWERS)] == [1, 1, 1]
    for request in llm.requests:
        assert "secret123" not in str(request["body"]), "a secret went to the model"
    assert {c["source"] for c in completion_of(endpoint).values()} == {"llm"}, endpoint.details
    assert recap_changed(endpoint) == 0, "the model's completion changed the stack:\n" + endpoint.details
    assert dict((name, inspect("container", name)["Id"]) for name in CONTAINERS) == ids
    assert "secret123" not in fresh.read_text()
    llm.answer((500, "must not be asked"))
    again = described(fresh, env=llm.env())
    assert again.rc == 0 and recap_changed(again) == 0 and llm.requests == [], again.details
    asserted = described(fresh, tags="assert", env=llm.env())
    assert asserted.rc == 0 and llm.requests == [], asserted.output
    assert_seed_usage()
    entries = yaml.safe_load(fresh.read_text())["completions"]
    assert sorted(entries) == ["database api -> postgres", "file api -> storage", "network api -> redis"]
