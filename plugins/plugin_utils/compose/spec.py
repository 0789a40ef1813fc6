# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compose spec: the compose-spec JSON schema itself, as the importer validates with it.

The schema is not copied into this collection: it is read, at run time, from the Python
package that ships it as package data, check-jsonschema (its vendored, regularly refreshed
copy of compose-spec's schema, Apache-2.0, at check_jsonschema/builtin_schemas/vendor/).
Only that file is read; check_jsonschema's code is never imported. The schema file shipped
by Debian's docker-compose 1.29 is not used: from 2021, it refuses what Compose accepts today
(`name`, `include`, `develop`, `healthcheck.start_interval`, interpolated numbers).

Where the package or `jsonschema` is missing, schema.py's compact schema validates,
and the import says so in a warning.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import json
import os

try:
    from jsonschema.validators import validator_for
except ImportError:   # the compact schema validates instead
    validator_for = None

PACKAGE = "check_jsonschema"
SCHEMA_PATH = ("builtin_schemas", "vendor", "compose-spec.json")
_LOADED = {}


def schema_path():
    """The compose-spec schema file of the installed package, or None; the package is not imported."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(base, *SCHEMA_PATH)
        if os.path.isfile(path):
            return path
    return None


def _load():
    if validator_for is None:
        return None, "the jsonschema package is not importable"
    path = schema_path()
    if path is None:
        return None, "check-jsonschema, the package that ships compose-spec's schema, is not installed"
    try:
        with open(path, encoding="utf-8") as handle:
            schema = json.load(handle)
        return validator_for(schema)(schema), path
    except (IOError, OSError, ValueError) as exc:
        return None, "%s cannot be read: %s" % (path, exc)


def spec_validator():
    """(validator, the schema file) or (None, why not); loaded once per process."""
    if "validator" not in _LOADED:
        _LOADED["validator"] = _load()
    return _LOADED["validator"]


def _branches(error):
    """The errors of each alternative of a oneOf/anyOf, by alternative."""
    found = {}
    for sub in error.context:
        found.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(found.values())


def _mismatch(errors):
    """The types an alternative wanted, when it failed on the value's type itself (else None)."""
    types = [e.validator_value for e in errors if e.validator == "type" and not e.relative_path]
    if not types:
        return None
    return [t for value in types for t in ([value] if isinstance(value, str) else value)]


def flattened(error):
    """A oneOf/anyOf failure as what a reader needs: when no alternative takes the value's
    type, one type error listing them all; else the errors of the alternatives that do."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        yield error
        return
    branches = _branches(error)
    typed = [errors for errors in branches if _mismatch(errors) is None]
    if not typed:
        wanted = []
        for errors in branches:
            wanted += [t for t in _mismatch(errors) if t not in wanted]
        error.validator, error.validator_value = "type", wanted
        yield error
        return
    for errors in typed[:1]:   # the first alternative of the right type, as compose's own order
        for sub in errors:
            yield from flattened(sub)


def _declared(schema, root, seen=()):
    """The property names a schema and the sub-schemas it combines (allOf, $ref) declare, and
    its key patterns: an unevaluated key among them failed its own check, it is not unknown."""
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/") and ref not in seen:
        schema = dict(schema, allOf=list(schema.get("allOf", [])) + [root["$defs"].get(ref[len("#/$defs/"):], {})])
        seen = seen + (ref,)
    names, patterns = set(schema.get("properties", {})), set(schema.get("patternProperties", {}))
    for sub in schema.get("allOf", []):
        more = _declared(sub, root, seen)
        names, patterns = names | more[0], patterns | more[1]
    return names, patterns


def spec_errors(validator, document):
    """(path, keyword, keyword's value, instance, schema) of every violation of compose-spec; an
    unevaluatedProperties one as an additionalProperties one over all that its schema declares."""
    found = []
    for error in validator.iter_errors(document):
        for e in flattened(error):
            schema = e.schema
            if e.validator == "unevaluatedProperties" and isinstance(e.instance, dict):
                names, patterns = _declared(e.schema, validator.schema)
                schema = {"properties": dict.fromkeys(names), "patternProperties": dict.fromkeys(patterns)}
                e.validator = "additionalProperties"
            found.append((list(e.absolute_path), e.validator, e.validator_value, e.instance, schema))
    return found
