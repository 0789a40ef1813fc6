"""What the collection declares for an execution environment, and what the EE build reads."""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle)


def requirement_lines(path):
    with open(os.path.join(ROOT, path)) as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


def test_collection_declares_ranges_of_runtime_libraries_without_ansible_core():
    declared = load("meta/execution-environment.yml")
    assert declared["version"] == 1
    python, system = declared["dependencies"]["python"], declared["dependencies"]["system"]
    assert os.path.exists(os.path.join(ROOT, python)) and os.path.exists(os.path.join(ROOT, system))
    ranges = requirement_lines(python)
    names = [re.split(r"[\[<>=!~ ]", line)[0].lower() for line in ranges]
    assert "ansible-core" not in names and "ansible" not in names
    assert not [line for line in ranges if "==" in line], "pins: the EE merges ranges with other collections'"
    # Every runtime library the venv pins for the modules is declared (the venv's tools are not).
    pinned = [re.split(r"[\[=]", line)[0].lower() for line in requirement_lines("requirements.txt")]
    assert sorted(set(pinned) - {"ansible-core"}) == sorted(names)


def test_execution_environment_is_schema_3_on_the_local_base_with_the_venvs_ansible_core():
    ee = load("execution-environment.yml")
    assert ee["version"] == 3
    assert ee["images"]["base_image"]["name"].startswith("clockwork-ee/base:")
    core = ee["dependencies"]["ansible_core"]["package_pip"]
    assert core in requirement_lines("requirements.txt"), "the EE's ansible-core is not the venv's"
    # The build has no package index: pip reads the host-downloaded wheels, and the image keeps none.
    steps = ee["additional_build_steps"]
    assert any("no-index" in step for step in steps["prepend_base"])
    assert any("/opt/ee-wheels" in step and "rm -rf" in step for step in steps["append_final"])
