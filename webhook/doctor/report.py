"""One check's verdict, and the report as a table for people or JSON for scripts."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    summary: str
    seen: str = ""
    expected: str = ""
    fix: str = ""


def passed(name: str, summary: str, *, seen: str = "", expected: str = "") -> Check:
    return Check(name, Status.PASS, summary, seen=seen, expected=expected)


def failed(name: str, summary: str, *, seen: str = "", expected: str = "", fix: str = "") -> Check:
    return Check(name, Status.FAIL, summary, seen=seen, expected=expected, fix=fix)


def not_checked(name: str, summary: str) -> Check:
    return Check(name, Status.NOT_CHECKED, summary)


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(check.status is Status.FAIL for check in checks) else 0


def render_json(checks: Sequence[Check]) -> str:
    counts = {status.value: 0 for status in Status}
    for check in checks:
        counts[check.status.value] += 1
    entries = [{**asdict(check), "status": check.status.value} for check in checks]
    return json.dumps({"checks": entries, "summary": counts}, indent=2) + "\n"


_MARKS = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_CHECKED: "----"}


def render_table(checks: Sequence[Check], *, width: int | None = None) -> str:
    """One row per check; a failed one carries its seen/expected/fix lines under it."""
    width = width or min(shutil.get_terminal_size((120, 24)).columns, 160)
    name_width = max((len(check.name) for check in checks), default=4)
    indent = " " * (6 + name_width + 2)
    lines = []
    for check in checks:
        head = f"{_MARKS[check.status]}  {check.name.ljust(name_width)}  "
        lines += textwrap.wrap(
            check.summary, width, initial_indent=head, subsequent_indent=indent
        ) or [head.rstrip()]
        if check.status is not Status.FAIL:
            continue  # the values of passed checks are in --output json
        details = (("seen", check.seen), ("expected", check.expected), ("fix", check.fix))
        for label, value in details:
            if value:
                lines += textwrap.wrap(
                    value,
                    width,
                    initial_indent=f"{indent}{label}: ",
                    subsequent_indent=indent + "  ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
    failures = sum(check.status is Status.FAIL for check in checks)
    skipped = sum(check.status is Status.NOT_CHECKED for check in checks)
    lines.append(
        f"{len(checks)} checks: {len(checks) - failures - skipped} passed, "
        f"{failures} failed, {skipped} not checked"
    )
    return "\n".join(lines) + "\n"
