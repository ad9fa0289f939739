"""Run the whole pipeline on a local file in this process and print the meeting.

A user's mistake (a missing or non-audio file, an unmigrated or unreachable
database, a provider refusing its key) ends with one line on stderr and a
non-zero exit, never a traceback. Pending migrations are applied here only on
the embedded SQLite default (no DATABASE_URL), which nobody else shares; any
other database is left to `manage.py migrate`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from jobs import broadcast, shaping
from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline import runner as pipeline
from jobs.providers import limits
from meeting_intel.lib.media import MediaProblem, inspect_media, safe_filename
from meetings.serializers import meeting_data


class Command(BaseCommand):
    help = "Transcribe and analyse FILE with the configured providers, without a broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--title", default="")
        parser.add_argument("--language", default="")
        parser.add_argument("--speakers", type=int, default=None)
        parser.add_argument(
            "--participant",
            action="append",
            default=[],
            metavar="NAME[:ROLE]",
            help="A known participant (repeatable); speaker naming chooses among them.",
        )
        parser.add_argument(
            "--term",
            action="append",
            default=[],
            help="A vocabulary term to spell this way (repeatable).",
        )
        parser.add_argument("--instructions", default="", help="Extra analysis instructions.")
        parser.add_argument(
            "--summary-language", default="", help="BCP 47 code of the analysis output."
        )
        parser.add_argument("--json", action="store_true", help="Print only the meeting JSON.")

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            inspect_media(path)
        except MediaProblem as problem:
            raise CommandError(f"{path}: {problem.message}") from None
        shaped = self._shaping(opts)
        self._ensure_migrated()
        broadcast.disable()
        limits.fail_open()  # this process is the whole fleet; it may run without Redis
        with path.open("rb") as fh:
            job = submit_job(
                Job(
                    title=opts["title"] or path.stem,
                    language=opts["language"],
                    speakers_expected=opts["speakers"],
                    original_filename=safe_filename(path.name),
                    audio_bytes=path.stat().st_size,
                    audio=File(fh, name=safe_filename(path.name)),
                    **shaped,
                ),
                enqueue=False,
            )
        show = None if opts["json"] else self._progress
        job = pipeline.run_inline(job.id, on_change=show)
        if show:
            sys.stderr.write("\n")
        if job.status != Job.Status.COMPLETED:
            raise CommandError(f"Processing failed ({job.error_code}): {job.error_message}")
        meeting_id = job.meeting.id
        self.stdout.write(json.dumps(meeting_data(meeting_id), indent=2, default=str))

    def _shaping(self, opts: dict[str, Any]) -> dict[str, Any]:
        """The job's shaping fields, checked by the API's own limits (jobs.shaping)."""
        people = [
            {"name": name.strip(), "role": role.strip()}
            for name, _, role in (p.partition(":") for p in opts["participant"])
        ]
        language = opts["summary_language"]
        if language and not re.match(shaping.LANGUAGE_CODE, language):
            raise CommandError(f"--summary-language: {language!r} is not a language code")
        try:
            return {
                "participants": shaping.clean_participants(people),
                "vocabulary": shaping.clean_vocabulary(opts["term"]),
                "instructions": shaping.clean_instructions(opts["instructions"]),
                "summary_language": language,
            }
        except shaping.ShapingProblem as problem:
            raise CommandError(str(problem)) from None

    def _ensure_migrated(self) -> None:
        try:
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"Cannot use the database: {reason}") from None
        if not pending:
            return
        if not settings.DATABASE_EMBEDDED:
            raise CommandError(
                f"The database has {len(pending)} unapplied migrations: "
                "run `python manage.py migrate` first."
            )
        self.stderr.write(
            f"Applying {len(pending)} migrations to {connection.settings_dict['NAME']}"
        )
        call_command("migrate", interactive=False, verbosity=0)

    def _progress(self, job: Job) -> None:
        width = 30
        filled = width * job.progress // 100
        bar = "#" * filled + "-" * (width - filled)
        line = f"\r[{bar}] {job.progress:3d}% {job.stage:<12} {job.message[:40]:<40}"
        if sys.stderr.isatty():
            sys.stderr.write(line)
        else:
            sys.stderr.write(line.strip("\r") + "\n")
        sys.stderr.flush()
