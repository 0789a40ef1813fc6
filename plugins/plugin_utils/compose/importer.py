# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""from_compose: a Docker Compose file read as `docker compose config` reads it, into the
stack role's declaration (rules.py infers the resources and connections).

This file parses (YAML 1.2-like scalars, anchors and merge keys), interpolates (`${VAR:-x}`
and friends, from `env` and then a `.env` in base_dir), validates (compose-spec's own schema,
spec.py, else the compact one of schema.py), then resolves `extends`, `profiles` and each service's env (env_file,
environment); service.py reads the other fields of each service into one form. Every problem found is reported at
once in one ComposeError naming the source, the service and the key. Pure controller code:
no Docker engine is asked, and the file is data, never code (guard.py): bounded in size
and expansion, no read outside base_dir (or the allowed paths), no grant of the host unless
allowed, no label of clockwork's own.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import yaml

from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.extension import (
    EXTENSION, ExportedDeclaration, extension_problems)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.guard import (
    GRANTS, Grants, InputBounds, ProjectFiles, label_problems)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.rules import declaration
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.schema import schema_problems, type_word
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.service import (
    as_mapping, check_dependencies, read_service, text_of)


class ComposeError(Exception):
    """A compose file that cannot be imported: every problem, each naming where it is."""

    def __init__(self, source, problems):
        self.source = source
        self.problems = list(problems)
        super(ComposeError, self).__init__("%s: %s" % (source, "; ".join(self.problems)))


# -- YAML: the scalars of YAML 1.2, as Compose (go-yaml v3) reads them -------------
# PyYAML's YAML 1.1 would read `22:22` as 1342 and `no` as False.

try:
    _BASE_LOADER = yaml.CSafeLoader
except AttributeError:
    _BASE_LOADER = yaml.SafeLoader
_RETYPED = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")


class ComposeLoader(_BASE_LOADER):
    yaml_implicit_resolvers = dict((first, [r for r in resolvers if r[0] not in _RETYPED])
                                   for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items())


ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"),
                                    list("-+0123456789"))
ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def load(text, source):
    if not isinstance(text, str):
        raise ComposeError(source, ["must be the compose file's text, got %s" % type_word(text)])
    # A plain str: the C loader refuses str subclasses (ansible-core 2.17's and 2.18's unsafe text,
    # whose own encode and decode give unsafe text again: str's are called).
    text = bytes.decode(str.encode(text, "utf-8", "surrogatepass"), "utf-8", "replace")
    too_big = InputBounds.text_problem(text)
    if too_big:
        raise ComposeError(source, [too_big])
    try:
        document = yaml.load(text, Loader=ComposeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        raise ComposeError(source, ["invalid YAML%s: %s" % (where, getattr(exc, "problem", None) or exc)])
    if not isinstance(document, dict):
        raise ComposeError(source, ["the top level must be a mapping, got %s" % type_word(document)])
    too_many = InputBounds.node_problem(document)
    if too_many:
        raise ComposeError(source, [too_many])
    odd_keys = InputBounds.key_problems(document)
    if odd_keys:
        raise ComposeError(source, odd_keys)
    return document


class Report(object):
    """Problems (fatal, raised together) and warnings (returned), each naming its place."""

    def __init__(self, source):
        self.source = source
        self.problems = []
        self.warnings = []

    def problem(self, path, message):
        self.problems.append("%s: %s" % (location(path), message) if path else message)

    def warn(self, path, message):
        line = "%s: %s" % (location(path), message) if path else message
        if line not in self.warnings:
            self.warnings.append(line)

    def raise_if_any(self):
        if self.problems:
            raise ComposeError(self.source, self.problems)


def location(path):
    """['services', 'api', 'ports', 0] -> 'service api: ports[0]'."""
    path = list(path)
    head = ""
    if len(path) >= 2 and path[0] == "services":
        head, path = "service %s" % path[1], path[2:]
    key = ""
    for part in path:
        key += "[%d]" % part if isinstance(part, int) else ("." if key else "") + str(part)
    return "%s: %s" % (head, key) if head and key else head or key


# -- interpolation -------------------------------------------------------------

_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def interpolate(text, lookup, path, report):
    """`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+x}`,
    `${VAR+x}`, `$VAR` and `$$` (a literal `$`), nested in defaults as Compose allows."""
    out, i = [], 0
    while i < len(text):
        start = text.find("$", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        following = text[start + 1:start + 2]
        if following == "$":
            out.append("$")
            i = start + 2
        elif following == "{":
            end = _closing_brace(text, start + 2)
            if end < 0:
                report.problem(path, "an unclosed ${ (use $$ for a literal $)")   # the value may be a secret
                return text
            out.append(_expression(text[start + 2:end], lookup, path, report))
            i = end + 1
        else:
            name = _VAR.match(text, start + 1)
            out.append(_value(name.group(), lookup, path, report) if name else "$")
            i = name.end() if name else start + 1
    return "".join(out)


def _closing_brace(text, i):
    depth = 0
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _value(name, lookup, path, report):
    if name not in lookup:
        report.warn(path, "variable %s is not set: a blank string" % name)
        return ""
    return lookup[name]


def _expression(body, lookup, path, report):
    name = _VAR.match(body)
    rest = body[name.end():] if name else body
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if not name or (rest and operator is None):
        # Not even the name: in a .env value, the braces may be part of a secret.
        report.problem(path, "invalid interpolation: ${ must be followed by NAME}, NAME:-default}, NAME:?error} and "
                             "the like (use $$ for a literal $)")
        return ""
    if operator is None:
        return _value(name.group(), lookup, path, report)
    name, word = name.group(), rest[len(operator):]
    value = lookup.get(name)
    present = value is not None and (value != "" or ":" not in operator)
    if operator.endswith("-"):
        return value if present else interpolate(word, lookup, path, report)
    if operator.endswith("+"):
        return interpolate(word, lookup, path, report) if present else ""
    if not present:
        report.problem(path, "required variable %s is %s: %s" % (
            name, "empty" if value == "" else "not set", interpolate(word, lookup, path, report) or "no message"))
        return ""
    return value


def interpolated(node, lookup, path, report):
    """The document with every string interpolated; extension fields (x-) left as they are, but
    x-clockwork, whose secrets are ${VAR} like the rest of the file to_compose writes."""
    if isinstance(node, dict):
        return dict((key, value if str(key).startswith("x-") and key != EXTENSION
                     else interpolated(value, lookup, path + [key], report))
                    for key, value in node.items())
    if isinstance(node, list):
        return [interpolated(value, lookup, path + [index], report) for index, value in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, lookup, path, report)
    return node


# -- dotenv files: .env and env_file ---------------------------------------------

def parse_dotenv(text, lookup, path, report):
    """NAME=VALUE lines -> {name: value, or None for a bare NAME (taken from the environment)}."""
    values, scope = {}, dict(lookup)   # a value may use the ones above it
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", name):
            report.problem(path, "line %d is not NAME=VALUE" % number)
            continue
        values[name] = _dotenv_value(raw.strip(), scope, path + [name], report) if sep else None
        if values[name] is not None:
            scope.setdefault(name, values[name])
    return values


def _dotenv_value(raw, lookup, path, report):
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("\\'", "'")   # single quotes: literal but \', as Compose v2 reads them
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = re.sub(r'\\([nrt"\\$])', lambda m: {"n": "\n", "r": "\r", "t": "\t", "$": "$$"}.get(m.group(1), m.group(1)),
                     raw[1:-1])
    else:
        raw = re.split(r"\s+#", raw, 1)[0].rstrip()
    return interpolate(raw, lookup, path, report)


def environment(env, files, report):
    """What interpolation reads: `env` first, then a `.env` in base_dir."""
    lookup = dict((str(k), text_of(v)) for k, v in (env or {}).items())
    dotenv = os.path.join(files.base_dir, ".env") if files.base_dir else None
    if dotenv and os.path.lexists(dotenv):
        text, why = files.read(".env")
        if why:
            report.problem([".env"], why)
        values = parse_dotenv(text, lookup, [".env"], report) if text is not None else {}
        for name, value in values.items():
            if name not in lookup and value is not None:
                lookup[name] = value
    return lookup


# -- extends, profiles ---------------------------------------------------------------

_APPENDED = ("ports", "expose", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "external_links", "env_file",
             "devices")
_MAPPINGS = ("environment", "labels", "networks", "depends_on", "extra_hosts")   # list or mapping forms


def _merged(base, override):
    """Compose's merge of a service over the one it extends: mappings merged, some lists
    appended, mounts and secrets by target or source, everything else replaced."""
    result = dict(base)
    for key, value in override.items():
        if result.get(key) is None or value is None:
            result[key] = value
        elif key in _MAPPINGS:
            result[key] = dict(as_mapping(result[key]), **as_mapping(value))
        elif isinstance(value, dict) and isinstance(result[key], dict):
            result[key] = dict(result[key], **value)
        elif key in _APPENDED and isinstance(value, list) and isinstance(result[key], list):
            result[key] = result[key] + [v for v in value if v not in result[key]]
        elif key in ("volumes", "secrets", "configs") and isinstance(value, list) and isinstance(result[key], list):
            mine = set(_reference_key(key, v) for v in value)
            result[key] = [v for v in result[key] if _reference_key(key, v) not in mine] + value
        else:
            result[key] = value
    return result


def _reference_key(key, item):
    """What identifies a mount (its target) or a secret (its source) when merging."""
    if isinstance(item, dict):
        return item.get("target") if key == "volumes" else item.get("source")
    parts = str(item).split(":")
    return parts[min(1, len(parts) - 1)] if key == "volumes" else parts[0]


def resolve_extends(services, report):
    """[(name, the service with what it extends merged in)], in file order."""
    done = {}

    def base_of(name, extends, chain):
        base_name = extends if isinstance(extends, str) else extends["service"]
        where = ["services", name, "extends"]
        if isinstance(extends, dict) and extends.get("file"):
            report.warn(where + ["file"], "%s not read: only extends within the same file; the service is read "
                                          "without it" % extends["file"])
        elif base_name not in services:
            report.problem(where + ["service"], "unknown service %s" % base_name)
        elif base_name in chain:
            report.problem(where, "cycle %s" % " -> ".join(chain + [base_name]))
        else:
            base = dict(resolve(base_name, chain + [base_name]))
            if base.pop("depends_on", None):
                report.warn(where, "the depends_on of %s is not inherited" % base_name)
            return base
        return {}

    def resolve(name, chain):
        if name not in done:
            raw = services[name]
            own = dict((k, v) for k, v in raw.items() if k != "extends")
            done[name] = _merged(base_of(name, raw["extends"], chain), own) if raw.get("extends") else own
        return done[name]

    return [(name, resolve(name, [name])) for name in services]


def selected(raw, profiles):
    """A service with profiles runs only when one of them is selected (`*`: all)."""
    wanted = raw.get("profiles") or []
    return not wanted or "*" in profiles or bool(set(wanted) & set(profiles))


# -- the project ---------------------------------------------------------------------

def _env_files(raw):
    given = raw.get("env_file") or []
    for entry in [given] if isinstance(given, str) else given:
        yield (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))


def service_env(name, raw, lookup, files, report):
    """env_file entries, then environment over them; a bare NAME takes its value from the
    environment, or is left out as Compose does."""
    env, where = {}, ["services", name, "env_file"]
    for path, required in _env_files(raw):
        outside = files.outside(path) if files.base_dir else None
        if not files.base_dir:
            report.warn(where, "%s not read: no base_dir" % path)
        elif outside:
            report.problem(where, outside)
        elif os.path.isfile(files.resolve(path)[1]):
            text, why = files.read(path)
            if why:
                report.problem(where, why)
            else:
                env.update(parse_dotenv(text, lookup, where, report))
        elif required:
            report.problem(where, "%s does not exist in %s" % (path, files.base_dir))
    env.update(as_mapping(raw.get("environment")))
    result = {}
    for key, value in env.items():
        if value is not None:
            result[str(key)] = text_of(value)
        elif key in lookup:
            result[str(key)] = lookup[key]
        else:
            report.warn(["services", name, "environment", key], "no value and not in env: left out, as Compose does")
    return result


def secret_reader(secrets, files):
    """secret name -> (its content, or None, and why not), read only when a rule asks."""
    def read(name):
        spec = secrets.get(name) or {}
        if not files.base_dir:
            return None, "no base_dir"
        text, why = files.read(spec["file"])
        return (text.rstrip("\r\n"), None) if why is None else (None, why)
    return read


def guard_service(name, service, sections, files, grants, report):
    """A selected service's labels, binds and file references, and the grants it may keep."""
    label_problems(["services", name, "labels"], service.get("labels"), report)
    for mount in service["volumes"]:
        if mount["type"] == "bind":
            grants.bind(mount["where"], mount["source"])
    for kind in ("secrets", "configs"):
        for index, (source, _target, _item) in enumerate(service[kind]):
            path = (sections[kind].get(source) or {}).get("file")
            outside = files.outside(path) if path and files.base_dir else None
            if outside:
                report.problem(["services", name, kind, index], "%s %s: %s" % (kind[:-1], source, outside))
    service["grants"] = grants.service(name, service)


def choose_project_name(given, document, lookup, base_dir, report):
    """Compose's order: the argument, COMPOSE_PROJECT_NAME, the file's `name` (or the stack it was
    exported from), base_dir's name."""
    if given:
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", given):
            report.problem(["project_name"], "%r must be lower-case letters, digits, '-' and '_', starting with a "
                                             "letter or digit" % given)
        return given
    exported = document.get(EXTENSION) if isinstance(document.get(EXTENSION), dict) else {}
    for candidate in (lookup.get("COMPOSE_PROJECT_NAME"), document.get("name"), exported.get("stack"),
                      os.path.basename(os.path.normpath(base_dir)) if base_dir else None):
        name = re.sub(r"^[^a-z0-9]+", "", re.sub(r"[^a-z0-9_-]", "", str(candidate or "").lower()))
        if name:
            return name
    report.warn(["name"], "no project_name, name or base_dir: the project is named compose")
    return "compose"


def read_project(document, project_name, lookup, profiles, files, report, allow=None):
    """What rules.py needs: the selected services (env resolved), the top-level sections."""
    services = document.get("services") or {}
    for name in services:
        if not re.match(r"^[a-zA-Z0-9._-]+$", str(name)):
            report.problem(["services", name], "is not a valid service name (letters, digits, '.', '_' and '-')")
    resolved = resolve_extends(services, report)
    check_dependencies(resolved, report)
    sections = dict((key, dict(document.get(key) or {})) for key in ("networks", "volumes", "secrets", "configs"))
    chosen, grants = [], Grants(allow, files, report)
    for name, raw in resolved:
        if selected(raw, profiles):
            service = read_service(name, raw, sections, service_env(name, raw, lookup, files, report), report)
            guard_service(name, service, sections, files, grants, report)
            chosen.append((name, service))
        else:
            report.warn(["services", name, "profiles"], "none selected of %s; left out" % ", ".join(raw["profiles"]))
    for key in ("version", "include"):
        if key in document:
            report.warn([key], "obsolete, ignored" if key == "version" else "other files are not read; left out")
    if EXTENSION in document:   # written by to_compose, or by anyone: checked as any declaration
        extension_problems(document[EXTENSION], report)
    return dict(sections, name=choose_project_name(project_name, document, lookup, files.base_dir, report),
                clockwork=document.get(EXTENSION), files=files, grants=grants,
                services=chosen, base_dir=files.base_dir, read_secret=secret_reader(sections["secrets"], files))


def from_compose(text, project_name=None, env=None, profiles=None, base_dir=None, source="compose file",
                 use_jsonschema=True, allowed_paths=None, allow=None):
    """A compose file's text -> {resources, connections, warnings} in the stack role's format.
    Raises ComposeError listing every problem found. use_jsonschema=False: the small validator.
    allowed_paths: directories besides base_dir whose files it may read; allow: the grants of
    the host it may keep (guard.GRANTS)."""
    report = Report(source)
    unknown = [g for g in allow or [] if g not in GRANTS]
    if unknown:
        raise ComposeError(source, ["clockwork_compose_allow: %s is not one of %s" % (
            ", ".join(map(str, unknown)), ", ".join(GRANTS))])
    document = load(text, source)
    files = ProjectFiles(base_dir, allowed_paths)
    lookup = environment(env, files, report)
    document = interpolated(document, lookup, [], report)
    interpolation_problems = len(report.problems)
    schema_problems(document, report, use_jsonschema)
    if len(report.problems) > interpolation_problems:
        report.raise_if_any()   # the rest reads a document of the schema's shape
    # A variable that could not be interpolated left its text in place: the rest of the file is
    # still read, so that its problems (a cycle, an unknown service) are told in the same error.
    if profiles is None:
        profiles = [p for p in lookup.get("COMPOSE_PROFILES", "").split(",") if p]
    project = read_project(document, project_name, lookup, list(profiles), files, report, allow)
    if project["clockwork"] is not None:
        report.raise_if_any()
        resources, connections = ExportedDeclaration(project, report).build()
    else:
        resources, connections = declaration(project, report)   # safe with problems: what is wrong was left out
    report.raise_if_any()
    return {"resources": resources, "connections": connections, "warnings": list(report.warnings)}
