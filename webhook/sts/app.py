"""The local STS as an ASGI application: the query API's AssumeRoleWithWebIdentity and
GetCallerIdentity, form-encoded POST (as the SDKs send them) or GET.

Plain ASGI rather than FastAPI: two actions on one path, a body read with a hard cap before it
is parsed, and every answer, errors included, is STS's XML. Whatever a client sends, the answer
is an STS error with a 4xx status; a bug is a 500 InternalFailure, logged, never a dead server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from webhook.doctor.policy import TrustPolicy
from webhook.logs import clip, escape_controls
from webhook.mutation.serviceaccount import is_valid_role_arn
from webhook.sts import responses
from webhook.sts.errors import (
    INTERNAL_FAILURE,
    INVALID_ACTION,
    MISSING_PARAMETER,
    REQUEST_TOO_LARGE,
    VALIDATION_ERROR,
    StsError,
    sender_error,
)
from webhook.sts.sessions import SessionStore
from webhook.sts.sigv4 import authenticate
from webhook.sts.verification import Provider, verify_web_identity

logger = logging.getLogger(__name__)

API_VERSION = "2011-06-15"
# The largest request is AssumeRoleWithWebIdentity: a token of at most 20,000 characters
# (STS's limit), a session policy of at most 2,048, the rest a few hundred; form encoding at
# most triples each byte. 128 KiB holds that with room to spare.
MAX_BODY_BYTES = 128 * 1024
MAX_PARAMETERS = 64
MAX_TOKEN_CHARS = 20_000
MIN_DURATION_SECONDS, MAX_DURATION_SECONDS = 900, 43_200
DEFAULT_DURATION_SECONDS = 3600
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StsApp:
    def __init__(
        self,
        *,
        provider: Provider,
        roles: Mapping[str, TrustPolicy],
        sessions: SessionStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.roles = roles
        self.sessions = sessions or SessionStore()
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = str(uuid.uuid4())
        action = ""
        try:
            body = await _read_body(scope, receive)
            params = _parameters(scope, body)
            action = params.get("Action", "")
            status, text = await self._handle(scope, body, params, request_id)
        except StsError as exc:
            status, text = exc.status, responses.error(exc, request_id=request_id)
            logger.info(
                "%s: %d %s: %s",
                escape_controls(clip(action)) or "(no action)",
                exc.status,
                exc.code,
                escape_controls(clip(exc.message, 400)),
            )
        except Exception:
            logger.exception("request %s failed", request_id)
            failure = StsError(500, INTERNAL_FAILURE, "the local STS failed; see its log")
            status, text = 500, responses.error(failure, request_id=request_id)
        data = text.encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", responses.CONTENT_TYPE.encode()),
                    (b"content-length", str(len(data)).encode()),
                    (b"x-amzn-requestid", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _handle(
        self, scope: Scope, body: bytes, params: dict[str, str], request_id: str
    ) -> tuple[int, str]:
        version = params.get("Version", API_VERSION)
        action = params.get("Action")
        if not action:
            raise sender_error(MISSING_PARAMETER, "the request has no Action")
        if version != API_VERSION or action not in (
            "AssumeRoleWithWebIdentity",
            "GetCallerIdentity",
        ):
            raise sender_error(
                INVALID_ACTION,
                f"Could not find operation {clip(action, 64)} for version {clip(version, 32)} "
                "(this local STS serves AssumeRoleWithWebIdentity and GetCallerIdentity)",
            )
        now = int(self._clock())
        if action == "GetCallerIdentity":
            session = authenticate(
                method=scope["method"],
                raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                query_string=scope.get("query_string", b"").decode("latin-1"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                body=body,
                sessions=self.sessions,
                now=now,
            )
            logger.info(
                "GetCallerIdentity: %s (%s)", session.assumed_role_arn, session.access_key_id
            )
            return 200, responses.get_caller_identity(session, request_id=request_id)
        role_arn, session_name, token, duration = _web_identity_parameters(params)
        identity = await asyncio.to_thread(
            verify_web_identity,
            token,
            role_arn,
            provider=self.provider,
            roles=self.roles,
            now=now,
        )
        session = self.sessions.issue(
            role_arn=role_arn,
            session_name=session_name,
            subject=identity.subject,
            now=now,
            duration=duration,
        )
        logger.info(
            "AssumeRoleWithWebIdentity: %s for %s as %s",
            session.assumed_role_arn,
            escape_controls(clip(identity.subject)),
            session.access_key_id,
        )
        return 200, responses.assume_role_with_web_identity(
            session, audience=identity.audience, provider=identity.issuer, request_id=request_id
        )


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise sender_error(MISSING_PARAMETER, f"the request has no {name}")
    return value


def _invalid(name: str, value: str, constraint: str) -> StsError:
    return sender_error(
        VALIDATION_ERROR,
        f"1 validation error detected: Value {clip(value, 64)!r} at '{name}' failed to satisfy "
        f"constraint: {constraint}",
    )


def _web_identity_parameters(params: Mapping[str, str]) -> tuple[str, str, str, int]:
    role_arn = _required(params, "RoleArn")
    if not 20 <= len(role_arn) <= 2048 or not is_valid_role_arn(role_arn):
        raise _invalid("roleArn", role_arn, "an IAM role ARN, arn:PARTITION:iam::ACCOUNT:role/NAME")
    session_name = _required(params, "RoleSessionName")
    if _SESSION_NAME.fullmatch(session_name) is None:
        raise _invalid("roleSessionName", session_name, "2 to 64 characters of [\\w+=,.@-]")
    token = _required(params, "WebIdentityToken")
    if not 4 <= len(token) <= MAX_TOKEN_CHARS:
        raise _invalid(
            "webIdentityToken", f"({len(token)} characters)", f"length from 4 to {MAX_TOKEN_CHARS}"
        )
    raw = params.get("DurationSeconds")
    duration = DEFAULT_DURATION_SECONDS
    if raw is not None:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
            raise _invalid("durationSeconds", raw, "a whole number of seconds")
        duration = int(raw)
        if not MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS:
            raise _invalid(
                "durationSeconds",
                raw,
                f"from {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS} seconds",
            )
    # Policy, PolicyArns and ProviderId are accepted and not used: session policies only
    # narrow permissions, and the credentials of this STS carry none.
    return role_arn, session_name, token, duration


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and (
            not value.isdigit() or len(value) > 12 or int(value) > MAX_BODY_BYTES
        ):
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _too_large() -> StsError:
    return StsError(
        413, REQUEST_TOO_LARGE, f"the request body is larger than {MAX_BODY_BYTES} bytes"
    )


def _parameters(scope: Scope, body: bytes) -> dict[str, str]:
    method = scope["method"]
    if method not in ("GET", "POST"):
        raise StsError(
            405, INVALID_ACTION, f"method {clip(method, 16)}: the query API takes POST or GET"
        )
    try:
        text = scope.get("query_string", b"").decode("utf-8")
        if method == "POST" and body:
            text = f"{text}&{body.decode('utf-8')}" if text else body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except UnicodeDecodeError:
        raise sender_error(VALIDATION_ERROR, "the request is not UTF-8") from None
    except ValueError:
        raise sender_error(
            VALIDATION_ERROR, f"the request has more than {MAX_PARAMETERS} parameters"
        ) from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise sender_error(VALIDATION_ERROR, f"parameter {clip(name, 64)!r} is given twice")
        params[name] = value
    return params


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
