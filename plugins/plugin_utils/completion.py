# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field completion for connections given a `description`: by a model when an endpoint
is configured, else by a deterministic local completer; every completion is recorded
in a lock file and reused, so reruns make no model call and change nothing.

User values always win. Every completed value passes the policy of completion_policy,
whoever produced it: a model's answer that fails is asked again, then completed locally;
a lock entry that fails is refused. A password is never asked of a model: one the `to`
resource declares is referenced in the lock file, never copied; only a generated one is stored."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import secrets

from ansible_collections.clockwork.connections.plugins.module_utils.common import connection_ends
from ansible_collections.clockwork.connections.plugins.module_utils.completion_rules import given
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.plugin_utils import completion_policy as policy
from ansible_collections.clockwork.connections.plugins.plugin_utils import llm
from ansible_collections.clockwork.connections.plugins.plugin_utils.lock_file import plain

# What a description may complete, per type, read from the registry of connection types: the
# fields, the type's argument spec (types, choices), and the narrower choices of its completion
# (a network driver a model may pick).
COMPLETABLE = dict((name, {"fields": kind.completable, "spec": kind.args,
                           "choices": kind.completion.narrower_choices if kind.completion else None})
                   for name, kind in CONNECTION_TYPES.items() if kind.completable)
JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "path": "string"}
INVALID_ANSWER_RETRIES = 2
# Slow, salted: a lock key may be public, and it must not test password guesses quickly.
FINGERPRINT_ROUNDS = 100000


class CompletionError(ValueError):
    """A completion that failed; a ValueError, like the JSON errors of an answer."""


def completable(kind):
    return COMPLETABLE[kind]["fields"] if kind in COMPLETABLE else ()


def choices_of(kind, field):
    entry = COMPLETABLE[kind]
    return (entry.get("choices") or {}).get(field) or entry["spec"][field].get("choices")


def _completion(kind):
    """The type's TypeCompletion, or None for a type without completable fields."""
    return CONNECTION_TYPES[kind].completion if kind in COMPLETABLE else None


def missing_fields(kind, params):
    """Fields to complete: only with a description, only those the seed lets a model fill."""
    if kind not in COMPLETABLE or not params.get("description"):
        return []
    skipped = _completion(kind).not_completed(params)
    return [f for f in completable(kind) if not given(params, f) and f not in skipped]


def needs_password(kind, params):
    """A described connection that implies a password: referenced or generated, never modelled."""
    return kind in COMPLETABLE and _completion(kind).needs_password(params)


def needs_completion(kind, params):
    return bool(missing_fields(kind, params)) or needs_password(kind, params)


def schema_for(kind, fields):
    """A JSON schema for just these fields, built from the module's argument spec."""
    spec = COMPLETABLE[kind]["spec"]
    properties = {}
    for field in fields:
        prop = {"type": JSON_TYPES.get(spec[field].get("type", "str"), "string")}
        if choices_of(kind, field):
            prop["enum"] = list(choices_of(kind, field))
        properties[field] = prop
    return {"type": "object", "properties": properties, "required": list(fields), "additionalProperties": False}


def type_problem(kind, field, value):
    """Why `value` does not fit the argument spec of `field` (type, choices), or None."""
    expected = COMPLETABLE[kind]["spec"][field].get("type", "str")
    if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be an integer, got %r" % (value,)
    if expected in ("str", "path") and not isinstance(value, str):
        return "must be a string, got %r" % (value,)
    choices = choices_of(kind, field)
    if choices and value not in choices:
        return "must be one of %s, got %r" % (", ".join(choices), value)
    return None


def value_problems(kind, fields, values, situation):
    """[(field, why)]: a missing field, a wrong type or choice, then the policy."""
    found = [(f, "is missing") for f in fields if f not in values]
    found += [(f, type_problem(kind, f, values[f])) for f in fields if f in values and type_problem(kind, f, values[f])]
    if found:
        return found
    return policy.problems(kind, dict((f, values[f]) for f in fields), situation)


def describe(found):
    return "; ".join("%s %s" % (field, why) for field, why in found)


def validate_answer(kind, fields, answer, situation=None):
    """The answer's values for `fields`, checked against the spec and the policy; else CompletionError."""
    if not isinstance(answer, dict):
        raise CompletionError("the answer is not a JSON object")
    found = value_problems(kind, fields, answer, situation or policy.Situation(None))
    if found:
        raise CompletionError(describe(found))
    return dict((f, answer[f]) for f in fields)


# -- the deterministic local completer -----------------------------------------

def local_candidates(kind, params, context):
    """field -> the values to try, best first. Same input, same output (the type's completion.py)."""
    completion = _completion(kind)
    return completion.candidates(params, context) if completion else {}


def local_completion(kind, fields, params, context, situation=None, connection=None):
    """Fill `fields` with the first candidate of each that passes the policy."""
    candidates = local_candidates(kind, params, context)
    values = {}
    for field in sorted(fields, key=lambda f: f != "volume_name"):   # a mount path may be that volume's
        tried = []
        for candidate in candidates[field]:
            found = value_problems(kind, [field], dict(values, **{field: candidate}), situation) if situation else []
            if not found:
                values[field] = candidate
                break
            tried.append(describe(found))
        else:
            raise CompletionError("%s: no acceptable %s could be completed from the description (%s); give %s" % (
                connection or kind, field, "; ".join(tried), field))
    return values


# -- the model ----------------------------------------------------------------

RULES = ("Rules: a connection_string_template uses only the placeholders {user}, {password}, {host}, {port} and "
         "{database}, keeps the server as {host}:{port}, and uses the engine's scheme; a mount_path is an absolute "
         "path outside system directories; names are Docker names.")


def model_completion(endpoint, kind, fields, params, context, connection, situation):
    """Ask the model for `fields`; an answer that is invalid or breaks the policy is asked again
    with the problem, a bounded number of times. Returns (values, None) or (None, the last problem)."""
    given_fields = dict((k, v) for k, v in params.items()
                        if v is not None and k not in ("password", "description", "llm", "lock_file", "content")
                        and not k.startswith("_"))
    question = {"description": params["description"], "connection_type": kind,
                "from": context.get("from"), "to": context.get("to"),
                "given_fields": given_fields, "missing_fields": list(fields)}
    question.update(_completion(kind).question(params))
    messages = [
        {"role": "system", "content": "You complete the missing fields of a %s connection between two Docker "
                                      "containers in an Ansible collection. Answer with JSON matching the schema, "
                                      "nothing else. %s" % (kind, RULES)},
        {"role": "user", "content": json.dumps(plain(question), sort_keys=True, default=str)},
    ]
    schema = schema_for(kind, fields)
    problem = None
    for _attempt in range(1 + INVALID_ANSWER_RETRIES):
        try:
            text = llm.chat_json(endpoint, messages, schema)
        except llm.LLMError as exc:
            raise CompletionError("%s: the model at %s failed: %s" % (connection, endpoint["base_url"], exc))
        try:
            return validate_answer(kind, fields, json.loads(text), situation), None
        except CompletionError as exc:
            problem = str(exc)
        except ValueError as exc:
            problem = "the answer is not JSON (%s): %r" % (exc, (text or "")[:200])
        messages += [{"role": "assistant", "content": text},
                     {"role": "user", "content": "That answer is invalid: %s. Answer again with JSON that matches "
                                                 "the schema and the rules." % problem}]
    return None, problem


# -- context, without secret values ---------------------------------------------

def endpoint_context(resource):
    """What the model may know of an endpoint: name, image, ports, env names (never values)."""
    if not resource:
        return None
    return plain({"name": resource.get("name"), "kind": resource.get("type", "container"),
                  "image": resource.get("image"), "ports": [str(p) for p in resource.get("ports") or []],
                  "env_names": sorted(resource.get("env") or {})})


def password_reference(kind, context, params):
    """(reference, value) for the password `to` declares (in the env its completion names), or None."""
    env = context.get("to_env") or {}
    for name in _completion(kind).password_env(params):
        if env.get(name) is not None and str(env[name]) != "":
            return "to env %s" % name, str(env[name])
    return None


def fingerprint(connection, secret):
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), ("clockwork.connections %s" % connection).encode(
        "utf-8"), FINGERPRINT_ROUNDS).hex()


def lock_key(connection, params, fields, reference=None):
    """A digest of what was given: the entry is reused while it stays the same. A referenced
    password is in it as a slow fingerprint, so a rotated password completes afresh."""
    basis = plain(dict((k, v) for k, v in params.items() if v is not None and k not in ("password", "llm", "lock_file")))
    material = [basis, sorted(fields)]
    if reference:
        material.append([reference[0], fingerprint(connection, reference[1])])
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- one connection -------------------------------------------------------------

def _refuse(lock, connection, what):
    return CompletionError("lock file %s: entry '%s': %s; fix or delete the entry to complete it afresh" % (
        lock.path, connection, what))


def reuse(kind, fields, entry, lock, connection, situation, password_needed, reference):
    """The values of a lock entry, once they pass everything a fresh answer must pass."""
    stored = dict(entry.get("fields") or {})
    secret = stored.pop("password", None)
    for field in sorted(stored):
        if field not in completable(kind):
            raise _refuse(lock, connection, "field %s is not a field a description completes" % field)
    found = value_problems(kind, fields, stored, situation)
    if found:
        field, why = found[0]
        raise _refuse(lock, connection, "field %s %s" % (field, why))
    values = dict((f, stored[f]) for f in fields)
    if password_needed:
        if entry.get("password_from"):
            if not reference or entry["password_from"] != reference[0]:
                raise _refuse(lock, connection, "field password_from refers to %r, which the `to` resource does "
                                                "not declare" % entry["password_from"])
            values["password"] = reference[1]
        elif secret is not None and reference:
            raise _refuse(lock, connection, "field password copies the password the `to` resource declares; the "
                                            "entry must refer to it (password_from: %s)" % reference[0])
        elif secret is not None:
            values["password"] = lock.reveal(secret, connection, "password")
        else:
            raise _refuse(lock, connection, "field password is missing")
    return values


def complete(kind, params, context, lock, endpoint, connection, situation=None):
    """Complete one connection's missing fields. Returns (params, completion report or None).
    A new entry is put in `lock` (a dry run's lock file only records it)."""
    fields = missing_fields(kind, params)
    password_needed = needs_password(kind, params)
    if not fields and not password_needed:
        return params, None
    situation = situation or policy.Situation(context.get("stack") or params.get("stack"), params)
    reference = password_reference(kind, context, params) if password_needed else None
    digest = lock_key(connection, params, fields, reference)
    entry = lock.get(connection, digest)
    report = {}
    reused = entry is not None
    if reused:
        values = reuse(kind, fields, entry, lock, connection, situation, password_needed, reference)
    else:
        values, source = None, "local"
        if fields and endpoint:
            values, problem = model_completion(endpoint, kind, fields, params, context, connection, situation)
            if values is None:
                report["fallback"] = "%s: the model at %s gave no acceptable answer in %d tries (last: %s); " \
                                     "completed locally" % (connection, endpoint["base_url"],
                                                            1 + INVALID_ANSWER_RETRIES, problem)
            else:
                source = "llm"
        if values is None:
            values = local_completion(kind, fields, params, context, situation, connection)
        entry = {"input": digest, "source": source, "fields": dict(values)}
        if password_needed and reference:
            entry["password_from"] = reference[0]
            values["password"] = reference[1]
        elif password_needed:
            values["password"] = secrets.token_urlsafe(24)
            entry["fields"]["password"] = lock.seal(values["password"])
            entry["secret_fields"] = ["password"]
        lock.put(connection, entry)
    completed = dict(params)
    completed.update(values)
    report.update(fields=plain(dict((k, v) for k, v in values.items() if k != "password")),
                  source=entry["source"], from_lock=reused)
    if password_needed:
        if entry.get("password_from"):
            report["password"] = "from %s, resolved at run time (the lock file holds the reference only)" % \
                entry["password_from"]
        elif lock.encrypted:
            report["password"] = "generated locally, in the vault-encrypted lock file"
        elif isinstance(entry["fields"].get("password"), str):
            report["password"] = "generated locally, in the lock file in clear text (%s): run with a vault " \
                                 "password to store it encrypted" % clear_text_mode(lock)
        else:
            report["password"] = "generated locally, vault-encrypted in the lock file"
    return completed, report


def clear_text_mode(lock):
    """The lock file's mode as the report states it: the file is made 0600 before it is relied on
    to keep a clear password (a git checkout leaves it 0644). A dry run's lock file (--check) only
    records that change: the file keeps its mode, and the report says so."""
    mode = lock.protect()
    if mode not in (None, 0o600):
        return "mode %04o now, made 0600 when run without --check" % mode
    return "mode %04o" % (0o600 if mode is None else mode)   # a new file is created 0600


def warnings(reports):
    """The lines a user must see: completions that fell back from the model."""
    if not reports:
        return []
    if "fields" in reports:
        reports = {"": reports}
    return [r["fallback"] for _name, r in sorted(reports.items()) if r.get("fallback")]


# -- a whole stack ----------------------------------------------------------------

def _to_is_container(connection, resources):
    target = resources.get(connection_ends(connection)[1]) or {}
    return target.get("type", "container") == "container"


def _mounts_of(container, index, resources, connections):
    """(path, source, what) of every other mount the stack gives `container`."""
    mounts = []
    for mount in (resources.get(container) or {}).get("mounts") or []:
        mounts.append((mount.get("target"), mount.get("source"), "%s's declared mount" % container))
    for other_index, other in enumerate(connections):
        kind = CONNECTION_TYPES.get(other.get("type"))
        if other_index == index or kind is None:
            continue
        ends = dict(zip(("from", "to"), connection_ends(other)))
        for end, path, source in kind.claimed_mounts(other, _to_is_container(other, resources)):
            if ends[end] == container:
                mounts.append((path, source, "%s %s -> %s" % (kind.name, ends["from"], ends["to"])))
    return mounts


def complete_stack(args, lock, endpoint, engine=None):
    """Complete every connection of a stack that needs it, in one pass; returns (args, reports or None).
    `engine`: what the policy reads of the Docker engine (completion_policy.EngineView by default)."""
    if args.get("state") == "absent":
        return args, None   # destroying goes by label: nothing to complete, no lock entry to judge
    stack = args.get("name")
    resources = dict((r.get("name"), r) for r in args.get("resources") or [])
    connections = [dict(c) for c in args.get("connections") or []]
    if isinstance(engine, bool):
        engine = None   # TRANSITIONAL: action/stack.py's call still passes check mode here; the lock file knows
    engine = engine or policy.EngineView()
    reports, seen = {}, {}
    for index, connection in enumerate(connections):
        kind = connection.get("type")
        source, target = connection_ends(connection)
        name = "%s %s -> %s" % (kind, source, target)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = "%s (%d)" % (name, seen[name])   # two alike connections keep one entry each
        to = resources.get(target) or {}
        params = dict(connection, from_resource=source, to_resource=target, to_kind=to.get("type", "container"))
        params.pop("from", None)
        params.pop("to", None)
        if not needs_completion(kind, params):
            continue
        context = {"from": endpoint_context(resources.get(source)), "to": endpoint_context(to or None),
                   "to_env": to.get("env") or {}, "stack": stack}
        occupied = []
        ends = {"from": source, "to": target}
        for end in _completion(kind).mounts_into(params, _to_is_container(params, resources)):
            occupied += _mounts_of(ends[end], index, resources, connections)
        situation = policy.Situation(stack, params, occupied, reserved=set(resources) - {target}, engine=engine)
        done, report = complete(kind, params, context, lock, endpoint, name, situation)
        done.pop("to_kind")
        connections[index] = done
        reports[name] = report
    args["connections"] = connections
    return args, reports or None
