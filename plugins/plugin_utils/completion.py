# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field completion for connections given a `description`: by a model when an endpoint
is configured, else by a deterministic local completer; every completion is recorded
in a lock file and reused, so reruns make no model call and change nothing.

User values always win. A password is never asked of a model."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import posixpath
import re
import secrets
import tempfile

import yaml

from ansible_collections.clockwork.connections.plugins.module_utils import database, file, network, service_mesh
from ansible_collections.clockwork.connections.plugins.plugin_utils import llm

# connection type -> (the fields a description may complete, the type's argument spec)
COMPLETABLE = {
    "network": (("network_name", "driver"), network.NETWORK_ARGS),
    "database": (("connection_string_template", "username", "database_name"), database.DATABASE_ARGS),
    "file": (("mount_path", "volume_name"), file.FILE_ARGS),
    "service_mesh": (("port", "service_name"), service_mesh.SERVICE_MESH_ARGS),
}
MODULE_TYPES = {"clockwork.connections.network_connection": "network",
                "clockwork.connections.database_connection": "database",
                "clockwork.connections.file_connection": "file",
                "clockwork.connections.service_mesh_connection": "service_mesh"}
JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "path": "string"}
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
INVALID_ANSWER_RETRIES = 2
LOCK_NAME = "clockwork.lock.yml"


class CompletionError(ValueError):
    """A completion that failed; a ValueError, like the JSON errors of an answer."""


def given(params, key):
    """A field counts as given when the user set it, even to a default-looking value."""
    return params.get(key) is not None


def missing_fields(kind, params):
    """Fields to complete: only with a description, only those the seed lets a model fill."""
    if kind not in COMPLETABLE or not params.get("description"):
        return []
    fields, _spec = COMPLETABLE[kind]
    missing = [f for f in fields if not given(params, f)]
    if kind == "file" and (given(params, "source_path") or params.get("to_kind") in ("file", "volume")):
        missing = [f for f in missing if f != "volume_name"]   # a file or a declared volume needs no name
    return missing


def schema_for(kind, fields):
    """A JSON schema for just these fields, built from the module's argument spec."""
    spec = COMPLETABLE[kind][1]
    properties = {}
    for field in fields:
        option = spec[field]
        prop = {"type": JSON_TYPES.get(option.get("type", "str"), "string")}
        if option.get("choices"):
            prop["enum"] = list(option["choices"])
        properties[field] = prop
    return {"type": "object", "properties": properties, "required": list(fields), "additionalProperties": False}


def validate_answer(kind, fields, answer):
    """The answer's values for `fields`, checked against the argument spec; else CompletionError."""
    if not isinstance(answer, dict):
        raise CompletionError("the answer is not a JSON object")
    spec = COMPLETABLE[kind][1]
    values = {}
    for field in fields:
        if field not in answer:
            raise CompletionError("the answer has no %s" % field)
        value, option = answer[field], spec[field]
        expected = option.get("type", "str")
        if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise CompletionError("%s must be an integer, got %r" % (field, value))
        if expected in ("str", "path") and not isinstance(value, str):
            raise CompletionError("%s must be a string, got %r" % (field, value))
        if option.get("choices") and value not in option["choices"]:
            raise CompletionError("%s must be one of %s, got %r" % (field, ", ".join(option["choices"]), value))
        if field in ("network_name", "volume_name", "service_name") and not DOCKER_NAME.match(value):
            raise CompletionError("%s %r is not a valid Docker name" % (field, value))
        if field == "mount_path" and not posixpath.isabs(value):
            raise CompletionError("mount_path %r is not an absolute path" % value)
        if field == "port" and not 0 < value < 65536:
            raise CompletionError("port %r is out of range" % value)
        values[field] = value
    return values


# -- the deterministic local completer -----------------------------------------

STOP_WORDS = {"a", "an", "the", "for", "and", "of", "to", "with", "between", "in", "on", "by", "from", "this",
              "connect", "connection", "communication", "database", "postgresql", "postgres", "redis", "network",
              "service", "services"}
# Words that say what kind of thing a file connection is, not what it holds.
FILE_WORDS = {"shared", "volume", "file", "files", "data", "storage", "store", "mount", "directory"}


def _words(text):
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def _topic(description, also_drop=()):
    """The words after `for` (or all of them), without the stop words: "user data" -> [user, data]."""
    words = _words(description)
    if "for" in words:
        words = words[words.index("for") + 1:]
    return [w for w in words if w not in STOP_WORDS and w not in also_drop]


def local_completion(kind, fields, params, context):
    """Fill `fields` from the description and the endpoints' context. Same input, same output."""
    description = params.get("description") or ""
    words = _words(description)
    to = context.get("to") or {}
    values = {}
    if kind == "network":
        named = [words[i - 1] for i, w in enumerate(words) if w == "network" and i > 0 and words[i - 1] not in STOP_WORDS]
        values["network_name"] = "%s-network" % named[0] if named else "%s-%s-net" % (params["from_resource"],
                                                                                      params["to_resource"])
        values["driver"] = "overlay" if {"overlay", "swarm"} & set(words) else "bridge"
    elif kind == "database":
        engine = params.get("engine") or ("redis" if "redis" in (to.get("image") or "") else "postgresql")
        env = context.get("to_env") or {}   # values: the local completer's alone, never a model's
        values["connection_string_template"] = database.ENGINES[engine]["template"]
        values["username"] = env.get("POSTGRES_USER") or database.ENGINES[engine]["user"] or "default"
        topic = _topic(description)
        values["database_name"] = env.get("POSTGRES_DB") or ("_".join(topic) if topic else "app")
        if engine == "redis":
            values["database_name"] = "0"
    elif kind == "file":
        topic = _topic(description, FILE_WORDS) or [params["to_resource"]]
        values["mount_path"] = "/data/%s" % topic[-1]
        values["volume_name"] = "-".join(topic)
    elif kind == "service_mesh":
        ports = to.get("ports") or []
        values["port"] = int(str(ports[0]).split("/", maxsplit=1)[0].split(":")[-1]) if ports else 80
        values["service_name"] = params["to_resource"]
    return dict((k, v) for k, v in values.items() if k in fields)


# -- the model ----------------------------------------------------------------

def model_completion(endpoint, kind, fields, params, context, connection):
    """Ask the model for `fields`; an invalid answer is retried with the error, a bounded number of times."""
    given_fields = dict((k, v) for k, v in params.items()
                        if v is not None and k not in ("password", "description", "llm", "lock_file", "content")
                        and not k.startswith("_"))
    messages = [
        {"role": "system", "content": "You complete the missing fields of a %s connection between two Docker "
                                      "containers in an Ansible collection. Answer with JSON matching the schema, "
                                      "nothing else." % kind},
        {"role": "user", "content": json.dumps({"description": params["description"], "connection_type": kind,
                                                "from": context.get("from"), "to": context.get("to"),
                                                "given_fields": given_fields, "missing_fields": list(fields)},
                                               sort_keys=True, default=str)},
    ]
    schema = schema_for(kind, fields)
    problem = None
    for _attempt in range(1 + INVALID_ANSWER_RETRIES):
        try:
            text = llm.chat_json(endpoint, messages, schema)
        except llm.LLMError as exc:
            raise CompletionError("%s: the model at %s failed: %s" % (connection, endpoint["base_url"], exc))
        try:
            return validate_answer(kind, fields, json.loads(text))
        except CompletionError as exc:
            problem = str(exc)
        except ValueError as exc:
            problem = "the answer is not JSON (%s): %r" % (exc, (text or "")[:200])
        messages += [{"role": "assistant", "content": text},
                     {"role": "user", "content": "That answer is invalid: %s. Answer again with JSON that matches "
                                                 "the schema." % problem}]
    raise CompletionError("%s: the model at %s gave no valid answer after %d tries: %s" % (
        connection, endpoint["base_url"], 1 + INVALID_ANSWER_RETRIES, problem))


# -- context, without secret values ---------------------------------------------

def endpoint_context(resource):
    """What the model may know of an endpoint: name, image, ports, env names (never values)."""
    if not resource:
        return None
    return {"name": resource.get("name"), "kind": resource.get("type", "container"), "image": resource.get("image"),
            "ports": [str(p) for p in resource.get("ports") or []], "env_names": sorted(resource.get("env") or {})}


# -- the lock file -------------------------------------------------------------

class LockFile(object):
    """clockwork.lock.yml: completions keyed by connection and a hash of what was given."""

    def __init__(self, path):
        self.path = path
        self._entries = None   # read on first use: most tasks complete nothing
        self.dirty = False

    @property
    def entries(self):
        if self._entries is None:
            self._entries = {}
            if os.path.exists(self.path):
                with open(self.path) as handle:
                    data = yaml.safe_load(handle) or {}
                self._entries = data.get("completions") or {}
        return self._entries

    @staticmethod
    def key(connection, params, fields):
        basis = dict((k, v) for k, v in params.items() if v is not None and k not in ("password", "llm", "lock_file"))
        digest = hashlib.sha256(json.dumps([basis, sorted(fields)], sort_keys=True, default=str).encode()).hexdigest()
        return connection, digest[:16]

    def get(self, connection, digest):
        entry = self.entries.get(connection)
        return entry if entry and entry.get("input") == digest else None

    def put(self, connection, digest, source, values, secret_fields=()):
        self.entries[connection] = {"input": digest, "source": source, "fields": values}
        if secret_fields:
            self.entries[connection]["secret_fields"] = sorted(secret_fields)
        self.dirty = True

    def save(self):
        if not self.dirty:
            return
        text = ("# Field completions of clockwork.connections: reviewed and committed like a package lock file.\n"
                "# An entry is reused while its connection's description and given fields stay the same.\n")
        text += yaml.safe_dump({"completions": self.entries}, default_flow_style=False, sort_keys=True)
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".clockwork.lock.")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)   # it may hold a generated password
        os.rename(temporary, self.path)
        self.dirty = False


def complete(kind, params, context, lock, endpoint, check_mode, connection):
    """Complete one connection's missing fields. Returns (params, completion report or None)."""
    fields = missing_fields(kind, params)
    need_password = kind == "database" and params.get("description") and not given(params, "password") \
        and (params.get("engine") or "postgresql") == "postgresql"
    if not fields and not need_password:
        return params, None
    _name, digest = lock.key(connection, params, fields)
    entry = lock.get(connection, digest)
    if entry is None:
        if fields and endpoint:
            values, source = model_completion(endpoint, kind, fields, params, context, connection), "llm"
        else:
            values, source = local_completion(kind, fields, params, context), "local"
        secret_fields = []
        if need_password:
            to_env = (context.get("to_env") or {})
            # The server's own password when the stack declares it; else a strong local secret.
            values["password"] = to_env.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
            secret_fields = ["password"]
        entry = {"source": source, "fields": values}
        if not check_mode:
            lock.put(connection, digest, source, values, secret_fields)
        reused = False
    else:
        reused = True
    completed = dict(params)
    completed.update(entry["fields"])
    shown = dict((k, v) for k, v in entry["fields"].items() if k != "password")
    report = {"fields": shown, "source": entry["source"], "from_lock": reused}
    if "password" in entry["fields"]:
        report["password"] = "generated locally (in the lock file, never shown)"
    return completed, report
