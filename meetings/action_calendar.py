"""A meeting's action items as an iCalendar file of to-dos, made with `icalendar`.

One VTODO per action item: the text as SUMMARY, the owner as CONTACT (a
name, not a calendar address, so not an ATTENDEE), the due date as DUE, and
a link to the moment on the results page as URL and in the DESCRIPTION.
The UID is the meeting id and the item's position, and DTSTAMP is the
meeting's last change, so exporting twice yields the same file and a
calendar that imports it again updates the to-dos instead of adding copies.
"""

from __future__ import annotations

from collections.abc import Callable

from icalendar import Calendar, Todo

from meetings.models import ActionItem, Meeting
from meetings.reports.content import clock

PRODID = "-//Meeting Intelligence Platform//Action items//EN"


def item_uid(meeting: Meeting, item: ActionItem) -> str:
    return f"action-{item.index}.meeting-{meeting.id}@meeting-intelligence"


def render_ics(meeting: Meeting, link_at: Callable[[int | None], str]) -> bytes:
    """`link_at(start_ms)` gives the results page's URL at that moment (or its top for None)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Action items: {meeting.title or 'meeting'}")
    stamp = meeting.updated_at
    for item in meeting.action_items.all():
        link = link_at(item.source_start_ms)
        todo = Todo()
        todo.add("uid", item_uid(meeting, item))
        todo.add("dtstamp", stamp)
        todo.add("last-modified", stamp)
        todo.add("summary", item.text)
        todo.add("status", "NEEDS-ACTION")
        if item.due_date:
            todo.add("due", item.due_date)
        if item.owner:
            todo.add("contact", item.owner)
        description = [f"From the meeting “{meeting.title or 'Untitled'}”."]
        if item.owner:
            description.append(f"Owner: {item.owner}")
        when = f" at {clock(item.source_start_ms)}" if item.source_start_ms is not None else ""
        description.append(f"Listen{when}: {link}")
        todo.add("description", "\n".join(description))
        todo.add("url", link)
        calendar.add_component(todo)
    return calendar.to_ical()
