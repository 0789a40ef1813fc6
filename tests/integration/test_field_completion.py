"""Field completion through the action plugins, with a fake OpenAI-compatible endpoint
on 127.0.0.1 and without any endpoint, on the real engine."""
import json
import os

import pytest
import yaml

from fake_llm import FakeLLM
from helpers import NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, docker, env_of, inspect, playbook


@pytest.fixture
def llm():
    server = FakeLLM()
    yield server
    server.close()


def on_network(stack, name):
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net", check=False)
    return [{"name": stack + "-net", "aliases": [name]}]


def containers(stack):
    return [
        {"name": "redis", "clockwork.connections.container": {
            "name": stack + "-redis", "image": REDIS_IMAGE, "stack": stack, "ports": ["6379"]}},
        {"name": "storage", "clockwork.connections.container": {
            "name": stack + "-storage", "image": NGINX_IMAGE, "stack": stack}},
    ]


def local_name(kind, name, stack):
    """What the local completer picks: `name`, unless another stack (the showcase, say) owns it."""
    attrs = inspect(kind, name)
    return name if attrs is None or (attrs.get("Labels") or {}).get("io.clockwork.stack") == stack \
        else "%s-%s" % (stack, name)


def network_task(stack, **extra):
    args = {"from": stack + "-api", "to": stack + "-redis", "stack": stack,
            "description": "backend network for API and cache communication"}
    args.update(extra)
    return {"name": "net", "register": "net", "clockwork.connections.network_connection": args}


def test_model_fills_fields_once_then_the_lock_answers(stack, llm, tmp_path):
    llm.answer({"network_name": stack + "-cache-net", "driver": "bridge"})
    tasks = containers(stack)[:1] + [network_task(stack)]
    run = playbook(tasks, workdir=str(tmp_path), env=llm.env(), verbose=True, diff=True)
    assert run.rc == 0, run.output
    assert run.result("net")["completion"] == {
        "fields": {"network_name": stack + "-cache-net", "driver": "bridge"}, "source": "llm", "from_lock": False}, \
        run.details
    attrs = inspect("network", stack + "-cache-net")
    assert attrs["Driver"] == "bridge" and attrs["Labels"]["io.clockwork.stack"] == stack
    assert stack + "-redis" in [c["Name"] for c in attrs["Containers"].values()]
    assert '"fields completed"' in run.output or "fields completed" in run.output, run.output   # --diff shows them

    [request] = llm.requests
    body = request["body"]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-not-a-secret"
    assert body["temperature"] == 0 and body["model"] == "test-model"
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert sorted(schema["properties"]) == ["driver", "network_name"] and schema["additionalProperties"] is False
    question = json.loads(body["messages"][-1]["content"])
    assert question["description"] == "backend network for API and cache communication"
    assert question["to"]["name"] == stack + "-redis" and question["to"]["ports"] == ["6379/tcp"]

    lock_path = tmp_path / "clockwork.lock.yml"
    lock_text = lock_path.read_text()
    entry = yaml.safe_load(lock_text)["completions"]["network %s-api -> %s-redis" % (stack, stack)]
    assert entry["source"] == "llm" and entry["fields"]["network_name"] == stack + "-cache-net"

    llm.answer((500, "must not be asked"))
    again = playbook(tasks, workdir=str(tmp_path), env=llm.env())
    assert again.rc == 0, again.output
    assert llm.requests == [], "the rerun asked the model"
    assert not again.changed, again.details
    assert again.result("net")["completion"]["from_lock"] is True, again.details
    assert lock_path.read_text() == lock_text
    check = playbook(tasks, workdir=str(tmp_path), env=llm.env(), check=True)
    assert check.rc == 0 and not check.changed and llm.requests == [], check.details

    # A changed description completes afresh.
    llm.answer({"network_name": stack + "-other-net", "driver": "bridge"})
    changed = playbook(containers(stack)[:1] + [network_task(stack, description="another network")],
                       workdir=str(tmp_path), env=llm.env())
    assert changed.rc == 0 and len(llm.requests) == 1, changed.output
    assert inspect("network", stack + "-other-net") is not None


def test_user_values_win_and_only_missing_fields_are_asked(stack, llm, tmp_path):
    llm.answer({"driver": "bridge"})
    run = playbook(containers(stack)[:1] + [network_task(stack, network_name=stack + "-mine")],
                   workdir=str(tmp_path), env=llm.env())
    assert run.rc == 0, run.output
    schema = llm.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["driver"]
    assert inspect("network", stack + "-mine") is not None


def test_invalid_answers_are_retried_then_completed_locally(stack, llm, tmp_path):
    llm.answer({"network_name": "bad name!", "driver": "bridge"}, {"network_name": "ok", "driver": 5}, "no json at all")
    backend = local_name("network", "backend-network", stack)
    run = playbook(containers(stack)[:1] + [network_task(stack)], workdir=str(tmp_path), env=llm.env())
    assert run.rc == 0, run.output
    assert len(llm.requests) == 3
    retry = llm.requests[1]["body"]["messages"][-1]["content"]
    assert "not a valid Docker name" in retry
    completion = run.result("net")["completion"]
    assert completion["source"] == "local" and completion["fields"]["network_name"] == backend, run.details
    assert "no acceptable answer in 3 tries" in completion["fallback"] and "not JSON" in completion["fallback"], \
        run.details
    # Said where a user sees it, naming the connection.
    warning = "network %s-api -> %s-redis: the model at %s gave no acceptable answer" % (stack, stack, llm.base_url)
    assert warning in " ".join(run.output.split()), run.output
    assert "Traceback" not in run.output, run.output
    entry = yaml.safe_load((tmp_path / "clockwork.lock.yml").read_text())["completions"][
        "network %s-api -> %s-redis" % (stack, stack)]
    assert entry["source"] == "local"
    assert inspect("network", backend)["Labels"]["io.clockwork.stack"] == stack   # removed with the stack


def test_server_error_then_a_good_answer(stack, llm, tmp_path):
    llm.answer((500, "overloaded"), (429, "slow down"), {"network_name": stack + "-net2", "driver": "bridge"})
    run = playbook(containers(stack)[:1] + [network_task(stack)], workdir=str(tmp_path), env=llm.env())
    assert run.rc == 0, run.output
    assert len(llm.requests) == 3 and inspect("network", stack + "-net2") is not None


def test_unreachable_endpoint_fails_clearly(stack, tmp_path):
    env = {"CLOCKWORK_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    run = playbook(containers(stack)[:1] + [network_task(stack)], workdir=str(tmp_path), env=env)
    assert run.rc != 0, run.output
    msg = run.result("net")["msg"]
    assert "127.0.0.1:9" in msg and "no answer" in msg and "4 attempts" in msg, run.details


def seed_examples(stack):
    """The seed's three "with AI completion" examples."""
    api = stack + "-api"
    return [
        {"name": "postgres", "clockwork.connections.container": {
            "name": stack + "-postgres", "image": POSTGRES_IMAGE, "stack": stack, "ports": ["5432"],
            "networks": on_network(stack, stack + "-postgres"),
            "env": {"POSTGRES_PASSWORD": "secret123", "POSTGRES_DB": "appdb"},
            "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s"}}},
        {"name": "db", "register": "db", "clockwork.connections.database_connection": {
            "from": api, "to": stack + "-postgres", "stack": stack,
            "description": "Connect to PostgreSQL database for user data"}},
        {"name": "net", "register": "net", "clockwork.connections.network_connection": {
            "from": api, "to": stack + "-redis", "stack": stack,
            "description": "backend network for API and cache communication"}},
        {"name": "files", "register": "files", "clockwork.connections.file_connection": {
            "from": api, "to": stack + "-storage", "stack": stack,
            "description": "shared volume for user file uploads"}},
        {"name": "api", "clockwork.connections.container": {
            "name": api, "image": NGINX_IMAGE, "stack": stack, "networks": on_network(stack, api),
            "contributions": ["{{ db.contribution }}", "{{ net.contribution }}", "{{ files.contribution }}"]}},
        {"name": "show", "debug": {"msg": "{{ {'db': db.completion, 'net': net.completion, "
                                          "'files': files.completion} }}"}},
    ]


def test_seed_examples_offline_and_reruns_identical(stack, tmp_path):
    tasks = containers(stack) + seed_examples(stack)
    backend, uploads = local_name("network", "backend-network", stack), local_name("volume", "user-uploads", stack)
    run = playbook(tasks, workdir=str(tmp_path))
    assert run.rc == 0, run.output
    shown = run.result("show")["msg"]
    assert shown["net"]["fields"] == {"network_name": backend, "driver": "bridge"}, run.details
    assert shown["files"]["fields"] == {"mount_path": "/data/uploads", "volume_name": uploads}, run.details
    # The server's own settings beat a guess; its password is used, not invented.
    assert shown["db"]["fields"] == {"connection_string_template": "postgresql://{user}:{password}@{host}:{port}/{database}",
                                     "username": "postgres", "database_name": "appdb"}, run.details
    assert {c["source"] for c in shown.values()} == {"local"}, run.details
    assert env_of(stack + "-api")["DATABASE_URL"] == "postgresql://postgres:secret123@%s-postgres:5432/appdb" % stack
    assert env_of(stack + "-api")[(stack + "-REDIS_HOST").upper().replace("-", "_")] == stack + "-redis"
    mounts = dict((m["Destination"], m.get("Name")) for m in inspect("container", stack + "-api")["Mounts"])
    assert mounts["/data/uploads"] == uploads
    lock = (tmp_path / "clockwork.lock.yml").read_text()
    # The server's declared password is referenced, never copied.
    assert "secret123" not in lock and oct(os.stat(str(tmp_path / "clockwork.lock.yml")).st_mode & 0o777) == "0o600"
    entry = yaml.safe_load(lock)["completions"]["database %s-api -> %s-postgres" % (stack, stack)]
    assert entry["password_from"] == "to env POSTGRES_PASSWORD" and "password" not in entry["fields"]
    assert "secret123" not in run.output, run.output

    again = playbook(tasks, workdir=str(tmp_path))
    assert again.rc == 0 and not again.changed, again.details
    assert (tmp_path / "clockwork.lock.yml").read_text() == lock


def test_seed_examples_with_a_model(stack, llm, tmp_path):
    llm.answer(
        {"connection_string_template": "postgresql://{user}:{password}@{host}:{port}/{database}",
         "username": "postgres", "database_name": "appdb"},
        {"network_name": stack + "-backend", "driver": "bridge"},
        {"mount_path": "/data/uploads", "volume_name": stack + "-uploads"})
    tasks = containers(stack) + seed_examples(stack)
    run = playbook(tasks, workdir=str(tmp_path), env=llm.env(), verbose=True)
    assert run.rc == 0, run.output
    assert len(llm.requests) == 3
    for request in llm.requests:
        assert "secret123" not in json.dumps(request["body"]), "a secret went to the model"
        assert "password" not in request["body"]["response_format"]["json_schema"]["schema"]["properties"]
    assert {c["source"] for c in run.result("show")["msg"].values()} == {"llm"}, run.details
    lock = (tmp_path / "clockwork.lock.yml").read_text()
    llm.answer((500, "must not be asked"))
    again = playbook(tasks, workdir=str(tmp_path), env=llm.env())
    assert again.rc == 0 and not again.changed and llm.requests == [], again.details
    assert (tmp_path / "clockwork.lock.yml").read_text() == lock


def test_stack_completes_every_connection_in_one_pass(stack, llm, tmp_path):
    web, cache = stack + "-web", stack + "-cache"
    llm.answer({"network_name": stack + "-stacknet", "driver": "bridge"},
               {"mount_path": "/data/exports", "volume_name": stack + "-exports"})
    resources = [{"name": cache, "image": REDIS_IMAGE, "ports": ["6379"]}, {"name": web, "image": NGINX_IMAGE}]
    connections = [{"type": "network", "from": web, "to": cache, "description": "cache network"},
                   {"type": "file", "from": web, "to": cache, "description": "shared volume for report exports"}]
    tasks = [{"name": "stack", "register": "result", "clockwork.connections.stack": {
        "name": stack, "resources": resources, "connections": connections}}]
    run = playbook(tasks, workdir=str(tmp_path), env=llm.env())
    assert run.rc == 0, run.output
    assert len(llm.requests) == 2
    completion = run.result("stack")["completion"]
    assert completion["network %s -> %s" % (web, cache)]["fields"]["network_name"] == stack + "-stacknet", run.details
    assert completion["file %s -> %s" % (web, cache)]["fields"] == {"mount_path": "/data/exports",
                                                                     "volume_name": stack + "-exports"}, run.details
    assert env_of(web)[cache.upper().replace("-", "_") + "_HOST"] == cache
    for name in (web, cache):
        mounts = dict((m["Destination"], m.get("Name")) for m in inspect("container", name)["Mounts"])
        assert mounts["/data/exports"] == stack + "-exports"
    llm.answer((500, "must not be asked"))
    again = playbook(tasks, workdir=str(tmp_path), env=llm.env())
    assert again.rc == 0 and not again.changed and llm.requests == [], again.details


def test_module_defaults_set_the_endpoint_for_the_whole_group(stack, llm, tmp_path):
    llm.answer({"network_name": stack + "-defaults-net", "driver": "bridge"})
    play_extra = {"module_defaults": {"group/clockwork.connections.completion": {
        "llm": {"base_url": llm.base_url, "model": "group-model"}}}}
    run = playbook(containers(stack)[:1] + [network_task(stack)], workdir=str(tmp_path), play_extra=play_extra)
    assert run.rc == 0, run.output
    assert [r["body"]["model"] for r in llm.requests] == ["group-model"]
    assert run.result("net")["completion"]["source"] == "llm", run.details
    assert inspect("network", stack + "-defaults-net") is not None
