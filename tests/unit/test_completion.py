"""Field completion: the local completer, schemas, answer validation, the lock (no Docker, no model)."""
import json
import os
import stat

import pytest
import yaml

from ansible._internal._datatag._tags import Origin
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.clockwork.connections.plugins.plugin_utils import completion, llm
from ansible_collections.clockwork.connections.plugins.plugin_utils.completion import (
    CompletionError, complete, complete_stack, local_completion, missing_fields, schema_for, validate_answer)
from ansible_collections.clockwork.connections.plugins.plugin_utils.lock_file import (
    DryRunLockFile, LockFile, LockFileError)
from ansible_collections.clockwork.connections.plugins.plugin_utils.completion_policy import Situation


def test_seed_network_example_offline():
    params = {"from_resource": "api", "to_resource": "redis",
              "description": "backend network for API and cache communication"}
    assert local_completion("network", ["network_name", "driver"], params, {}) == \
        {"network_name": "backend-network", "driver": "bridge"}


def test_seed_file_example_offline():
    params = {"from_resource": "api", "to_resource": "storage", "description": "shared volume for user file uploads"}
    assert local_completion("file", ["mount_path", "volume_name"], params, {}) == \
        {"mount_path": "/data/uploads", "volume_name": "user-uploads"}


def test_seed_database_example_offline():
    params = {"from_resource": "api", "to_resource": "postgres",
              "description": "Connect to PostgreSQL database for user data"}
    fields = ["connection_string_template", "username", "database_name"]
    assert local_completion("database", fields, params, {}) == {
        "connection_string_template": "postgresql://{user}:{password}@{host}:{port}/{database}",
        "username": "postgres", "database_name": "user_data"}
    # The server's declared settings are better than a guess.
    context = {"to": {"image": "postgres:15"}, "to_env": {"POSTGRES_DB": "appdb", "POSTGRES_USER": "app"}}
    assert local_completion("database", fields, params, context)["database_name"] == "appdb"
    assert local_completion("database", fields, params, context)["username"] == "app"


def test_service_mesh_offline_uses_the_declared_port():
    params = {"from_resource": "frontend", "to_resource": "api", "description": "frontend calls the api"}
    assert local_completion("service_mesh", ["port", "service_name"], params, {"to": {"ports": ["8000"]}}) == \
        {"port": 8000, "service_name": "api"}


def test_same_input_same_output():
    params = {"from_resource": "a", "to_resource": "b", "description": "metrics network"}
    assert local_completion("network", ["network_name"], params, {}) == \
        local_completion("network", ["network_name"], dict(params), {}) == {"network_name": "metrics-network"}


def test_only_missing_fields_and_only_with_a_description():
    assert missing_fields("network", {"network_name": "x"}) == []
    assert missing_fields("network", {"description": "d", "network_name": "x"}) == ["driver"]
    assert missing_fields("file", {"description": "d", "source_path": "/etc/x"}) == ["mount_path"]
    assert missing_fields("dependency", {"description": "d"}) == []


def test_schema_is_built_from_the_argument_spec():
    schema = schema_for("network", ["driver", "network_name"])
    assert schema["required"] == ["driver", "network_name"] and schema["additionalProperties"] is False
    # Completed values are narrower than the spec: a model may not pick macvlan or host.
    assert schema["properties"]["driver"] == {"type": "string", "enum": ["bridge", "overlay"]}
    assert schema_for("service_mesh", ["port"])["properties"]["port"] == {"type": "integer"}


@pytest.mark.parametrize("answer, problem", [
    ([], "not a JSON object"),
    ({"network_name": "ok"}, "driver is missing"),
    ({"network_name": 5, "driver": "bridge"}, "network_name must be a string"),
    ({"network_name": "ok-net", "driver": "macvlan"}, "driver must be one of bridge, overlay"),
    ({"network_name": "bad name!", "driver": "bridge"}, "not a valid Docker name"),
])
def test_invalid_answers_are_named(answer, problem):
    with pytest.raises(CompletionError, match=problem):
        validate_answer("network", ["network_name", "driver"], answer)
    with pytest.raises(CompletionError, match="not an absolute path"):
        validate_answer("file", ["mount_path"], {"mount_path": "data"})


def test_lock_reuse_change_and_user_values_win(tmp_path):
    lock = LockFile(str(tmp_path / "clockwork.lock.yml"))
    params = {"from_resource": "api", "to_resource": "redis", "description": "backend network for the cache",
              "driver": "macvlan"}
    done, report = complete("network", params, {}, lock, None, "network api -> redis")
    assert done["driver"] == "macvlan" and done["network_name"] == "backend-network"
    assert report == {"fields": {"network_name": "backend-network"}, "source": "local", "from_lock": False}
    lock.save()
    text = (tmp_path / "clockwork.lock.yml").read_text()
    again = LockFile(str(tmp_path / "clockwork.lock.yml"))
    assert complete("network", params, {}, again, None, "network api -> redis")[1]["from_lock"] is True
    again.save()
    assert (tmp_path / "clockwork.lock.yml").read_text() == text
    changed = dict(params, description="frontend network")
    assert complete("network", changed, {}, again, None, "network api -> redis")[0]["network_name"] == \
        "frontend-network"


DB_PARAMS = {"from_resource": "api", "to_resource": "db", "description": "app database", "username": "u",
             "database_name": "d", "connection_string_template": "postgresql://{user}:{password}@{host}/{database}"}


def test_a_missing_password_is_generated_never_modelled(tmp_path):
    lock = LockFile(str(tmp_path / "l.yml"))
    done, report = complete("database", dict(DB_PARAMS), {}, lock, None, "database api -> db")
    assert len(done["password"]) >= 24 and "password" not in report["fields"]
    assert report["password"].startswith("generated locally, in the lock file in clear text")
    lock.save()
    assert done["password"] in (tmp_path / "l.yml").read_text()
    again = LockFile(str(tmp_path / "l.yml"))
    assert complete("database", dict(DB_PARAMS), {}, again, None, "database api -> db")[0]["password"] == \
        done["password"]


def test_a_clear_password_in_a_0644_lock_file_is_made_0600_and_the_report_says_the_mode_it_has(tmp_path):
    """A lock file checked out by git is 0644: reused, it is made 0600 before it is relied on;
    --check changes nothing and says the mode the file has."""
    path = tmp_path / "l.yml"
    lock = LockFile(str(path))
    report = complete("database", dict(DB_PARAMS), {}, lock, None, "database api -> db")[1]
    assert "in clear text (mode 0600)" in report["password"]
    lock.save()
    os.chmod(str(path), 0o644)
    dry = DryRunLockFile(str(path))
    for _again in range(2):   # each report states the mode the file has
        report = complete("database", dict(DB_PARAMS), {}, dry, None, "database api -> db")[1]
        assert "in clear text (mode 0644 now, made 0600 when run without --check)" in report["password"]
    dry.save()
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644   # --check writes nothing
    assert dry.actions == ["chmod 0600 %s" % path] * 2
    report = complete("database", dict(DB_PARAMS), {}, LockFile(str(path)), None, "database api -> db")[1]
    assert report["from_lock"] is True and "in clear text (mode 0600)" in report["password"]
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    # A lock file that holds no clear password keeps its mode.
    other = tmp_path / "n.yml"
    params = {"from_resource": "api", "to_resource": "redis", "description": "backend network for the cache"}
    lock = LockFile(str(other))
    complete("network", params, {}, lock, None, "network api -> redis")
    lock.save()
    os.chmod(str(other), 0o644)
    complete("network", params, {}, LockFile(str(other)), None, "network api -> redis")
    assert stat.S_IMODE(os.stat(str(other)).st_mode) == 0o644


def test_a_declared_password_is_referenced_never_copied_and_its_rotation_completes_afresh(tmp_path):
    path = tmp_path / "l.yml"
    lock = LockFile(str(path))
    declared = {"to_env": {"POSTGRES_PASSWORD": Origin(path="/vault.yml", line_num=2).tag("pw-declared-1")}}
    done, report = complete("database", dict(DB_PARAMS), declared, lock, None, "database api -> db")
    assert done["password"] == "pw-declared-1" and report["password"].startswith("from to env POSTGRES_PASSWORD")
    lock.save()
    text = path.read_text()
    assert "pw-declared-1" not in text
    entry = yaml.safe_load(text)["completions"]["database api -> db"]
    assert entry["password_from"] == "to env POSTGRES_PASSWORD" and "password" not in entry["fields"]
    # Reused while the password is the same: resolved from `to` at run time.
    again = LockFile(str(path))
    reused, report = complete("database", dict(DB_PARAMS), declared, again, None, "database api -> db")
    assert report["from_lock"] and reused["password"] == "pw-declared-1"
    # Rotated: the key changes, without the lock ever holding the password.
    rotated = {"to_env": {"POSTGRES_PASSWORD": "pw-declared-2"}}
    done, report = complete("database", dict(DB_PARAMS), rotated, again, None, "database api -> db")
    assert not report["from_lock"] and done["password"] == "pw-declared-2"
    again.save()
    assert yaml.safe_load(path.read_text())["completions"]["database api -> db"]["input"] != entry["input"]
    assert "pw-declared" not in path.read_text()


def test_a_lock_entry_that_copies_a_declared_password_is_refused(tmp_path):
    path = tmp_path / "l.yml"
    lock = LockFile(str(path))
    declared = {"to_env": {"POSTGRES_PASSWORD": "pw-declared-1"}}
    complete("database", dict(DB_PARAMS), declared, lock, None, "database api -> db")
    lock.save()
    data = yaml.safe_load(path.read_text())
    entry = data["completions"]["database api -> db"]
    del entry["password_from"]
    entry["fields"]["password"] = "pw-declared-1"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CompletionError, match="entry 'database api -> db': field password copies the password the "
                                              "`to` resource declares"):
        complete("database", dict(DB_PARAMS), declared, DryRunLockFile(str(path)), None, "database api -> db")


def test_a_generated_password_is_vault_encrypted_with_a_vault_secret(tmp_path):
    secrets = VaultLib([("default", VaultSecret(b"vault-pw"))])
    lock = LockFile(str(tmp_path / "l.yml"), vault=secrets)
    done, report = complete("database", dict(DB_PARAMS), {}, lock, None, "database api -> db")
    assert report["password"] == "generated locally, vault-encrypted in the lock file"
    lock.save()
    assert done["password"] not in (tmp_path / "l.yml").read_text()
    reused = complete("database", dict(DB_PARAMS), {}, LockFile(str(tmp_path / "l.yml"), vault=secrets), None,
                      "database api -> db")[0]
    assert reused["password"] == done["password"]
    with pytest.raises(LockFileError, match="field password is vault-encrypted"):
        complete("database", dict(DB_PARAMS), {}, LockFile(str(tmp_path / "l.yml")), None, "database api -> db")


def test_check_mode_does_not_write_the_lock(tmp_path):
    """--check opens a dry run's lock file: the completion is the same, its entry only recorded."""
    params = {"from_resource": "a", "to_resource": "b", "description": "x network"}
    lock = DryRunLockFile(str(tmp_path / "l.yml"))
    done, report = complete("network", dict(params), {}, lock, None, "n")
    lock.save()
    assert sorted(os.listdir(str(tmp_path))) == []
    assert lock.actions == ["write %s (n)" % (tmp_path / "l.yml")]
    assert lock.get("n", lock.entries["n"]["input"])["fields"] == report["fields"] == {
        "network_name": "x-network", "driver": "bridge"}   # read as if written
    real = LockFile(str(tmp_path / "l.yml"))
    assert complete("network", dict(params), {}, real, None, "n") == (done, report)
    real.save()
    assert sorted(os.listdir(str(tmp_path))) == [".l.yml.lock", "l.yml"]


def test_endpoint_settings_precedence(monkeypatch):
    from ansible_collections.clockwork.connections.plugins.plugin_utils import llm
    for name in ("CLOCKWORK_LLM_BASE_URL", "CLOCKWORK_LLM_MODEL", "CLOCKWORK_LLM_API_KEY", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert llm.settings() is None   # no endpoint: the local completer
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai")
    fallback = llm.settings()
    assert fallback["base_url"] == "http://127.0.0.1:1/v1" and fallback["api_key"] == "from-openai"
    monkeypatch.setenv("CLOCKWORK_LLM_BASE_URL", "http://127.0.0.1:2/v1")
    monkeypatch.setenv("CLOCKWORK_LLM_API_KEY", "from-clockwork")
    assert llm.settings()["base_url"] == "http://127.0.0.1:2/v1" and llm.settings()["api_key"] == "from-clockwork"
    task = llm.settings({"base_url": "http://127.0.0.1:3/v1", "model": "m", "timeout": 5, "api_key": None})
    assert (task["base_url"], task["model"], task["timeout"], task["api_key"]) == \
        ("http://127.0.0.1:3/v1", "m", 5.0, "from-clockwork")


def test_tagged_values_from_templated_and_vaulted_vars_reach_the_lock_as_plain_data(tmp_path):
    """The issue's `('cannot represent an object', 'appdb')`: POSTGRES_DB from a templated var."""
    tag = Origin(path="/play.yml", line_num=7).tag
    args = {"name": "shop", "resources": [
        {"name": tag("pg"), "image": tag("postgres:15"),
         "env": {tag("POSTGRES_DB"): tag("appdb"), "POSTGRES_PASSWORD": tag("vaulted-pw")}},
        {"name": "api", "image": "nginx"}],
        "connections": [{"type": tag("database"), "from": tag("api"), "to": tag("pg"),
                         "description": tag("Connect to PostgreSQL database for user data")}]}
    lock = LockFile(str(tmp_path / "l.yml"))
    done, reports = complete_stack(args, lock, None, engine=NoEngine())
    lock.save()
    text = (tmp_path / "l.yml").read_text()
    assert "database_name: appdb" in text and "vaulted-pw" not in text
    assert done["connections"][0]["password"] == "vaulted-pw"
    assert reports["database api -> pg"]["fields"]["database_name"] == "appdb"


class NoEngine(object):
    """No Docker engine reachable: nothing exists."""

    def labels(self, what, name):
        return None


class Engine(object):
    def __init__(self, **objects):
        self.objects = objects

    def labels(self, what, name):
        return self.objects.get("%s:%s" % (what, name))


def hostile_model(monkeypatch, *answers):
    """llm.chat_json answering `answers` in turn (the last one repeated); records the questions."""
    asked = []

    def chat_json(endpoint, messages, schema):
        asked.append([dict(m) for m in messages])
        return json.dumps(answers[min(len(asked), len(answers)) - 1])
    monkeypatch.setattr(llm, "chat_json", chat_json)
    return asked


ENDPOINT = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": None, "timeout": 1}


def test_a_model_answer_that_breaks_the_policy_is_asked_again_then_completed_locally(tmp_path, monkeypatch):
    asked = hostile_model(monkeypatch, {"mount_path": "/etc", "volume_name": "user-uploads"},
                          {"mount_path": "/var/run/docker.sock", "volume_name": "user-uploads"},
                          {"mount_path": "/data/x", "volume_name": "foreign"})
    params = {"from_resource": "api", "to_resource": "storage", "description": "shared volume for user file uploads"}
    lock = LockFile(str(tmp_path / "l.yml"))
    place = Situation("shop", params, engine=Engine(**{"volume:foreign": {}}))
    done, report = complete("file", params, {}, lock, ENDPOINT, "file api -> storage", place)
    assert len(asked) == 3
    assert "mount_path '/etc' is a system path" in asked[1][-1]["content"]
    assert "mount_path '/var/run/docker.sock' is a system path" in asked[2][-1]["content"]
    assert (done["mount_path"], done["volume_name"]) == ("/data/uploads", "user-uploads")
    assert report["source"] == "local" and "no acceptable answer in 3 tries" in report["fallback"]
    assert "volume foreign exists and is not the collection's" in report["fallback"]
    assert completion.warnings({"file api -> storage": report}) == [report["fallback"]]
    assert report["fallback"].startswith("file api -> storage: the model at http://127.0.0.1:1/v1 gave no")
    lock.save()
    assert yaml.safe_load((tmp_path / "l.yml").read_text())["completions"]["file api -> storage"]["source"] == "local"


def test_a_good_second_answer_is_used(tmp_path, monkeypatch):
    asked = hostile_model(monkeypatch, {"network_name": "bridge", "driver": "bridge"},
                          {"network_name": "shop-backend", "driver": "bridge"})
    params = {"from_resource": "api", "to_resource": "redis", "description": "backend network"}
    place = Situation("shop", params, engine=Engine(**{"network:bridge": {}}))
    done, report = complete("network", params, {}, LockFile(str(tmp_path / "l.yml")), ENDPOINT, "n", place)
    assert len(asked) == 2 and done["network_name"] == "shop-backend" and report["source"] == "llm"
    assert "fallback" not in report


def test_the_local_completer_steps_around_what_the_policy_refuses(tmp_path):
    params = {"from_resource": "api", "to_resource": "storage", "description": "shared volume for user file uploads"}
    engine = Engine(**{"volume:user-uploads": {"io.clockwork.stack": "other"}})
    place = Situation("shop", params, occupied=[("/data/uploads", "x", "api's declared mount")], engine=engine)
    done, _report = complete("file", params, {"stack": "shop"}, LockFile(str(tmp_path / "l.yml")), None,
                             "file api -> storage", place)
    assert (done["mount_path"], done["volume_name"]) == ("/data/user-uploads", "shop-user-uploads")


@pytest.mark.parametrize("field, value, words", [
    ("mount_path", "/etc", "field mount_path '/etc' is a system path"),
    ("mount_path", "relative", "field mount_path 'relative' is not an absolute path"),
    ("volume_name", "foreign", "field volume_name volume foreign exists and is not the collection's"),
    ("volume_name", "bad name", "field volume_name 'bad name' is not a valid Docker name"),
])
def test_a_lock_entry_that_breaks_the_policy_is_refused_naming_entry_and_field(tmp_path, field, value, words):
    params = {"from_resource": "api", "to_resource": "storage", "description": "shared volume for user file uploads"}
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    complete("file", params, {}, lock, None, "file api -> storage")
    lock.save()
    data = yaml.safe_load(path.read_text())
    data["completions"]["file api -> storage"]["fields"][field] = value
    path.write_text(yaml.safe_dump(data))
    for opened in (LockFile, DryRunLockFile):   # a run, and a dry run (--check)
        place = Situation("shop", params, engine=Engine(**{"volume:foreign": {}}))
        with pytest.raises(CompletionError) as error:
            complete("file", params, {}, opened(str(path)), None, "file api -> storage", place)
        message = str(error.value)
        assert str(path) in message and "entry 'file api -> storage'" in message and words in message, message


def test_a_lock_entry_with_a_field_no_description_completes_is_refused(tmp_path):
    params = {"from_resource": "api", "to_resource": "redis", "description": "backend network"}
    path = tmp_path / "clockwork.lock.yml"
    lock = LockFile(str(path))
    complete("network", params, {}, lock, None, "network api -> redis")
    lock.save()
    data = yaml.safe_load(path.read_text())
    data["completions"]["network api -> redis"]["fields"]["subnet"] = "10.9.0.0/16"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CompletionError, match="field subnet is not a field a description completes"):
        complete("network", params, {}, LockFile(str(path)), None, "network api -> redis")


def test_the_stack_judges_mount_paths_against_the_containers_other_mounts(tmp_path):
    args = {"name": "shop", "resources": [
        {"name": "api", "image": "nginx", "mounts": [{"source": "cache", "target": "/data/uploads"}]},
        {"name": "storage", "image": "nginx"}],
        "connections": [
            {"type": "file", "from": "api", "to": "storage", "mount_path": "/data/user-uploads", "volume_name": "v1"},
            {"type": "file", "from": "api", "to": "storage", "description": "shared volume for user file uploads"}]}
    done, reports = complete_stack(args, LockFile(str(tmp_path / "l.yml")), None, engine=NoEngine())
    assert done["connections"][1]["mount_path"] == "/data/storage-uploads"   # after /data/uploads, /data/user-uploads
    assert list(reports) == ["file api -> storage (2)"]


def test_the_stack_completes_nothing_when_destroying(tmp_path):
    args = {"name": "shop", "state": "absent", "resources": [], "connections": [
        {"type": "network", "from": "a", "to": "b", "description": "backend network"}]}
    assert complete_stack(dict(args), LockFile(str(tmp_path / "l.yml")), None)[1] is None
