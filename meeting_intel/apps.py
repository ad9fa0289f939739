"""The project's own app: wires structured logging and metrics into every process."""

from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "meeting_intel"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from meeting_intel.http.schema_contract import (
            install_strict_json_types,
            install_strict_text,
        )
        from meeting_intel.ops import wiring as observability

        observability.connect()
        install_strict_text()
        install_strict_json_types()
