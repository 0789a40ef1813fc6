"""The container options' documentation is the option table's: the doc fragment the container
module extends and the container part of the stack module's resources are what
scripts/option_docs.py writes from the table (rerun it after changing an option)."""
import importlib.util
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script():
    spec = importlib.util.spec_from_file_location("option_docs", os.path.join(ROOT, "scripts", "option_docs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fragment_and_the_stack_docs_are_the_tables():
    assert _script().main(["--check"]) == 0, "run: .venv/bin/python scripts/option_docs.py"


def test_every_option_is_documented_once_with_its_argument_spec():
    from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import TABLE
    from ansible_collections.clockwork.connections.plugins.doc_fragments.container_options import ModuleDocFragment

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert list(documented) == [o.name for o in TABLE]
    for option in TABLE:
        doc = documented[option.name]
        assert doc["type"] == option.spec["type"] and doc.get("default") == option.spec.get("default"), option
        assert doc.get("choices") == option.spec.get("choices"), option
        assert sorted(doc.get("suboptions") or {}) == sorted(option.spec.get("options") or {}), option
