"""The `io.clockwork.` labels are the collection's own, one constant for every path that refuses a
declared one: the plan (stack), the container module (à la carte) and the compose import. The
module is run as Ansible runs it, against an engine that cannot be reached: the refusal comes
before the engine is asked anything (no Docker)."""
import json
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils import common, plan, resource_types
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import reserved_label_problem
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose import guard as compose_guard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(ROOT, "plugins", "modules", "container.py")


def test_one_constant_for_every_path():
    assert common.RESERVED_LABEL_PREFIX == "io.clockwork."
    assert resource_types.RESERVED_LABEL_PREFIX is common.RESERVED_LABEL_PREFIX   # the plan's container checks
    assert compose_guard.RESERVED_LABEL_PREFIX is common.RESERVED_LABEL_PREFIX
    defined = []
    for directory, _dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name)) as handle:
                    if re.search(r"^RESERVED_LABEL_PREFIX\s*=", handle.read(), re.M):
                        defined.append(os.path.relpath(os.path.join(directory, name), ROOT))
    assert defined == ["plugins/module_utils/common.py"]


@pytest.mark.parametrize("label", ["io.clockwork.stack", "io.clockwork.connection-mounts", "io.clockwork.anything"])
def test_the_container_module_says_what_the_plan_says(label):
    with pytest.raises(ClockworkError) as error:
        plan.Plan("shop", [{"name": "app", "image": "x", "labels": {label: "shop"}}], [], base_dir="/srv/play")
    said_by_plan = [p for p in error.value.details["problems"] if p.startswith("resource app: ")]
    assert ["resource app: " + reserved_label_problem("app", {label: "shop"})[len("container app: "):]] == said_by_plan


def test_labels_of_other_prefixes_pass_and_every_reserved_one_is_named():
    assert reserved_label_problem("app", {"io.clockwork": "x", "io.clockworks.x": "y", "com.example.io.clockwork.a": "b"}) \
        is None
    assert reserved_label_problem("app", None) is None
    assert reserved_label_problem("app", {"io.clockwork.resource": "db", "com.example": "a", "io.clockwork.replica": 1}) \
        == ("container app: labels: io.clockwork.replica: the io.clockwork. prefix is reserved for the labels the "
            "collection sets itself; io.clockwork.resource: the io.clockwork. prefix is reserved for the labels the "
            "collection sets itself")


def run_module(tmp_path, labels):
    """The container module as Ansible runs it, its engine unreachable: (result, return code)."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"name": "app", "image": "x", "stack": "shop",
                                                        "labels": labels}}))
    env = dict(os.environ, DOCKER_HOST="unix://%s" % (tmp_path / "no-engine.sock"),
               PYTHONPATH=os.path.join(ROOT, "collections"))
    proc = subprocess.run([sys.executable, MODULE, str(args)], capture_output=True, text=True, env=env, timeout=60)
    return json.loads(proc.stdout), proc.returncode


def test_the_container_module_refuses_a_reserved_label_before_reaching_the_engine(tmp_path):
    result, _rc = run_module(tmp_path, {"io.clockwork.stack": "other", "com.example.team": "a"})
    assert result.get("failed") and result["msg"] == (
        "container app: labels: io.clockwork.stack: the io.clockwork. prefix is reserved for the labels the "
        "collection sets itself"), result
    allowed, _rc = run_module(tmp_path, {"com.example.team": "a", "io.clockworks.x": "y"})
    assert allowed.get("failed") and allowed["msg"].startswith("cannot reach the Docker engine"), allowed
