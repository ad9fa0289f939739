"""DRF fields and serializers for what a client shapes: templates, participants, vocabulary.

Each field checks its value with jobs.shaping, so the API, admin and any
other entry point apply the same caps. Multipart forms send lists as JSON
strings; JSON bodies send them as lists.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from jobs import shaping
from jobs.models import AnalysisTemplate
from meeting_intel.http.errors import ApiError

_SECTION_SCHEMA = {
    "type": "object",
    "properties": {
        "key": {
            "type": "string",
            "pattern": shaping.SECTION_KEY.pattern,
            "description": "Where the results appear: `Meeting.sections[key]`.",
        },
        "title": {"type": "string", "minLength": 1, "maxLength": shaping.SECTION_TITLE_MAX},
        "instructions": {
            "type": "string",
            "nullable": True,
            "maxLength": shaping.SECTION_INSTRUCTIONS_MAX,
        },
    },
    "required": ["key", "title"],
    "additionalProperties": False,
}
_PARTICIPANT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": shaping.PARTICIPANT_NAME_MAX},
        "role": {"type": "string", "nullable": True, "maxLength": shaping.PARTICIPANT_ROLE_MAX},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def _json_or_text(item: Any) -> Any:
    """A JSON list or object given as text, decoded; any other item stays text."""
    if not isinstance(item, str) or not item.lstrip().startswith(("[", "{")):
        return item
    try:
        return json.loads(item)
    except (ValueError, RecursionError):
        return item


class _CheckedJSONField(serializers.JSONField):
    """A JSON value checked by a jobs.shaping cleaner; a string is parsed as JSON first."""

    cleaner: Any = None

    def get_value(self, dictionary: Any) -> Any:
        """In a form, the list is one JSON string, or one field per item (as OpenAPI
        encodes an array in multipart): each item a JSON value or plain text."""
        if not html.is_html_input(dictionary) or self.field_name not in dictionary:
            return super().get_value(dictionary)
        items = dictionary.getlist(self.field_name)
        decoded = [_json_or_text(item) for item in items]
        if len(decoded) == 1 and isinstance(decoded[0], list):
            return decoded[0]
        return decoded

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                raise serializers.ValidationError(f"{self.field_name} must be JSON.") from None
        try:
            return type(self).cleaner(data)
        except shaping.ShapingProblem as problem:
            raise serializers.ValidationError(str(problem)) from None


@extend_schema_field({"type": "array", "items": _SECTION_SCHEMA, "maxItems": shaping.SECTIONS_MAX})
class SectionsField(_CheckedJSONField):
    cleaner = staticmethod(shaping.clean_sections)


@extend_schema_field(
    {"type": "array", "items": _PARTICIPANT_SCHEMA, "maxItems": shaping.PARTICIPANTS_MAX}
)
class ParticipantsField(_CheckedJSONField):
    cleaner = staticmethod(shaping.clean_participants)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": shaping.TERM_MAX},
        "maxItems": shaping.VOCABULARY_MAX,
    }
)
class VocabularyField(_CheckedJSONField):
    cleaner = staticmethod(shaping.clean_vocabulary)


class InstructionsField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", True)
        kwargs.setdefault("max_length", shaping.INSTRUCTIONS_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return shaping.clean_instructions(value, self.field_name or "instructions")
        except shaping.ShapingProblem as problem:
            raise serializers.ValidationError(str(problem)) from None


class TemplateSerializer(serializers.ModelSerializer):
    """A client's analysis template. Setting `is_default` unsets the client's other default."""

    name = serializers.CharField(max_length=shaping.TEMPLATE_NAME_MAX, trim_whitespace=True)
    instructions = InstructionsField(
        required=False,
        help_text="Added to every written step (summary, action items, decisions, sections).",
    )
    sections = SectionsField(
        required=False,
        help_text="Extra structured results: each becomes `Meeting.sections[key]`.",
    )
    is_default = serializers.BooleanField(
        required=False, help_text="Used for the client's jobs that name no template."
    )

    class Meta:
        model = AnalysisTemplate
        fields = ["id", "name", "instructions", "sections", "is_default"]
        read_only_fields = ["id"]

    def validate_name(self, value: str) -> str:
        try:
            value = shaping.clean_template_name(value)
        except shaping.ShapingProblem as problem:
            raise serializers.ValidationError(str(problem)) from None
        client = self.context["client"]
        taken = AnalysisTemplate.objects.filter(client=client, name=value)
        if self.instance is not None:
            taken = taken.exclude(id=self.instance.id)
        if taken.exists():
            raise _name_taken()
        return value

    def save(self, **kwargs: Any) -> AnalysisTemplate:
        client = self.context["client"]
        try:
            with transaction.atomic():
                if self.validated_data.get("is_default"):
                    mine = AnalysisTemplate.objects.select_for_update().filter(client=client)
                    if self.instance is not None:
                        mine = mine.exclude(id=self.instance.id)
                    mine.filter(is_default=True).update(is_default=False)
                return super().save(client=client, **kwargs)
        except IntegrityError:
            # A concurrent request took the name (or the default) first.
            raise _name_taken() from None


class TemplateListSerializer(serializers.Serializer):
    results = TemplateSerializer(many=True)


def _name_taken() -> ApiError:
    """409: the request is well-formed; the client's state (a template of that name) conflicts."""
    return ApiError(
        409,
        "template_name_taken",
        "You already have a template with this name.",
        {"name": ["You already have a template with this name."]},
    )
