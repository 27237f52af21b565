"""The first record of a CSV text, read exactly as Go's encoding/csv Reader.Read does.

Upstream reads the skip-containers annotation with `csv.NewReader(...).Read()` and skips no
container when that fails. Python's csv module accepts what Go refuses (a bare `"` inside an
unquoted field, text after a closing quote), so the rules are spelled out here: comma
separator, no comment character, no lazy quotes, leading spaces kept, `\\r\\n` read as `\\n`,
blank lines before the record skipped, a quoted field may span lines.
"""

from __future__ import annotations

_QUOTE = '"'
_COMMA = ","


class CsvError(ValueError):
    """Go's reader would return an error (ErrBareQuote, ErrQuote, or io.EOF for no record)."""


class _Lines:
    """Go's readLine: up to and including each "\\n", "\\r\\n" normalised, a final "\\r" dropped."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def read(self) -> str | None:
        """The next line, or None at the end of the text."""
        if self._at >= len(self._text):
            return None
        end = self._text.find("\n", self._at)
        if end < 0:
            line = self._text[self._at :]
            self._at = len(self._text)
            return line[:-1] if line.endswith("\r") else line
        line = self._text[self._at : end + 1]
        self._at = end + 1
        return line[:-2] + "\n" if line.endswith("\r\n") else line


def _without_newline(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def read_first_record(text: str) -> list[str]:
    """The fields of the first record; raises CsvError where Go's Read returns an error."""
    lines = _Lines(text)
    line = lines.read()
    while line == "\n":  # blank lines before the record
        line = lines.read()
    if line is None:
        raise CsvError("no record (EOF)")
    fields: list[str] = []
    while True:
        if not line.startswith(_QUOTE):
            comma = line.find(_COMMA)
            field = line[:comma] if comma >= 0 else _without_newline(line)
            if _QUOTE in field:
                raise CsvError('bare " in non-quoted field')
            fields.append(field)
            if comma < 0:
                return fields
            line = line[comma + 1 :]
            continue
        line = line[1:]
        parts: list[str] = []
        while True:
            quote = line.find(_QUOTE)
            if quote >= 0:
                parts.append(line[:quote])
                line = line[quote + 1 :]
                if line.startswith(_QUOTE):  # "" is an escaped quote
                    parts.append(_QUOTE)
                    line = line[1:]
                elif line.startswith(_COMMA):
                    fields.append("".join(parts))
                    line = line[1:]
                    break
                elif line in ("", "\n"):
                    fields.append("".join(parts))
                    return fields
                else:
                    raise CsvError('extraneous or missing " in quoted field')
            elif line:
                parts.append(line)  # the field goes on on the next line
                line = lines.read() or ""
            else:
                raise CsvError('extraneous or missing " in quoted field')
