"""The JSON Schema check of a state map (structure and types), with located problems."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from .source import Positions

SECTIONS = ("styles", "params", "states", "stingers")   # merged by name across includes


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("scorewright.state_maps").joinpath("schema.json").read_text())


@lru_cache(maxsize=1)
def include_schema() -> dict:
    """Included files hold sections only: no version, no required keys."""
    s = copy.deepcopy(schema())
    s["required"] = []
    s["properties"] = {k: v for k, v in s["properties"].items()
                       if k in (*SECTIONS, "rules", "events", "includes")}
    return s



def schema_problems(data: Any, pos: Positions, the_schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(the_schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - set(allowed)):
                pos.problem(path + (extra,), f"unknown key '{extra}'; expected one of: "
                            f"{', '.join(allowed)}", key=True)
        elif err.validator == "propertyNames":
            pos.problem(path + (err.instance,), f"bad name {err.instance!r}: names use letters, "
                        "digits and '_' and do not start with a digit", key=True)
        elif err.validator == "required":
            pos.problem(path, err.message.replace("is a required property", "is missing (required)"))
        else:
            value = json.dumps(err.instance, default=str)
            if len(value) > 60:
                value = value[:57] + "..."
            pos.problem(path, f"bad value {value}: {_expected(err)}")


def _expected(err: jsonschema.ValidationError) -> str:
    s = err.schema
    if "enum" in s:
        return "expected one of " + ", ".join(json.dumps(v) for v in s["enum"])
    if "const" in s:
        return f"expected {json.dumps(s['const'])}"
    if err.validator in ("anyOf", "oneOf"):
        return "expected " + (s.get("description") or "a different kind of value")
    if err.validator == "type":
        return f"expected {'a ' + s['type'] if isinstance(s['type'], str) else s['type']}"
    return err.message

