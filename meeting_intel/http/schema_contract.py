"""Where the OpenAPI document must say more than drf-spectacular infers, so that
the document and the code agree (schemathesis checks both ways in the suite).

- ``no_nul_in_text``: text input refuses control characters other than tab,
  newline and carriage return (``install_strict_text``; DRF itself refuses only
  NUL), and a required text is not blank after trimming (DRF trims): every
  request-side string says so with a pattern.
- ``install_strict_text``: DRF's CharField turns a JSON number into text; a
  field the schema calls a string takes only a string.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ValidationError

# C0 and C1 controls but tab, newline and carriage return.
CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
NO_CONTROLS = f"^[^{CONTROLS}]*$"
# Request bodies whose serializers refuse unknown fields (jobs/api/serializers.py).
CLOSED_REQUESTS = ("JobCreateRequest", "JobUrlCreateRequest")
_CONTROL = re.compile(f"[{CONTROLS}]")
NOT_BLANK = f"^[^{CONTROLS}]*[^\\s{CONTROLS}][^{CONTROLS}]*$"


def _mark_strings(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _mark_strings(item)
        return
    if not isinstance(schema, dict):
        return
    if (
        schema.get("type") == "string"
        and "enum" not in schema
        and "pattern" not in schema
        and schema.get("format") != "binary"
    ):
        schema["pattern"] = NOT_BLANK if schema.get("minLength", 0) >= 1 else NO_CONTROLS
    for value in schema.values():
        _mark_strings(value)


def no_nul_in_text(result: dict[str, Any], generator: Any, request: Any, public: Any) -> Any:
    """drf-spectacular postprocessing hook: NUL-free patterns on request strings."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _mark_strings(component)
        if name in CLOSED_REQUESTS:
            component["additionalProperties"] = False
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("query", "path"):
                    _mark_strings(parameter.get("schema"))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _mark_strings(content.get("schema"))
    return result


def install_strict_text() -> None:
    """Make DRF's CharField (and its URL, regex, slug… subclasses) take only strings,
    without control characters other than tab, newline and carriage return."""
    from rest_framework import fields

    if getattr(fields.CharField.to_internal_value, "strict_text", False):
        return
    loose = fields.CharField.to_internal_value

    def to_internal_value(self: fields.CharField, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if _CONTROL.search(data):
            raise ValidationError("Control characters are not allowed.")
        return loose(self, data)

    to_internal_value.strict_text = True  # type: ignore[attr-defined]
    fields.CharField.to_internal_value = to_internal_value  # type: ignore[method-assign]


def install_strict_json_types() -> None:
    """In a JSON body, booleans and numbers must be JSON booleans and numbers.

    DRF takes "true", 1 and "5" for them, which is right for form fields (all
    text) but not for JSON, where the schema names a type.
    """
    from rest_framework import fields
    from rest_framework.utils import html

    def strict(field_class: Any, kinds: tuple[type, ...]) -> None:
        loose = field_class.to_internal_value
        if getattr(loose, "strict_json", False):
            return

        def to_internal_value(self: Any, data: Any) -> Any:
            initial = getattr(self.root, "initial_data", None)
            from_json = initial is not None and not html.is_html_input(initial)
            if from_json and (
                not isinstance(data, kinds) or isinstance(data, bool) is not (bool in kinds)
            ):
                self.fail("invalid")
            return loose(self, data)

        to_internal_value.strict_json = True  # type: ignore[attr-defined]
        field_class.to_internal_value = to_internal_value

    strict(fields.BooleanField, (bool,))
    strict(fields.IntegerField, (int,))
    strict(fields.FloatField, (int, float))
