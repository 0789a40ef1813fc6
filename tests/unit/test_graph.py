"""Graph logic: validation, order, cycles, Mermaid (no Docker)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.graph import (
    deployment_order, find_cycle, mermaid, validate)

SEED_RESOURCES = [{"name": n, "type": t} for n, t in [
    ("postgres", "container"), ("redis", "container"), ("config_file", "file"), ("storage", "container"),
    ("api", "container"), ("frontend", "container")]]
SEED_CONNECTIONS = [
    {"type": "database", "from": "api", "to": "postgres"},
    {"type": "network", "from": "api", "to": "redis"},
    {"type": "file", "from": "api", "to": "config_file"},
    {"type": "file", "from": "api", "to": "storage"},
    {"type": "service_mesh", "from": "frontend", "to": "api"},
    {"type": "dependency", "from": "frontend", "to": "redis"},
]


def test_seed_order():
    names = [r["name"] for r in SEED_RESOURCES]
    validate(SEED_RESOURCES, SEED_CONNECTIONS)
    assert deployment_order(names, SEED_CONNECTIONS) == ["postgres", "redis", "config_file", "storage", "api", "frontend"]


def test_ties_follow_declaration_order_even_when_declared_late():
    names = ["frontend", "api", "db"]
    connections = [{"type": "dependency", "from": "frontend", "to": "api"},
                   {"type": "database", "from": "api", "to": "db"}]
    assert deployment_order(names, connections) == ["db", "api", "frontend"]


def test_cycle_is_spelled_out():
    connections = [{"type": "network", "from": "api", "to": "cache"},
                   {"type": "dependency", "from": "cache", "to": "api"}]
    assert find_cycle(["api", "cache"], connections) == ["api", "cache", "api"]
    with pytest.raises(ClockworkError, match="cycle: api -> cache -> api"):
        validate([{"name": "api"}, {"name": "cache"}], connections)


def test_every_problem_is_named_at_once():
    with pytest.raises(ClockworkError) as error:
        validate([{"name": "api"}, {"name": "api"}, {"name": "x", "type": "vm"}, {"name": "f", "type": "file"}],
                 [{"type": "network", "from": "api", "to": "ghost"},
                  {"type": "telepathy", "from": "api", "to": "api"},
                  {"type": "file", "from": "f", "to": "api"}])
    msg = error.value.msg
    assert msg.startswith("invalid stack: 5 problems found, nothing was changed:\n- ")
    for part in ("resource api: name: declared twice", "resource x: type: unknown type vm",
                 "connection network api -> ghost: to: unknown resource ghost",
                 "connection telepathy api -> api: type: unknown type telepathy",
                 "connection file f -> api: from: must be a container, f is a file"):
        assert part in msg


def test_mermaid_lists_nodes_and_labelled_edges():
    text = mermaid(SEED_RESOURCES, SEED_CONNECTIONS, {1: ["REDIS_HOST"]})
    assert text.startswith("flowchart TD\n")
    assert 'n_config_file[/"config_file"/]' in text
    assert 'n_api -->|"network<br/>REDIS_HOST"| n_redis' in text
    assert "image" not in text
