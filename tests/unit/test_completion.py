"""Field completion: the local completer, schemas, answer validation, the lock (no Docker, no model)."""
import pytest

from ansible_collections.clockwork.connections.plugins.plugin_utils.completion import (
    CompletionError, LockFile, complete, local_completion, missing_fields, schema_for, validate_answer)


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
    assert schema["properties"]["driver"] == {"type": "string"}
    assert schema_for("service_mesh", ["port"])["properties"]["port"] == {"type": "integer"}


@pytest.mark.parametrize("answer, problem", [
    ([], "not a JSON object"),
    ({"network_name": "ok"}, "has no driver"),
    ({"network_name": 5, "driver": "bridge"}, "network_name must be a string"),
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
    done, report = complete("network", params, {}, lock, None, False, "network api -> redis")
    assert done["driver"] == "macvlan" and done["network_name"] == "backend-network"
    assert report == {"fields": {"network_name": "backend-network"}, "source": "local", "from_lock": False}
    lock.save()
    text = (tmp_path / "clockwork.lock.yml").read_text()
    again = LockFile(str(tmp_path / "clockwork.lock.yml"))
    assert complete("network", params, {}, again, None, False, "network api -> redis")[1]["from_lock"] is True
    again.save()
    assert (tmp_path / "clockwork.lock.yml").read_text() == text
    changed = dict(params, description="frontend network")
    assert complete("network", changed, {}, again, None, False, "network api -> redis")[0]["network_name"] == \
        "frontend-network"


def test_a_missing_password_is_generated_never_modelled(tmp_path):
    lock = LockFile(str(tmp_path / "l.yml"))
    params = {"from_resource": "api", "to_resource": "db", "description": "app database", "username": "u",
              "database_name": "d", "connection_string_template": "postgresql://{user}:{password}@{host}/{database}"}
    done, report = complete("database", params, {}, lock, None, False, "database api -> db")
    assert len(done["password"]) >= 24 and "password" not in report["fields"]
    declared = complete("database", dict(params, description="other"), {"to_env": {"POSTGRES_PASSWORD": "pw"}},
                        lock, None, False, "database api -> db")[0]
    assert declared["password"] == "pw"


def test_check_mode_does_not_write_the_lock(tmp_path):
    lock = LockFile(str(tmp_path / "l.yml"))
    complete("network", {"from_resource": "a", "to_resource": "b", "description": "x network"}, {}, lock, None, True, "n")
    lock.save()
    assert not (tmp_path / "l.yml").exists()


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
