"""An STS error as the query API returns it: HTTP status, error code and message."""

from __future__ import annotations

from webhook.doctor.report import Check

# The codes AWS STS answers AssumeRoleWithWebIdentity and GetCallerIdentity with.
INVALID_IDENTITY_TOKEN = "InvalidIdentityToken"
EXPIRED_TOKEN_EXCEPTION = "ExpiredTokenException"
IDP_COMMUNICATION_ERROR = "IDPCommunicationError"
ACCESS_DENIED = "AccessDenied"
VALIDATION_ERROR = "ValidationError"
MISSING_PARAMETER = "MissingParameter"
INVALID_ACTION = "InvalidAction"
INVALID_CLIENT_TOKEN_ID = "InvalidClientTokenId"
SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch"
EXPIRED_TOKEN = "ExpiredToken"
MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationToken"
REQUEST_TOO_LARGE = "RequestEntityTooLarge"
INTERNAL_FAILURE = "InternalFailure"


class StsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def sender_error(code: str, message: str, *, status: int = 400) -> StsError:
    return StsError(status, code, message)


def from_check(code: str, aws_message: str, check: Check, *, status: int = 400) -> StsError:
    """STS's own sentence, then the failed check as `doctor` reports it: its name, what it found,
    what it expected."""
    details = [f"{check.name}: {check.summary}"]
    if check.seen:
        details.append(f"seen {check.seen}")
    if check.expected:
        details.append(f"expected {check.expected}")
    return StsError(status, code, f"{aws_message} ({'; '.join(details)})")
