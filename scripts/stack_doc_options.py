#!/usr/bin/env python3
"""Print the `resources` and `connections` suboption docs of the stack module, taken
from the container and connection modules' own DOCUMENTATION, so that the fields are
described once. Rerun after changing a module's options and paste the output into
plugins/modules/stack.py; `make sanity` (validate-modules) fails while they disagree."""
import ast
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.clockwork.connections.plugins.module_utils import stack  # noqa: E402


def module_docs(name):
    tree = ast.parse(open(os.path.join(ROOT, "plugins/modules/%s.py" % name)).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)["options"]


FRAGMENT = yaml.safe_load(open(os.path.join(ROOT, "plugins/doc_fragments/connection.py")).read()
                          .split('DOCUMENTATION = r"""')[1].split('"""')[0])["options"]
SOURCES = {"container": module_docs("container"), "fragment": FRAGMENT}
for module in ("database", "dependency", "network", "file", "service_mesh"):
    SOURCES[module] = module_docs(module + "_connection")
# Options only the stack has (Swarm's service options): documented in the stack module itself.
SOURCES["stack"] = module_docs("stack")["resources"]["suboptions"]
EXTRA = {
    "type": {"description": "The connection type, or the resource type."},
    "path": {"description": "File resource only: its path on the Docker host; relative paths resolve against the playbook."},
    "volume_name": {"description": "Volume resource, or file connection: the volume's name (a volume resource defaults to its own name)."},
    "driver": {"description": "Volume resource only: the volume driver."},
    "name": {"description": "The resource's name: the container's name and DNS alias on the stack's network."},
    "env_var_name": {"description": [
        "Database, network and service_mesh connections: the env variable contributed to C(from_resource). Defaults "
        "to C(DATABASE_URL) (C(REDIS_URL) for Redis), C(<TO>_HOST) and C(<SERVICE>_URL).",
        "The empty string contributes none (a database connection then gives only the parts of C(env))."]},
}


def plain(description):
    """O(x) names another module's option: plain code here, where no such option exists."""
    if isinstance(description, list):
        return [plain(d) for d in description]
    return re.sub(r"O\(([^)=]+)(=[^)]*)?\)", lambda m: "C(%s%s)" % (m.group(1), m.group(2) or ""), description)


def describe(key, option, sources):
    doc = EXTRA.get(key) or next((SOURCES[src][key] for src in sources if key in SOURCES[src]), None)
    if doc is None:
        raise SystemExit("no documentation for %s" % key)
    out = {"description": plain(doc["description"]), "type": option.get("type", "str")}
    for field in ("elements", "aliases", "choices", "default", "required"):
        if field in option:
            out[field] = option[field]
    if "options" in option:
        out["suboptions"] = dict((k, dict(describe_sub(k, v, doc))) for k, v in option["options"].items())
    return out


def describe_sub(key, option, parent):
    sub = parent.get("suboptions", {}).get(key, {})
    out = {"description": plain(sub.get("description", key)), "type": option.get("type", "str")}
    for field in ("elements", "choices", "default", "required"):
        if field in option:
            out[field] = option[field]
    return out


def block(options, sources):
    return dict((k, describe(k, v, sources)) for k, v in sorted(options.items()))


# A field both a container and a connection have (env) is described, for connections, by the connection's module.
CONNECTION_SOURCES = [s for s in SOURCES if s != "container"] + ["container"]
print(yaml.safe_dump({"resources": {"suboptions": block(stack.RESOURCE_OPTIONS, list(SOURCES))},
                      "connections": {"suboptions": block(stack.CONNECTION_OPTIONS, CONNECTION_SOURCES)}},  # description, type: by hand
                     default_flow_style=False, sort_keys=False, width=100))
