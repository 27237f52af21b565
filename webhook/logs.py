"""Log set-up: `--log-format text|json`, `--log-level`."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

HOLD_SECONDS = 0.02  # how long an admission line may wait to be written with others
# Caps on what a client can make us write (docs/production.md, "Logs"): one field it wrote
# (a uid, a pod name), one message, and one whole line with its traceback.
MAX_FIELD_CHARS = 256
MAX_MESSAGE_CHARS = 4096
MAX_LINE_CHARS = 65536
# Control characters in the text format are written as escapes: a newline in a pod's
# generateName must not start a second, forged, line.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x85: "\\x85",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_controls(text: str) -> str:
    """Control characters as backslash escapes; printable text is returned as it is."""
    return text if text.isprintable() else text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """The text format: the message capped and escaped; the traceback (ours) kept as lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(clip(record.message, MAX_MESSAGE_CHARS))
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return clip(super().format(record), MAX_LINE_CHARS)


_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": clip(record.getMessage(), MAX_MESSAGE_CHARS),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = clip(self.formatException(record.exc_info), MAX_LINE_CHARS)
        return orjson.dumps(entry, default=str).decode()


class WebhookHandler(logging.StreamHandler[TextIO]):
    """The stderr handler `serve` installs; it also writes `InfoLine`s without a LogRecord.

    Info lines written on a running event loop are held for up to `HOLD_SECONDS` and written
    together: under load that is one write() for many admissions instead of one each
    (docs/performance.md), and a timer rather than a callback for the next loop step, so an
    idle loop is not woken once more per request. Any other record, `flush()` and `close()` write what is held first,
    so the order of lines is kept and nothing held is lost at exit.
    """

    def __init__(self, stream: TextIO, fmt: str) -> None:
        super().__init__(stream)
        self.json = fmt == "json"
        self._second = -1
        self._stamp = ""
        self._held: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # where a flush is scheduled
        if self.json:
            self.setFormatter(JsonFormatter())
        else:
            self.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def write_info(self, name: str, message: str, fields: dict[str, Any]) -> None:
        """The same line `logger.info(message, extra=fields)` gives, at a fraction of the cost."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            if self.json:
                self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        if self.json:
            entry: dict[str, Any] = {
                "time": f"{self._stamp}.{millis:03d}Z",
                "level": "info",
                "logger": name,
                "message": message,
            }
            entry.update(fields)
            line = orjson.dumps(entry, default=str).decode()
        else:
            line = f"{self._stamp},{millis:03d} INFO {name}: {escape_controls(message)}"
        if len(line) > MAX_LINE_CHARS:
            line = clip(line, MAX_LINE_CHARS)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a thread, a test): write it now
            loop = None
        with self.lock or _NO_LOCK:
            if loop is None:
                self._write_held()
                self.stream.write(line + "\n")
                return
            if self._flush_on is not loop:  # once per batch (and again on a new loop)
                self._flush_on = loop
                loop.call_later(HOLD_SECONDS, self.flush)
            self._held.append(line)

    def _write_held(self) -> None:
        """Write the held lines; the caller holds the lock."""
        self._flush_on = None
        if self._held:
            self.stream.write("\n".join(self._held) + "\n")
            self._held.clear()

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock or _NO_LOCK:
            self._write_held()
        super().emit(record)

    def flush(self) -> None:
        with self.lock or _NO_LOCK:
            self._write_held()
        super().flush()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


class InfoLine:
    """A hot-path info line (one per admission): the handler writes it directly when `serve`
    configured logging; otherwise (tests, embedding) it goes through `logging` as usual."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._root = logging.getLogger()

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def __call__(self, message: str, fields: dict[str, Any]) -> None:
        handlers = self._root.handlers
        if (
            len(handlers) == 1
            and type(handlers[0]) is WebhookHandler
            and not self._logger.handlers
            and not self._root.filters
        ):
            handlers[0].write_info(self._logger.name, message, fields)
        else:
            self._logger.info("%s", message, extra=fields)


def configure_logging(*, level: str = "info", fmt: str = "text") -> None:
    handler = WebhookHandler(sys.stderr, fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "kubernetes.client.rest", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
