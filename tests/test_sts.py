"""`pod-identity-webhook sts`: each thing AWS STS checks fails alone, with STS's code and the
name of doctor's check; hostile requests get a 4xx STS error. In process, through the ASGI app.

The same checks run against the real SDKs in tests/test_sts_clients.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.server import CertFiles
from tests.support.sts import running_sts
from webhook.cli import main
from webhook.doctor.policy import load_trust_policy
from webhook.oidc.discovery import Issuer, discovery_document
from webhook.oidc.jwks import key_set
from webhook.oidc.keys import SigningKey, b64url, parse_private_key
from webhook.oidc.subject import ServiceAccountSubject
from webhook.oidc.token import sign_token, token_claims
from webhook.oidc.trust import trust_policy
from webhook.sts.app import MAX_BODY_BYTES, StsApp
from webhook.sts.errors import StsError
from webhook.sts.issuer import IssuerDocuments, IssuerSource
from webhook.sts.roles import RolesError, load_roles
from webhook.sts.verification import Provider, verify_web_identity

FIXTURES = Path(__file__).parent / "fixtures" / "oidc"
KEY = parse_private_key((FIXTURES / "k8s-rsa.key.pem").read_bytes(), source="rsa")
OTHER_KEY = parse_private_key((FIXTURES / "k8s-ecdsa.key.pem").read_bytes(), source="ecdsa")
ISSUER = "https://oidc.test/clusters/kind"
HOST_PATH = "oidc.test/clusters/kind"
ROLE = "arn:aws:iam::111122223333:role/app"
SUBJECT = "system:serviceaccount:ns:app"
NS = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}


@dataclass
class Setup:
    """The provider's documents, the role's trust policy and a token; each test breaks one."""

    claims: dict[str, Any] = field(default_factory=dict)
    key: SigningKey = KEY
    header: dict[str, Any] | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    role: str = ROLE
    client_ids: tuple[str, ...] = ("sts.amazonaws.com",)

    def __post_init__(self) -> None:
        self.claims = token_claims(
            issuer=Issuer(ISSUER),
            subject=ServiceAccountSubject("ns", "app"),
            audiences=["sts.amazonaws.com"],
            expiration_seconds=3600,
            now=int(time.time()),
            uid="uid",
            jti="jti",
        )
        self.policy = trust_policy(
            Issuer(ISSUER),
            account_id="111122223333",
            partition="aws",
            subject=SUBJECT,
            audience="sts.amazonaws.com",
        )

    def statement(self) -> dict[str, Any]:
        statement: dict[str, Any] = self.policy["Statement"][0]
        return statement

    def token(self) -> str:
        token = sign_token(self.key, self.claims)
        if self.header is None:
            return token
        return b64url(json.dumps(self.header).encode()) + "." + token.partition(".")[2]

    def provider(self, tmp_path: Path) -> Provider:
        discovery, jwks = tmp_path / "openid-configuration", tmp_path / "keys.json"
        discovery.write_text(json.dumps(discovery_document(Issuer(ISSUER), [KEY.public_key()])))
        jwks.write_text(json.dumps(key_set([KEY.public_key()])))
        documents = IssuerDocuments(IssuerSource(None, discovery, jwks))
        return Provider(documents, self.client_ids)

    def roles(self) -> dict[str, Any]:
        get_role = {"Role": {"Arn": self.role, "AssumeRolePolicyDocument": self.policy}}
        return {self.role: load_trust_policy(json.dumps(get_role))}


def assume(setup: Setup, tmp_path: Path, role: str = ROLE) -> StsError | None:
    try:
        verify_web_identity(
            setup.token(),
            role,
            provider=setup.provider(tmp_path),
            roles=setup.roles(),
            now=int(time.time()),
        )
    except StsError as exc:
        return exc
    return None


def test_a_token_the_trust_policy_admits_is_accepted(tmp_path: Path) -> None:
    setup = Setup()
    identity = verify_web_identity(
        setup.token(),
        ROLE,
        provider=setup.provider(tmp_path),
        roles=setup.roles(),
        now=int(time.time()),
    )
    assert (identity.subject, identity.audience, identity.issuer) == (
        SUBJECT,
        "sts.amazonaws.com",
        ISSUER,
    )


def _expired(setup: Setup) -> None:
    setup.claims.update(exp=int(time.time()) - 600, iat=int(time.time()) - 4200)


def _another_kid(setup: Setup) -> None:
    setup.key = OTHER_KEY


def _forged(setup: Setup) -> None:
    # the published kid, signed by another key
    setup.key = OTHER_KEY
    kid = key_set([KEY.public_key()])["keys"][0]["kid"]
    setup.header = {"alg": "ES256", "kid": kid}


def _other_condition(setup: Setup) -> None:
    setup.statement()["Condition"]["StringEquals"][f"{HOST_PATH}:amr"] = "authenticated"


def _condition_on_another_provider(setup: Setup) -> None:
    condition = setup.statement()["Condition"]["StringEquals"]
    del condition[f"{HOST_PATH}:sub"]
    condition["oidc.other.test:sub"] = SUBJECT


BREAKS: list[tuple[str, Callable[[Setup], object], int, str, str]] = [
    (
        "another-service-account",
        lambda s: s.claims.update(sub="system:serviceaccount:ns:other"),
        403,
        "AccessDenied",
        "(trust.sub: the condition names ServiceAccount app; this pod's ServiceAccount is other",
    ),
    (
        "another-namespace",
        lambda s: s.claims.update(sub="system:serviceaccount:prod:app"),
        403,
        "AccessDenied",
        "trust.sub: the condition names namespace ns; this pod's namespace is prod",
    ),
    (
        "wrong-audience",
        lambda s: s.claims.update(aud=["https://kubernetes.default.svc"]),
        400,
        "InvalidIdentityToken",
        "Incorrect token audience (token.aud: the token's aud is none of the provider's client "
        "IDs (--client-id); seen https://kubernetes.default.svc; expected sts.amazonaws.com)",
    ),
    (
        "expired",
        _expired,
        400,
        "ExpiredTokenException",
        "Token expired: current date/time must be before the expiration date/time (token.exp: "
        "the token expired 10 min ago",
    ),
    (
        "not-yet-valid",
        lambda s: s.claims.update(nbf=int(time.time()) + 600),
        400,
        "InvalidIdentityToken",
        "(token.exp: the token is not valid for another 10 min (nbf)",
    ),
    (
        "signed-by-another-key",
        _another_kid,
        400,
        "InvalidIdentityToken",
        "(token.kid: the token's kid is not in the published JWKS: STS cannot find its key",
    ),
    (
        "forged-signature",
        _forged,
        400,
        "InvalidIdentityToken",
        "(token.signature: the signature does not verify with the published key of that kid)",
    ),
    (
        "hmac",
        lambda s: setattr(s, "header", {"alg": "HS256", "kid": "x"}),
        400,
        "InvalidIdentityToken",
        "(token.alg: STS does not accept this signing algorithm; seen 'HS256'",
    ),
    (
        "another-issuer",
        lambda s: s.claims.update(iss="https://oidc.other.test"),
        400,
        "InvalidIdentityToken",
        "No OpenIDConnect provider found in your account for https://oidc.other.test (token.iss:",
    ),
    (
        "issuer-with-trailing-slash",
        lambda s: s.claims.update(iss=ISSUER + "/"),
        400,
        "InvalidIdentityToken",
        "(issuer.url: a trailing slash in the token's iss (not in --issuer-url)",
    ),
    (
        "condition-on-the-wrong-provider",
        _condition_on_another_provider,
        403,
        "AccessDenied",
        "(trust.sub: condition key oidc.other.test:sub is not this provider's",
    ),
    (
        "provider-in-another-account",
        lambda s: s.statement().update(
            Principal={"Federated": f"arn:aws:iam::444455556666:oidc-provider/{HOST_PATH}"}
        ),
        403,
        "AccessDenied",
        "(trust.principal: the Federated principal is in account 444455556666, but the role is "
        "in account 111122223333",
    ),
    (
        "action-assume-role",
        lambda s: s.statement().update(Action="sts:AssumeRole"),
        403,
        "AccessDenied",
        "(trust.action: Action does not include sts:AssumeRoleWithWebIdentity (sts:AssumeRole "
        "is for IAM principals, not tokens)",
    ),
    (
        "string-equals-with-a-wildcard",
        lambda s: s.statement()["Condition"]["StringEquals"].update(
            {f"{HOST_PATH}:sub": "system:serviceaccount:ns:*"}
        ),
        403,
        "AccessDenied",
        "(trust.sub: StringEquals compares literally",
    ),
    (
        "a-condition-it-cannot-evaluate",
        _other_condition,
        403,
        "AccessDenied",
        f"(trust.other-conditions: conditions on other keys are not checked: StringEquals "
        f"{HOST_PATH}:amr; this local STS refuses what it cannot evaluate)",
    ),
    (
        "a-deny-statement",
        lambda s: s.policy["Statement"].append({**copy.deepcopy(s.statement()), "Effect": "Deny"}),
        403,
        "AccessDenied",
        "(trust.deny: Statement[1] is a Deny: this local STS does not evaluate Deny statements",
    ),
]


@pytest.mark.parametrize(
    ("breaks", "status", "code", "message"),
    [row[1:] for row in BREAKS],
    ids=[row[0] for row in BREAKS],
)
def test_each_check_fails_alone_with_sts_code_and_the_check_named(
    tmp_path: Path,
    breaks: Callable[[Setup], object],
    status: int,
    code: str,
    message: str,
) -> None:
    setup = Setup()
    breaks(setup)
    error = assume(setup, tmp_path)
    assert error is not None
    assert (error.status, error.code) == (status, code), error.message
    assert message in error.message


def test_a_role_it_does_not_know_is_access_denied(tmp_path: Path) -> None:
    error = assume(Setup(), tmp_path, role="arn:aws:iam::111122223333:role/nobody")
    assert error is not None and error.code == "AccessDenied"
    assert (
        "(trust.role: this STS knows no trust policy for arn:aws:iam::111122223333:role/nobody"
        in error.message
    )


def _another_client_id(setup: Setup) -> None:
    setup.claims.update(aud=["sts.amazonaws.com", "vault"])
    setup.statement()["Condition"]["StringEquals"].update({f"{HOST_PATH}:aud": "vault"})
    setup.client_ids = ("vault",)


@pytest.mark.parametrize(
    "admits",
    [
        lambda s: s.statement()["Condition"].update(
            StringEquals={f"{HOST_PATH}:aud": "sts.amazonaws.com"},
            StringLike={f"{HOST_PATH}:sub": "system:serviceaccount:ns:*"},
        ),
        lambda s: s.policy["Statement"].insert(
            0, {**copy.deepcopy(s.statement()), "Action": "sts:AssumeRole"}
        ),
        _another_client_id,
    ],
    ids=["string-like-namespace", "second-statement-admits", "another-client-id"],
)
def test_what_iam_admits_is_admitted(tmp_path: Path, admits: Callable[[Setup], object]) -> None:
    setup = Setup()
    admits(setup)
    assert assume(setup, tmp_path) is None


def test_an_issuer_it_cannot_reach_is_idp_communication_error(tmp_path: Path) -> None:
    documents = IssuerDocuments(IssuerSource("https://127.0.0.1:9/none", None, None))
    setup = Setup()
    with pytest.raises(StsError) as raised:
        verify_web_identity(
            setup.token(),
            ROLE,
            provider=Provider(documents, ("sts.amazonaws.com",)),
            roles=setup.roles(),
            now=int(time.time()),
        )
    assert raised.value.code == "IDPCommunicationError"
    assert "(issuer.discovery: the discovery document cannot be fetched" in raised.value.message


# -- the HTTP API, in process ---------------------------------------------------------------


def call(app: StsApp, method: str = "POST", **kwargs: Any) -> tuple[int, ET.Element]:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sts") as client:
            return await client.request(method, "/", **kwargs)

    response = asyncio.run(send())
    assert response.headers["content-type"] == "text/xml"
    return response.status_code, ET.fromstring(response.content)


def form(**params: str) -> dict[str, Any]:
    return {
        "content": urlencode(params).encode(),
        "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    }


@pytest.fixture
def app(tmp_path: Path) -> StsApp:
    setup = Setup()
    return StsApp(provider=setup.provider(tmp_path), roles=setup.roles())


def assume_params(token: str, **extra: str) -> dict[str, str]:
    return {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": ROLE,
        "RoleSessionName": "test-session",
        "WebIdentityToken": token,
        **extra,
    }


def test_assume_role_answers_sts_xml_with_short_lived_credentials(app: StsApp) -> None:
    status, root = call(app, **form(**assume_params(Setup().token(), DurationSeconds="900")))
    assert status == 200
    assert (
        root.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}AssumeRoleWithWebIdentityResponse"
    )
    result = root.find("sts:AssumeRoleWithWebIdentityResult", NS)
    assert result is not None
    text = {el.tag.split("}")[1]: el.text for el in result.iter()}
    assert text["Arn"] == "arn:aws:sts::111122223333:assumed-role/app/test-session"
    assert text["AssumedRoleId"] is not None and text["AssumedRoleId"].endswith(":test-session")
    assert text["SubjectFromWebIdentityToken"] == SUBJECT
    assert text["Audience"] == "sts.amazonaws.com"
    assert text["Provider"] == ISSUER
    assert text["AccessKeyId"] is not None and text["AccessKeyId"].startswith("ASIA")
    assert len(text["SecretAccessKey"] or "") == 40
    expiration = time.mktime(time.strptime(text["Expiration"] or "", "%Y-%m-%dT%H:%M:%SZ"))
    assert 800 < expiration - time.mktime(time.gmtime()) <= 900
    session = app.sessions.get(text["AccessKeyId"])
    assert session is not None and session.session_token == text["SessionToken"]


def error_of(root: ET.Element) -> tuple[str | None, str | None]:
    assert root.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}ErrorResponse"
    return (
        root.findtext("sts:Error/sts:Code", namespaces=NS),
        root.findtext("sts:Error/sts:Message", namespaces=NS),
    )


def test_a_refused_token_is_sts_error_xml(app: StsApp) -> None:
    setup = Setup()
    setup.claims.update(sub="system:serviceaccount:ns:other")
    status, root = call(app, **form(**assume_params(setup.token())))
    code, message = error_of(root)
    assert (status, code) == (403, "AccessDenied")
    assert message is not None and "trust.sub" in message
    assert root.findtext("sts:Error/sts:Type", namespaces=NS) == "Sender"


HOSTILE: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("too-large", "POST", {"content": b"A" * (MAX_BODY_BYTES + 1)}, 413, "RequestEntityTooLarge"),
    (
        "lying-content-length",
        "POST",
        {"content": b"x", "headers": {"Content-Length": "99999999999999999999"}},
        413,
        "RequestEntityTooLarge",
    ),
    ("not-utf8", "POST", {"content": b"Action=\xff\xfe"}, 400, "ValidationError"),
    ("no-action", "POST", form(Version="2011-06-15"), 400, "MissingParameter"),
    ("unknown-action", "POST", form(Action="AssumeRole"), 400, "InvalidAction"),
    (
        "other-version",
        "POST",
        form(Action="GetCallerIdentity", Version="2099-01-01"),
        400,
        "InvalidAction",
    ),
    ("put", "PUT", form(Action="GetCallerIdentity"), 405, "InvalidAction"),
    (
        "twice",
        "POST",
        {"content": b"Action=GetCallerIdentity&Action=AssumeRole"},
        400,
        "ValidationError",
    ),
    (
        "many-parameters",
        "POST",
        {"content": b"&".join(b"p%d=1" % i for i in range(100))},
        400,
        "ValidationError",
    ),
    (
        "no-token",
        "POST",
        form(**{**assume_params("x"), "WebIdentityToken": ""}),
        400,
        "MissingParameter",
    ),
    ("garbage-token", "POST", form(**assume_params("not.a.jwt")), 400, "InvalidIdentityToken"),
    ("huge-token", "POST", form(**assume_params("a" * 20_001)), 400, "ValidationError"),
    (
        "bad-role-arn",
        "POST",
        form(**{**assume_params("x.y.z"), "RoleArn": "arn:aws:iam::1:user/x"}),
        400,
        "ValidationError",
    ),
    (
        "bad-session-name",
        "POST",
        form(**assume_params("x.y.z", RoleSessionName="a b")),
        400,
        "ValidationError",
    ),
    (
        "short-duration",
        "POST",
        form(**assume_params("x.y.z", DurationSeconds="60")),
        400,
        "ValidationError",
    ),
    (
        "huge-duration",
        "POST",
        form(**assume_params("x.y.z", DurationSeconds="9" * 5000)),
        400,
        "ValidationError",
    ),
    (
        "unsigned-caller-identity",
        "POST",
        form(Action="GetCallerIdentity"),
        403,
        "MissingAuthenticationToken",
    ),
    (
        "unknown-access-key",
        "POST",
        {
            **form(Action="GetCallerIdentity"),
            "headers": {
                "Authorization": "AWS4-HMAC-SHA256 Credential=ASIAAAAAAAAAAAAAAAAA/20261204/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature="
                + "0" * 64
            },
        },
        403,
        "InvalidClientTokenId",
    ),
    (
        "unreadable-authorization",
        "POST",
        {**form(Action="GetCallerIdentity"), "headers": {"Authorization": b"Basic \xff" * 100}},
        400,
        "SignatureDoesNotMatch",
    ),
]


@pytest.mark.parametrize(
    ("method", "kwargs", "status", "code"),
    [row[1:] for row in HOSTILE],
    ids=[row[0] for row in HOSTILE],
)
def test_hostile_requests_get_a_4xx_sts_error(
    app: StsApp, method: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    got, root = call(app, method, **kwargs)
    assert (got, error_of(root)[0]) == (status, code)


def test_control_characters_in_claims_still_give_well_formed_xml(app: StsApp) -> None:
    setup = Setup()
    setup.claims.update(aud=["\x00\x1b[31m<evil>&"])
    status, root = call(app, **form(**assume_params(setup.token())))
    code, message = error_of(root)
    assert (status, code) == (400, "InvalidIdentityToken")
    assert message is not None and "?[31m<evil>&" in message


def test_a_signature_made_with_another_secret_does_not_match(app: StsApp) -> None:
    _, root = call(app, **form(**assume_params(Setup().token())))
    key = root.findtext(".//sts:AccessKeyId", namespaces=NS)
    token = root.findtext(".//sts:SessionToken", namespaces=NS)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{amz_date[:8]}/us-east-1/sts/"
        "aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=" + "a" * 64,
        "X-Amz-Date": amz_date,
        "X-Amz-Security-Token": token or "",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, answer = call(
        app, content=b"Action=GetCallerIdentity&Version=2011-06-15", headers=headers
    )
    assert (status, error_of(answer)[0]) == (403, "SignatureDoesNotMatch")
    headers["X-Amz-Security-Token"] = "stolen-key-without-its-token"
    status, answer = call(
        app, content=b"Action=GetCallerIdentity&Version=2011-06-15", headers=headers
    )
    assert (status, error_of(answer)[0]) == (403, "InvalidClientTokenId")


# -- start-up -------------------------------------------------------------------------------


def test_roles_from_a_folder_of_get_role_outputs(tmp_path: Path) -> None:
    setup = Setup()
    (tmp_path / "app.json").write_text(
        json.dumps(
            {"Role": {"RoleName": "app", "Arn": ROLE, "AssumeRolePolicyDocument": setup.policy}}
        )
    )
    (tmp_path / "notes.txt").write_text("not a role")
    assert list(load_roles([], [tmp_path])) == [ROLE]


@pytest.mark.parametrize(
    ("files", "flags", "message"),
    [
        ({"bare.json": "{SETUP}"}, [], "a bare policy document names no role"),
        ({"bad.json": "{"}, [], "--roles {DIR}/bad.json: not JSON"),
        ({}, ["arn:aws:iam::1:role/x=p.json"], "not an IAM role ARN"),
        ({}, ["no-equals"], "expected ROLE_ARN=FILE"),
        ({}, [f"{ROLE}={{DIR}}/missing.json"], "no such file"),
    ],
    ids=["bare-document-in-folder", "not-json", "bad-arn", "no-file", "missing-file"],
)
def test_role_inputs_it_cannot_use_are_named(
    tmp_path: Path, files: dict[str, str], flags: list[str], message: str
) -> None:
    policy = json.dumps(Setup().policy)
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("{SETUP}", policy))
    with pytest.raises(RolesError) as raised:
        load_roles(
            [flag.replace("{DIR}", str(tmp_path)) for flag in flags], [tmp_path] if files else []
        )
    assert message.replace("{DIR}", str(tmp_path)) in str(raised.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no issuer: give --issuer-url URL, or --discovery FILE and --jwks FILE"),
        (["--discovery", "d.json"], "--discovery without --issuer-url needs --jwks FILE"),
        (["--issuer-url", "https://x", "--tls-cert", "c"], "--tls-cert and --tls-key go together"),
        (
            ["--issuer-url", "http://x"],
            "--issuer-url 'http://x': expected https://HOST[/PATH], the tokens' iss",
        ),
    ],
)
def test_sts_refuses_to_start_without_what_it_needs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sts", *argv]) == 2
    assert capsys.readouterr().err.strip() == f"pod-identity-webhook sts: {message}"


# -- the server process ---------------------------------------------------------------------


def _sts_args(tmp_path: Path) -> list[str]:
    setup = Setup()
    setup.provider(tmp_path)  # writes the two documents
    (tmp_path / "trust.json").write_text(json.dumps(setup.policy))
    return [
        "--discovery",
        str(tmp_path / "openid-configuration"),
        "--jwks",
        str(tmp_path / "keys.json"),
        "--role",
        f"{ROLE}={tmp_path / 'trust.json'}",
    ]


def test_the_server_refuses_giant_headers_and_bodies_and_goes_on_serving(tmp_path: Path) -> None:
    with (
        running_sts(tmp_path / "sts.log", *_sts_args(tmp_path)) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        giant = client.post("/", headers={"X-Big": "a" * 40_000}, content=b"Action=x")
        assert 400 <= giant.status_code < 500
        large = client.post("/", content=b"a" * (MAX_BODY_BYTES + 1))
        assert large.status_code == 413
        good = client.post("/", **form(**assume_params(Setup().token())))
        assert good.status_code == 200, good.text
    log = (tmp_path / "sts.log").read_text()
    assert (
        "AssumeRoleWithWebIdentity: arn:aws:sts::111122223333:assumed-role/app/test-session" in log
    )
    assert "Traceback" not in log


def test_off_loopback_it_warns_who_can_get_credentials(tmp_path: Path) -> None:
    with running_sts(
        tmp_path / "sts.log", "--bind-address", "0.0.0.0", *_sts_args(tmp_path)
    ) as url:
        assert httpx.post(url, **form(Action="GetCallerIdentity")).status_code == 403
    log = (tmp_path / "sts.log").read_text()
    assert "listening on 0.0.0.0, not loopback: whoever reaches it and holds a token" in log


def test_https_with_a_certificate(tmp_path: Path, cert_files: CertFiles) -> None:
    tls = ["--tls-cert", str(cert_files.cert), "--tls-key", str(cert_files.key)]
    with running_sts(tmp_path / "sts.log", *tls, *_sts_args(tmp_path)) as url:
        assert url.startswith("https://127.0.0.1:")
        answer = httpx.post(
            url,
            verify=ssl.create_default_context(cafile=str(cert_files.ca)),
            **form(**assume_params(Setup().token())),
        )
        assert answer.status_code == 200
