# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compose schema: validation of a compose file, with every violation worded alike whichever
schema and validator found it: compose-spec's own schema (spec.py) when it can be
had; else the compact schema here, the part of compose-spec the importer reads, by the
`jsonschema` package when it is importable, else by the small validator here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

try:
    from jsonschema import Draft7Validator
except ImportError:   # the small validator below reads the same schema
    Draft7Validator = None

from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.spec import spec_errors, spec_validator

STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
NUMERIC = {"type": ["integer", "string"]}   # a string after interpolation, checked when read
STRINGS = {"type": "array", "items": STRING}
STRING_OR_LIST = {"type": ["string", "array", "null"], "items": STRING}
MAP_OR_LIST = {"type": ["object", "array"], "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
               "items": STRING}
EXTENSIONS = {"^x-": {}}


def _object(properties, required=(), extensions=True, nullable=False):
    schema = {"type": ["object", "null"] if nullable else "object", "properties": properties,
              "additionalProperties": False}
    if extensions:
        schema["patternProperties"] = EXTENSIONS
    if required:
        schema["required"] = list(required)
    return schema


def _map(values):
    return {"type": "object", "additionalProperties": values}


_PORT = _object(dict((k, STRING) for k in ("host_ip", "protocol", "mode", "name", "app_protocol")),
                required=["target"])
_PORT["properties"].update(target=NUMERIC, published=NUMERIC)
_MOUNT = _object({"type": {"enum": ["volume", "bind", "tmpfs", "npipe", "cluster", "image"]}, "source": STRING,
                  "target": STRING, "read_only": BOOLEAN, "consistency": STRING, "bind": {"type": "object"},
                  "volume": {"type": "object"}, "tmpfs": {"type": "object"}, "image": {"type": "object"}},
                 required=["type", "target"])
_FILE_REFERENCE = {"type": ["string", "object"], "properties": {"source": STRING, "target": STRING, "uid": STRING,
                                                                "gid": STRING, "mode": {"type": ["integer", "string"]}},
                   "required": ["source"], "additionalProperties": False, "patternProperties": EXTENSIONS}
_HEALTHCHECK = _object({"test": STRING_OR_LIST, "interval": STRING, "timeout": STRING, "start_period": STRING,
                        "start_interval": STRING, "retries": NUMERIC, "disable": BOOLEAN})
_NETWORK_ATTACHMENT = _object({"aliases": STRINGS, "ipv4_address": STRING, "ipv6_address": STRING,
                               "link_local_ips": STRINGS, "mac_address": STRING, "priority": {"type": "integer"},
                               "gw_priority": {"type": "integer"}, "driver_opts": {"type": "object"}},
                              nullable=True)
_DEPENDENCY = _object({"condition": {"enum": ["service_started", "service_healthy", "service_completed_successfully"]},
                       "restart": BOOLEAN, "required": BOOLEAN})

# Compose keys the stack has no field for: accepted as Compose does, then warned about.
UNMAPPED_KEYS = (
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
    "cpu_shares", "cpus", "cpuset", "credential_spec", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt",
    "dns_search", "domainname", "entrypoint", "external_links", "extra_hosts", "gpus", "group_add", "hostname",
    "init", "ipc", "isolation", "label_file", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "models", "network_mode", "oom_kill_disable", "oom_score_adj", "pid",
    "pids_limit", "platform", "post_start", "pre_stop", "privileged", "provider", "pull_policy", "read_only",
    "runtime", "security_opt", "shm_size", "stdin_open", "stop_signal", "storage_opt",
    "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes_from",
    "working_dir")
SERVICE = _object(dict(
    [(key, {}) for key in UNMAPPED_KEYS],
    image=STRING, command=STRING_OR_LIST, entrypoint=STRING_OR_LIST, environment=MAP_OR_LIST, labels=MAP_OR_LIST,
    env_file={"type": ["string", "array"], "items": {"type": ["string", "object"], "properties": {
        "path": STRING, "required": BOOLEAN, "format": STRING}, "required": ["path"], "additionalProperties": False}},
    ports={"type": "array", "items": dict(_PORT, type=["string", "integer", "object"])},
    expose={"type": "array", "items": {"type": ["string", "integer"]}},
    volumes={"type": "array", "items": dict(_MOUNT, type=["string", "object"])},
    depends_on={"type": ["array", "object"], "items": STRING, "additionalProperties": _DEPENDENCY},
    healthcheck=_HEALTHCHECK,
    networks={"type": ["array", "object"], "items": STRING, "additionalProperties": _NETWORK_ATTACHMENT},
    restart=STRING,   # its values are checked with the service (service.read_service), as Compose does
    profiles=STRINGS, scale=NUMERIC, stop_grace_period=STRING,
    extends={"type": ["string", "object"], "properties": {"service": STRING, "file": STRING},
             "required": ["service"], "additionalProperties": False},
    secrets={"type": "array", "items": _FILE_REFERENCE}, configs={"type": "array", "items": _FILE_REFERENCE},
    deploy={"type": ["object", "null"], "properties": {"replicas": NUMERIC, "endpoint_mode": {"enum": ["vip", "dnsrr"]},
                                                       "update_config": {"type": "object", "properties": {
                                                           "order": {"enum": ["start-first", "stop-first"]}}}}},
))
_EXTERNAL = {"type": ["boolean", "object"]}
_TOP_NETWORK = _object({"name": STRING, "driver": STRING, "driver_opts": {"type": "object"}, "attachable": BOOLEAN,
                        "enable_ipv6": BOOLEAN, "enable_ipv4": BOOLEAN, "external": _EXTERNAL, "internal": BOOLEAN,
                        "labels": MAP_OR_LIST, "ipam": _object({"driver": STRING, "options": {"type": "object"}, "config": {
                            "type": "array", "items": _object({"subnet": STRING, "gateway": STRING, "ip_range": STRING,
                                                               "aux_addresses": {"type": "object"}})}})},
                       nullable=True)
_TOP_VOLUME = _object({"name": STRING, "driver": STRING, "driver_opts": {"type": "object"}, "external": _EXTERNAL,
                       "labels": MAP_OR_LIST}, nullable=True)
_TOP_FILE = _object({"name": STRING, "file": STRING, "environment": STRING, "content": STRING, "external": _EXTERNAL,
                     "labels": MAP_OR_LIST, "driver": STRING, "driver_opts": {"type": "object"},
                     "template_driver": STRING})
SCHEMA = _object({"version": STRING, "name": STRING, "include": {"type": "array"},
                  "services": {"type": ["object", "null"], "additionalProperties": SERVICE},
                  "networks": _map(_TOP_NETWORK), "volumes": _map(_TOP_VOLUME), "secrets": _map(_TOP_FILE),
                  "configs": _map(_TOP_FILE)})

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
               "null": "null", "object": "a mapping", "array": "a list"}
_CHECKS = {"string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
           "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
           "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
           "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)}


def type_word(value):
    return next((_TYPE_WORDS[t] for t in ("boolean", "integer", "number", "string", "null", "object", "array")
                 if _CHECKS[t](value)), type(value).__name__)


def small_validator(schema, instance, path=()):
    """(path, keyword, keyword's value, instance, schema) of every violation: the subset of
    JSON Schema that SCHEMA uses, for a controller without the jsonschema package."""
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_CHECKS[t](instance) for t in types):
            yield list(path), "type", schema["type"], instance, schema
            return
    if "enum" in schema and instance not in schema["enum"]:
        yield list(path), "enum", schema["enum"], instance, schema
    if "pattern" in schema and isinstance(instance, str) and not re.search(schema["pattern"], instance):
        yield list(path), "pattern", schema["pattern"], instance, schema
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            yield from small_validator(schema["items"], item, tuple(path) + (index,))
    if isinstance(instance, dict):
        yield from _object_errors(schema, instance, path)


def _object_errors(schema, instance, path):
    if [k for k in schema.get("required", ()) if k not in instance]:
        yield list(path), "required", schema["required"], instance, schema
    properties, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if key in properties:
            sub = properties[key]
        elif [p for p in patterns if re.search(p, str(key))]:
            sub = patterns[[p for p in patterns if re.search(p, str(key))][0]]
        elif extra is False:
            yield list(path), "additionalProperties", False, instance, schema
            continue
        else:
            sub = extra if isinstance(extra, dict) else {}
        yield from small_validator(sub, value, tuple(path) + (key,))


_JSONSCHEMA = Draft7Validator(SCHEMA) if Draft7Validator is not None else None


def schema_errors(document, use_jsonschema=True, report=None):
    """The violations of compose-spec's own schema (spec.py) when it can be had, else of
    the compact SCHEMA (by jsonschema when importable), as small_validator gives them. When
    compose-spec's schema was wanted but is missing, `report` is told so in a warning."""
    if use_jsonschema:
        validator, where = spec_validator()
        if validator is not None:
            return spec_errors(validator, document)
        if report is not None:
            report.warn([], "validated by the importer's compact schema, not compose-spec's (%s): a file Compose "
                            "refuses may pass" % where)
    if use_jsonschema and _JSONSCHEMA is not None:
        return [(list(e.absolute_path), e.validator, e.validator_value, e.instance, e.schema)
                for e in _JSONSCHEMA.iter_errors(document)]
    return list(small_validator(SCHEMA, document))


def schema_problems(document, report, use_jsonschema=True):
    """One problem per violation, worded the same whichever validator found it."""
    found = []
    for path, keyword, expected, instance, schema in schema_errors(document, use_jsonschema, report):
        if keyword == "additionalProperties":
            known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
            names = [p for p in patterns if p != "^x-"]   # a pattern that names take (services, networks)
            found.extend((path + [key], "is not a valid name (must match %s)" % names[0] if names else "unknown key")
                         for key in instance
                         if key not in known and not any(re.search(p, str(key)) for p in patterns))
        elif keyword == "type":
            expected = [expected] if isinstance(expected, str) else expected
            found.append((path, "must be %s, got %s" % (" or ".join(_TYPE_WORDS[t] for t in expected), type_word(instance))))
        elif keyword == "enum":
            found.append((path, "must be one of %s, got %r" % (", ".join(str(v) for v in expected), instance)))
        elif keyword == "required":
            found.extend((path + [key], "is required") for key in expected if key not in instance)
        else:
            found.append((path, "%r is not valid here (%s)" % (instance, keyword)))
    found = set((tuple(p), m) for p, m in found)
    # compose-spec's unevaluatedProperties also names a key whose value failed: its own problem says why.
    found = [(p, m) for p, m in found if m != "unknown key" or not any(
        q[:len(p)] == p and (q, n) != (p, m) for q, n in found)]
    for path, message in sorted(found, key=lambda item: (str(item[0]), item[1])):
        report.problem(list(path), message)
