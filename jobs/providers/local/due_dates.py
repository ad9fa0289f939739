"""Due dates said in words, resolved against the day the meeting is analysed.

`find_due_date(sentence, today)` reads the first deadline phrase in an English
sentence and returns its calendar date, or None. What it understands:

- "today", "tonight", "end of day" / "EOD" -> today; "tomorrow" -> today + 1;
- "by / before / until / on / due <weekday>" -> the next such weekday after
  today (said on a Friday, "by Friday" means a week later);
- "next <weekday>" -> that weekday in next calendar week (weeks start Monday);
- "this week" / "end of the week" -> this Friday (today, if that has passed);
- "next week" -> next Monday; "end of the month" -> the month's last day;
- "in N days / weeks" (N in digits or one to ten);
- dates: "2025-03-14", "March 14", "14 March", "March 14th" -> that day this
  year, or next year if it has already passed.
Anything vaguer ("soon", "later", "ASAP") has no date.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = [m.lower() for m in calendar.month_name[1:]]
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_NUMBERS = {word: value for value, word in enumerate(_NUMBER_WORDS, 1)}

_WEEKDAY = "|".join(WEEKDAYS)
_MONTH = "|".join(MONTHS + [m[:3] for m in MONTHS])
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")),
    ("month_day", re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b")),
    ("day_month", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\b")),
    ("next_weekday", re.compile(rf"\bnext\s+({_WEEKDAY})\b")),
    ("weekday", re.compile(rf"\b(?:by|before|until|till|on|due|for)\s+(?:this\s+)?({_WEEKDAY})\b")),
    ("in_n", re.compile(rf"\bin\s+(\d+|{'|'.join(_NUMBERS)})\s+(day|week)s?\b")),
    ("today", re.compile(r"\b(today|tonight|end of (?:the )?day|eod)\b")),
    ("tomorrow", re.compile(r"\btomorrow\b")),
    ("next_week", re.compile(r"\bnext\s+week\b")),
    ("this_week", re.compile(r"\b(?:this\s+week|end\s+of\s+(?:the\s+|this\s+)?week)\b")),
    ("month_end", re.compile(r"\bend\s+of\s+(?:the\s+|this\s+)?month\b")),
]


def find_due_date(sentence: str, today: date) -> date | None:
    """The date of the earliest deadline phrase in `sentence`, or None."""
    text = sentence.lower()
    found = [(m.start(), kind, m) for kind, pattern in _PATTERNS if (m := pattern.search(text))]
    for _, kind, match in sorted(found, key=lambda f: f[0]):
        resolved = _resolve(kind, match, today)
        if resolved is not None:
            return resolved
    return None


def _resolve(kind: str, match: re.Match[str], today: date) -> date | None:
    if kind == "iso":
        return _safe_date(*(int(g) for g in match.groups()))
    if kind in ("month_day", "day_month"):
        month_word, day = (match[1], match[2]) if kind == "month_day" else (match[2], match[1])
        month = _month_number(month_word)
        this_year = _safe_date(today.year, month, int(day))
        if this_year is None or this_year >= today:
            return this_year
        return _safe_date(today.year + 1, month, int(day))
    if kind == "weekday":
        ahead = (WEEKDAYS.index(match[1]) - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    if kind == "next_weekday":
        next_monday = today + timedelta(days=7 - today.weekday())
        return next_monday + timedelta(days=WEEKDAYS.index(match[1]))
    if kind == "in_n":
        count = int(match[1]) if match[1].isdigit() else _NUMBERS[match[1]]
        return today + timedelta(days=count * (7 if match[2] == "week" else 1))
    if kind == "today":
        return today
    if kind == "tomorrow":
        return today + timedelta(days=1)
    if kind == "next_week":
        return today + timedelta(days=7 - today.weekday())
    if kind == "this_week":
        return max(today, today + timedelta(days=4 - today.weekday()))
    if kind == "month_end":
        return today.replace(day=calendar.monthrange(today.year, today.month)[1])
    return None


def _month_number(word: str) -> int:
    return [m[:3] for m in MONTHS].index(word[:3]) + 1


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:  # "February 30" is a mishearing, not a deadline
        return None
