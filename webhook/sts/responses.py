"""STS query API responses, in the XML AWS STS writes and the SDKs parse (namespace 2011-06-15)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from webhook.sts.errors import StsError
from webhook.sts.sessions import Session

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
CONTENT_TYPE = "text/xml"


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# XML 1.0 has no way to write these; a token's claims may hold them, and messages repeat claims.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _element(name: str, text: str) -> str:
    return f"<{name}>{escape(_NOT_XML.sub('?', text))}</{name}>"


def assume_role_with_web_identity(
    session: Session, *, audience: str, provider: str, request_id: str
) -> str:
    return (
        f'<AssumeRoleWithWebIdentityResponse xmlns="{NAMESPACE}">'
        "<AssumeRoleWithWebIdentityResult>"
        + _element("SubjectFromWebIdentityToken", session.subject)
        + _element("Audience", audience)
        + "<AssumedRoleUser>"
        + _element("Arn", session.assumed_role_arn)
        + _element("AssumedRoleId", session.assumed_role_id)
        + "</AssumedRoleUser><Credentials>"
        + _element("AccessKeyId", session.access_key_id)
        + _element("SecretAccessKey", session.secret_access_key)
        + _element("SessionToken", session.session_token)
        + _element("Expiration", _iso(session.expires_at))
        + "</Credentials>"
        + _element("Provider", provider)
        + "</AssumeRoleWithWebIdentityResult>"
        + f"<ResponseMetadata>{_element('RequestId', request_id)}</ResponseMetadata>"
        + "</AssumeRoleWithWebIdentityResponse>"
    )


def get_caller_identity(session: Session, *, request_id: str) -> str:
    return (
        f'<GetCallerIdentityResponse xmlns="{NAMESPACE}"><GetCallerIdentityResult>'
        + _element("Arn", session.assumed_role_arn)
        + _element("UserId", session.assumed_role_id)
        + _element("Account", session.account)
        + "</GetCallerIdentityResult>"
        + f"<ResponseMetadata>{_element('RequestId', request_id)}</ResponseMetadata>"
        + "</GetCallerIdentityResponse>"
    )


def error(exc: StsError, *, request_id: str) -> str:
    kind = "Sender" if exc.status < 500 else "Receiver"
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error>'
        + _element("Type", kind)
        + _element("Code", exc.code)
        + _element("Message", exc.message)
        + "</Error>"
        + _element("RequestId", request_id)
        + "</ErrorResponse>"
    )
