from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.models import ApiClient


class Command(BaseCommand):
    help = "Create a CMS API client. Its key is the last line printed, shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"An API client named {name!r} already exists.")
        client = ApiClient(name=name)
        key = client.issue_key()
        client.save()
        self.stderr.write(f"Created API client {name!r}. Store the key now; it is not shown again:")
        self.stdout.write(key)
