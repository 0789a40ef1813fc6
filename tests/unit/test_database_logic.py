"""Pure logic of database_connection: URLs, ordering, drift (no server)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database import (
    natural_key, plan, render_url, resolved_settings)

SEED_TEMPLATE = "postgresql://{user}:{password}@{host}:{port}/{database}"


def test_seed_url_exactly():
    assert render_url(SEED_TEMPLATE, "postgres", "secret123", "postgres", 5432, "appdb") == \
        "postgresql://postgres:secret123@postgres:5432/appdb"


def test_user_and_password_are_url_encoded():
    url = render_url(SEED_TEMPLATE, "app user", "p@ss:w/rd%", "db", 5432, "appdb")
    assert url == "postgresql://app%20user:p%40ss%3Aw%2Frd%25@db:5432/appdb"


@pytest.mark.parametrize("template, placeholder", [
    ("postgresql://{user}@{hostname}/x", "{hostname}"),
    ("postgresql://{user}:{password!r}@{host}", "{password}"),
    ("postgresql://{password:>30}", "{password}"),
])
def test_unknown_placeholders_and_format_specs_are_refused(template, placeholder):
    with pytest.raises(ClockworkError) as error:
        render_url(template, "u", "p", "h", 1, "d")
    assert "unknown placeholder %s" % placeholder in error.value.msg


def test_password_placeholder_without_password():
    with pytest.raises(ClockworkError, match="no password"):
        render_url(SEED_TEMPLATE, "u", None, "h", 1, "d")


def test_redis_defaults_with_and_without_password():
    plain = resolved_settings({"engine": "redis"}, None)
    assert (plain["template"], plain["env_var_name"], plain["port"], plain["database"]) == \
        ("redis://{host}:{port}/{database}", "REDIS_URL", 6379, "0")
    secured = resolved_settings({"engine": "redis", "password": "x"}, 6380)
    assert render_url(secured["template"], secured["user"], "x", "cache", secured["port"], secured["database"]) == \
        "redis://:x@cache:6380/0"


def test_postgres_defaults():
    settings = resolved_settings({"password": "x"}, None)
    assert (settings["user"], settings["database"], settings["port"], settings["env_var_name"]) == \
        ("postgres", "postgres", 5432, "DATABASE_URL")


def test_natural_version_order():
    names = ["10_y.sql", "2_x.sql", "1_a.sql", "2_b.sql", "100_z.sql"]
    assert sorted(names, key=natural_key) == ["1_a.sql", "2_b.sql", "2_x.sql", "10_y.sql", "100_z.sql"]


FILES = [("schema", "schema.sql", "/p/schema.sql", "sql", "aaa"),
         ("migration", "1_a.sql", "/p/m/1_a.sql", "sql", "bbb")]


def test_plan_skips_applied_and_refuses_drift():
    assert plan(FILES, {}, False) == FILES
    assert plan(FILES, {("schema", "schema.sql"): "aaa"}, False) == FILES[1:]
    with pytest.raises(ClockworkError, match="migration 1_a.sql was applied with sha256 old"):
        plan(FILES, {("migration", "1_a.sql"): "old"}, False)
    with pytest.raises(ClockworkError, match="reapply_schema"):
        plan(FILES, {("schema", "schema.sql"): "old"}, False)
    assert plan(FILES, {("schema", "schema.sql"): "old", ("migration", "1_a.sql"): "bbb"}, True) == FILES[:1]
