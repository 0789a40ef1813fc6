"""The stack action's own code imported with Python's bytecode cache (plugins/action/stack.py,
BytecodeCachedFinder), in a fresh interpreter set up as ansible-playbook sets itself up:
ansible-core's collection finder installed, the action plugin loaded from its file."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "ansible_collections.clockwork.connections.plugins."

# Loads the action as ansible-core's plugin loader does and imports what its in-process path
# needs; prints which of the collection's modules came from where, and which were compiled.
PROBE = r"""
import importlib.machinery, importlib.util, json, sys
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

compiled = []
to_code = importlib.machinery.SourceFileLoader.source_to_code
def counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = counted

root = sys.argv[1]
_AnsibleCollectionFinder(paths=[root])._install()
name = "ansible_collections.clockwork.connections.plugins.action.stack"
spec = importlib.util.spec_from_file_location(name, root + "/ansible_collections/clockwork/connections/plugins/action/stack.py")
action = importlib.util.module_from_spec(spec)
sys.modules[name] = action
spec.loader.exec_module(action)
action._module_utils()
# Below module_utils and plugin_utils (those two packages themselves are ansible-core's).
ours = dict((n, m) for n, m in sys.modules.items() if n.startswith(tuple(
    "ansible_collections.clockwork.connections.plugins.%s." % part for part in ("module_utils", "plugin_utils"))))
print(json.dumps({
    "finders_left": [type(f).__name__ for f in sys.meta_path if type(f).__name__ == "BytecodeCachedFinder"],
    "loaders": dict((n, type(m.__loader__).__name__) for n, m in ours.items()),
    "files": dict((n, m.__file__) for n, m in ours.items()),
    "compiled": [p for p in compiled if "/plugins/action/" not in p],
}))
"""


def collection_copy(tmp_path):
    """A collection root holding a copy of this one's plugins and meta (no __pycache__)."""
    dest = tmp_path / "collections" / "ansible_collections" / "clockwork" / "connections"
    for part in ("plugins", "meta"):
        shutil.copytree(os.path.join(ROOT, part), str(dest / part), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "galaxy.yml"), str(dest))
    return tmp_path / "collections", dest


def probe(root, **env):
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment.pop("PYTHONPYCACHEPREFIX", None)
    environment.update(env)
    proc = subprocess.run([sys.executable, "-c", PROBE, str(root)], env=environment, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cached_files(directory):
    return sorted(os.path.join(folder, name) for folder, _dirs, names in os.walk(str(directory))
                  for name in names if name.endswith(".pyc"))


def test_first_run_writes_the_bytecode_and_the_next_compiles_nothing(tmp_path):
    root, tree = collection_copy(tmp_path)
    first = probe(root)
    assert first["finders_left"] == [], "the finder stayed in sys.meta_path"
    assert len(first["loaders"]) > 40, first["loaders"]
    # Every module the action imported is the collection's file; through the standard loader.
    assert set(first["loaders"].values()) == {"SourceFileLoader"}, first["loaders"]
    for name, path in first["files"].items():
        relative = name[len("ansible_collections.clockwork.connections."):].replace(".", "/")
        assert path in (str(tree / relative) + ".py", str(tree / relative / "__init__.py")), (name, path)
    assert len(first["compiled"]) == len(first["files"]), "compiled: %s" % first["compiled"]
    # Beside the sources, where Python keeps bytecode (and ansible-core keeps the action's).
    written = cached_files(tree / "plugins" / "module_utils") + cached_files(tree / "plugins" / "plugin_utils")
    assert len(written) == len(first["files"]), written
    assert all("/__pycache__/" in path for path in written), written

    second = probe(root)
    assert second["files"] == first["files"]
    assert second["compiled"] == [], "compiled again: %s" % second["compiled"]


def test_a_changed_source_is_compiled_again(tmp_path):
    root, tree = collection_copy(tmp_path)
    probe(root)
    plan = tree / "plugins" / "module_utils" / "plan.py"
    plan.write_text(plan.read_text() + "\n# changed\n")
    again = probe(root)
    assert again["compiled"] == [str(plan)], again["compiled"]


def test_pycache_prefix_keeps_the_install_untouched(tmp_path):
    root, tree = collection_copy(tmp_path)
    cache = tmp_path / "cache"
    first = probe(root, PYTHONPYCACHEPREFIX=str(cache))
    assert cached_files(tree / "plugins" / "module_utils") == []
    assert len(cached_files(cache / str(tree).lstrip("/") / "plugins")) >= len(first["files"])
    assert probe(root, PYTHONPYCACHEPREFIX=str(cache))["compiled"] == []


@pytest.mark.parametrize("unwritable", ["dont_write_bytecode", "pycache_not_a_folder"])
def test_without_a_cache_it_compiles_as_before(tmp_path, unwritable):
    """Python told not to write bytecode, or a read-only install (here: __pycache__ that cannot be
    made, which stops root too): the same modules, compiled from source, nothing written."""
    root, tree = collection_copy(tmp_path)
    env = {}
    if unwritable == "dont_write_bytecode":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        for folder, dirs, _names in os.walk(str(tree / "plugins")):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            with open(os.path.join(folder, "__pycache__"), "w"):
                pass
    first = probe(root, **env)
    assert len(first["compiled"]) == len(first["files"]) > 40
    assert cached_files(tree) == []
    assert probe(root, **env)["compiled"] == first["compiled"]


def test_the_finder_answers_for_the_collection_code_only(tmp_path):
    from ansible_collections.clockwork.connections.plugins.action.stack import BytecodeCachedFinder
    finder = BytecodeCachedFinder()
    utils = tmp_path / "module_utils"
    (utils / "folder_without_init").mkdir(parents=True)
    (utils / "package").mkdir()
    (utils / "package" / "__init__.py").write_text("")
    (utils / "code.py").write_text("")
    assert finder.find_spec(PREFIX + "module_utils.code", [str(utils)]).origin == str(utils / "code.py")
    package = finder.find_spec(PREFIX + "module_utils.package", [str(utils)])
    assert package.submodule_search_locations == [str(utils / "package")]
    assert finder.find_spec(PREFIX + "module_utils.folder_without_init", [str(utils)]) is None
    assert finder.find_spec(PREFIX + "module_utils.missing", [str(utils)]) is None
    assert finder.find_spec(PREFIX + "modules.code", [str(utils)]) is None
    assert finder.find_spec("ansible_collections.other.coll.plugins.module_utils.code", [str(utils)]) is None
    assert finder.find_spec(PREFIX + "module_utils.code", [str(utils), str(tmp_path)]) is None


def test_no_redirect_of_the_collection_code():
    """The finder follows no redirect of meta/runtime.yml: there must be none to follow."""
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
        runtime = yaml.safe_load(handle)
    assert "import_redirection" not in runtime
    assert not (runtime.get("plugin_routing") or {}).get("module_utils")
