"""One check's verdict, and the report as a table for people or JSON for scripts.

The table is made to be pasted into a ticket as it is: a first line saying which version looked
at which object with which inputs, and lines wrapped only at spaces, so that no URL, ARN or flag
name is ever cut in two.
"""

from __future__ import annotations

import json
import shlex
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum


class Status(Enum):
    """How a check came out; a check not made for want of input says which input."""

    PASS = "pass"
    FAIL = "fail"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: a failed check carries the value seen, the one expected and the
    fix."""

    name: str
    status: Status
    summary: str
    seen: str = ""
    expected: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class About:
    """What was diagnosed, by which version, from which inputs: the report's first line."""

    version: str
    kind: str
    namespace: str
    name: str
    service_account: str
    inputs: tuple[tuple[str, str], ...]  # (flag, value) in the order given; value "" for a switch

    def line(self) -> str:
        given = " ".join(
            flag + (f" {shlex.quote(value)}" if value else "") for flag, value in self.inputs
        )
        return (
            f"pod-identity-webhook {self.version} doctor: {self.kind} {self.namespace}/"
            f"{self.name} (ServiceAccount {self.service_account}); inputs: {given or 'none'}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "object": {
                "kind": self.kind,
                "namespace": self.namespace,
                "name": self.name,
                "serviceAccount": self.service_account,
            },
            "inputs": [{"flag": flag, "value": value} for flag, value in self.inputs],
        }


def passed(name: str, summary: str, *, seen: str = "", expected: str = "") -> Check:
    return Check(name, Status.PASS, summary, seen=seen, expected=expected)


def failed(name: str, summary: str, *, seen: str = "", expected: str = "", fix: str = "") -> Check:
    return Check(name, Status.FAIL, summary, seen=seen, expected=expected, fix=fix)


def not_checked(name: str, summary: str) -> Check:
    return Check(name, Status.NOT_CHECKED, summary)


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(check.status is Status.FAIL for check in checks) else 0


def render_json(checks: Sequence[Check], about: About | None = None) -> str:
    counts = {status.value: 0 for status in Status}
    for check in checks:
        counts[check.status.value] += 1
    entries = [{**asdict(check), "status": check.status.value} for check in checks]
    head = about.as_json() if about is not None else {}
    return json.dumps({**head, "checks": entries, "summary": counts}, indent=2) + "\n"


_MARKS = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_CHECKED: "----"}


def render_table(
    checks: Sequence[Check], about: About | None = None, *, width: int | None = None
) -> str:
    """One row per check; a failed one carries its seen/expected/fix lines under it."""
    width = width or min(shutil.get_terminal_size((120, 24)).columns, 160)
    name_width = max((len(check.name) for check in checks), default=4)
    indent = " " * (6 + name_width + 2)
    lines = [about.line()] if about is not None else []  # never wrapped: it names files
    for check in checks:
        head = f"{_MARKS[check.status]}  {check.name.ljust(name_width)}  "
        lines += textwrap.wrap(
            check.summary,
            width,
            initial_indent=head,
            subsequent_indent=indent,
            break_long_words=False,  # a URL, ARN or path longer than the line stays whole
            break_on_hyphens=False,  # and so does a --flag-name
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
