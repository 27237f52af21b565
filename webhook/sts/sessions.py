"""The fake, short-lived credentials the local STS issues, and the assumed-role session each
belongs to, so that its GetCallerIdentity can name the caller.

They are random strings shaped like AWS's (an `ASIA` access key id, a 40-character secret, a
session token); they work nowhere but here. Sessions are kept in memory, expired ones dropped,
at most MAX_SESSIONS (the oldest goes first).
"""

from __future__ import annotations

import hashlib
import secrets
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass

from webhook.doctor.trust import ROLE_ARN

MAX_SESSIONS = 10_000
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class Session:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: int  # Unix time
    assumed_role_arn: str  # arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION
    assumed_role_id: str  # AROA...:SESSION
    account: str
    subject: str


def role_id(role_arn: str) -> str:
    """A stable unique id for the role, shaped like IAM's (AROA and 17 characters)."""
    digest = hashlib.sha256(role_arn.encode()).digest()
    return "AROA" + "".join(_KEY_ALPHABET[b % len(_KEY_ALPHABET)] for b in digest[:17])


def assumed_role_arn(role_arn: str, session_name: str) -> tuple[str, str]:
    """(assumed-role ARN, account) for a role ARN that is_valid_role_arn accepted."""
    match = ROLE_ARN.fullmatch(role_arn)
    if match is None:
        raise ValueError(f"not a role ARN: {role_arn!r}")
    partition, account, name = match.groups()
    return f"arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}", account


class SessionStore:
    def __init__(self) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def issue(
        self, *, role_arn: str, session_name: str, subject: str, now: int, duration: int
    ) -> Session:
        arn, account = assumed_role_arn(role_arn, session_name)
        session = Session(
            access_key_id="ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
            secret_access_key=secrets.token_urlsafe(30)[:40],
            session_token=secrets.token_urlsafe(96),
            expires_at=now + duration,
            assumed_role_arn=arn,
            assumed_role_id=f"{role_id(role_arn)}:{session_name}",
            account=account,
            subject=subject,
        )
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.popitem(last=False)
            self._sessions[session.access_key_id] = session
        return session

    def get(self, access_key_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(access_key_id)

    def _drop_expired(self, now: int) -> None:
        # sessions are issued in time order with durations that differ, so scan them all;
        # MAX_SESSIONS bounds the scan
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
