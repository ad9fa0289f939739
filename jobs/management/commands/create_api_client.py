"""Create (or revoke) a CMS API client from the command line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from jobs.models import ApiClient


class Command(BaseCommand):
    help = (
        "Create a CMS API client. Its key is the last line printed, shown only once; "
        "only a hash is stored. With --revoke, revoke the client's key instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--revoke", action="store_true", help="Revoke the named client's key at once."
        )

    def handle(self, *args: Any, name: str, revoke: bool, **options: Any) -> None:
        if revoke:
            updated = ApiClient.objects.filter(name=name, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            if not updated:
                raise CommandError(f"No active API client named {name!r}.")
            self.stdout.write(f"Revoked API client {name!r}; its key no longer works.")
            return
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"An API client named {name!r} already exists.")
        client = ApiClient(name=name)
        key = client.issue_key()
        client.save()
        self.stderr.write(
            f"Created API client {name!r} (key prefix {client.key_prefix}, as admin shows it). "
            "Store the key now; it is not shown again:"
        )
        self.stdout.write(key)
