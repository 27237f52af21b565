"""The issuer: its form in every place it is written, its published documents (discovery
`issuer` and `jwks_uri`), and the JWKS itself.

The issuer is written in up to four places: --issuer-url (what IAM's provider was created
with), the discovery document's `issuer`, the token's `iss` (kube-apiserver's
--service-account-issuer) and the trust policy's provider name. STS compares them as strings,
and IAM accepts only `https://HOST[/PATH]` with no port, trailing slash, query or fragment.
A difference of form alone (a trailing slash, the scheme, a port) is reported once, by
`issuer.url`, with one fix; the checks that compare the places with each other then look past
it, so that one mistake is not reported as three (README, "Why does a pod get no credentials?").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webhook.doctor.report import Check, failed, not_checked, passed
from webhook.oidc.discovery import DISCOVERY_PATH, parse_issuer
from webhook.oidc.errors import OidcInputError

ISSUER_URL = "--issuer-url"
DISCOVERY_ISSUER = "the discovery document's issuer"
TOKEN_ISS = "the token's iss"
PROVIDER = "the trust policy's provider"
# Where each place's issuer is fixed, for the one fix issuer.url gives.
_REMEDIES = {
    ISSUER_URL: "the IAM OIDC provider's URL (and --issuer-url)",
    DISCOVERY_ISSUER: "the discovery document (oidc bundle --issuer {url})",
    TOKEN_ISS: "kube-apiserver --service-account-issuer (new tokens then carry it)",
    PROVIDER: "the trust policy's Federated principal (arn:aws:iam::ACCOUNT:oidc-provider/{name})",
}


@dataclass(frozen=True, slots=True)
class Published:
    """What is known about the issuer; a fetch that failed leaves its document None and a reason."""

    issuer_url: str | None = None  # from --issuer-url
    discovery: dict[str, Any] | None = None
    jwks: dict[str, Any] | None = None
    discovery_error: str = ""
    jwks_error: str = ""

    def issuer(self) -> str | None:
        if self.issuer_url:
            return self.issuer_url
        value = (self.discovery or {}).get("issuer")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Written:
    """The issuer as one place writes it; a provider name is written without a scheme."""

    where: str  # ISSUER_URL, DISCOVERY_ISSUER, TOKEN_ISS or PROVIDER
    text: str


@dataclass(frozen=True, slots=True)
class _Form:
    written: Written
    key: tuple[str, str]  # (host, path without trailing slash): what is the same issuer
    problems: tuple[str, ...]  # "a trailing slash", "a port", ... as issuer.url names them


def issuer_key(text: str) -> tuple[str, str] | None:
    """(host, path) of an issuer URL or provider name, past its scheme, port and trailing slash;
    None when it names no host. Two places with the same key differ in form alone."""
    url = text if "://" in text else f"https://{text}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    return (host, parts.path.rstrip("/")) if host else None


def provider_name(issuer: str) -> str:
    """The provider name (and condition-key prefix) for an issuer: without its scheme and
    trailing slash, which issuer.url reports; a port is kept, as it would be in the keys."""
    return issuer.partition("://")[2].rstrip("/") if "://" in issuer else issuer.rstrip("/")


def same_but_form(a: object, b: object) -> bool:
    """Whether two issuers differ, but only in form (issuer.url reports that difference)."""
    if not isinstance(a, str) or not isinstance(b, str) or a == b:
        return False
    key = issuer_key(a)
    return key is not None and key == issuer_key(b)


def _form(written: Written) -> _Form | None:
    key = issuer_key(written.text)
    if key is None:
        return None
    text = written.text
    problems = []
    if written.where == PROVIDER:
        if "://" in text:
            problems.append("a URL scheme (IAM names providers without https://)")
    elif not text.startswith("https://"):
        scheme = text.partition("://")[0] if "://" in text else "none"
        problems.append(f"scheme {scheme} (STS trusts only https)")
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None or parts.netloc.endswith(":"):
        problems.append("a port (IAM OIDC providers cannot have one; STS connects to 443)")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        problems.append("a query or fragment")
    if text.endswith("/"):
        problems.append("a trailing slash (the token's iss would not match the provider)")
    return _Form(written, key, tuple(problems))


def issuer_form_check(places: Sequence[Written]) -> Check:
    """`issuer.url`: the issuer is a URL IAM accepts, written the same in every place given."""
    name = "issuer.url"
    forms = [form for form in map(_form, places) if form is not None]
    if not forms:
        return not_checked(name, "no issuer given (--issuer-url, --discovery or --token)")
    primary = forms[0]
    # places naming another issuer altogether are for the checks that compare them
    same = [form for form in forms if form.key == primary.key]
    url = f"https://{primary.key[0]}{primary.key[1]}"
    other = _other_problem(primary.written) if primary.written.where != PROVIDER else ""
    wrong = [form for form in same if form.problems]
    if not wrong and not other:
        shown = "; ".join(f"{form.written.where}: {form.written.text}" for form in same)
        return passed(name, "a URL IAM accepts, written the same in every place", seen=shown)
    if other and not wrong:
        return failed(
            name,
            f"IAM cannot register this issuer as an OIDC provider: {other}",
            seen=f"{primary.written.where}: {primary.written.text}",
            expected="https://HOST[/PATH] with no port, trailing slash, query or fragment",
            fix="use a plain https://HOST[/PATH] in --service-account-issuer and the IAM provider",
        )
    kinds = sorted({problem.split(" (")[0] for form in wrong for problem in form.problems})
    summary = "; ".join(_name_kind(kind, same) for kind in kinds)
    remedies = []
    for form in wrong:
        remedy = _REMEDIES[form.written.where].format(url=url, name=url.removeprefix("https://"))
        if remedy not in remedies:
            remedies.append(remedy)
    fix = f"write the issuer as {url} in " + "; in ".join(remedies)
    if any(kind == "a port" for kind in kinds):
        fix = f"serve the issuer on port 443; {fix}"
    seen = "; ".join(
        f"{form.written.where}: {form.written.text}"
        + (f" ({', '.join(p.split(' (')[0] for p in form.problems)})" if form.problems else "")
        for form in same
    )
    return failed(name, summary, seen=seen, expected=url, fix=fix)


def _name_kind(kind: str, forms: Sequence[_Form]) -> str:
    """E.g. "a trailing slash in the token's iss (not in the trust policy's provider): ..."."""
    having = [form for form in forms if any(p.startswith(kind) for p in form.problems)]
    reason = next(p for p in having[0].problems if p.startswith(kind)).partition(" (")[2]
    without = [form.written.where for form in forms if form not in having]
    contrast = f" (not in {_listed(without)})" if without else ""
    where = _listed([form.written.where for form in having])
    return f"{kind} in {where}{contrast}" + (f": {reason.removesuffix(')')}" if reason else "")


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _other_problem(written: Written) -> str:
    """What else makes IAM refuse the URL (user info, whitespace), past the named forms."""
    try:
        parse_issuer(written.text)
    except OidcInputError as exc:
        problem = str(exc).split(": ", 1)[-1].split(";")[0]
        if not problem.startswith(("scheme", "a port", "a query", "a trailing")):
            return problem
    return ""


def discovery_checks(published: Published) -> list[Check]:
    return _discovery(published)


def _discovery(published: Published) -> list[Check]:
    if published.discovery_error:
        return [
            failed(
                "issuer.discovery",
                "the discovery document cannot be fetched, so STS cannot either",
                seen=published.discovery_error,
                expected=f"HTTPS 200 with JSON at ISSUER/{DISCOVERY_PATH}",
                fix="publish it (oidc bundle writes it) where the issuer URL points",
            )
        ]
    if published.discovery is None:
        return [
            not_checked("issuer.discovery", "no discovery document (--discovery, --issuer-url)")
        ]
    checks = []
    issuer = published.discovery.get("issuer")
    if same_but_form(issuer, published.issuer_url):
        checks.append(
            passed(
                "issuer.discovery",
                "discovery document names the issuer (its form differs: see issuer.url)",
                seen=str(issuer),
            )
        )
    elif published.issuer_url and issuer != published.issuer_url:
        checks.append(
            failed(
                "issuer.discovery",
                "the discovery document's issuer differs from the URL it is served under",
                seen=repr(issuer),
                expected=published.issuer_url,
                fix="regenerate it with oidc discovery/bundle --issuer ISSUER_URL",
            )
        )
    elif not isinstance(issuer, str) or issuer_key(issuer) is None:
        # a URL of the wrong form (http://, a port) is issuer.url's to name
        checks.append(
            failed(
                "issuer.discovery",
                "the discovery document's issuer is not a URL",
                seen=repr(issuer),
                expected="https://HOST[/PATH]",
            )
        )
    else:
        checks.append(
            passed("issuer.discovery", "discovery document names the issuer", seen=issuer)
        )
    checks.append(_jwks_uri(published.discovery.get("jwks_uri"), published.issuer_url or issuer))
    return checks


def _jwks_uri(uri: object, issuer: object) -> Check:
    name = "issuer.jwks-uri"
    if not isinstance(uri, str):
        return failed(name, "the discovery document has no jwks_uri", expected="ISSUER/keys.json")
    if not uri.startswith("https://"):
        return failed(
            name,
            "jwks_uri is not HTTPS; STS fetches keys only over HTTPS",
            seen=uri,
            expected="https://...",
            fix="serve keys.json over HTTPS",
        )
    if isinstance(issuer, str) and not uri.startswith(issuer.rstrip("/") + "/"):
        return failed(
            name,
            "jwks_uri is not under the issuer URL",
            seen=uri,
            expected=f"{issuer}/keys.json",
            fix="publish keys.json under the issuer's path",
        )
    return passed(name, "jwks_uri is HTTPS and under the issuer", seen=uri)


def jwks_keys(published: Published) -> tuple[list[dict[str, Any]] | None, Check]:
    name = "issuer.jwks"
    if published.jwks_error:
        return None, failed(
            name,
            "the JWKS cannot be fetched, so STS cannot verify any token",
            seen=published.jwks_error,
            expected='HTTPS 200 with {"keys": [...]}',
            fix="publish keys.json (oidc bundle writes it) at the discovery document's jwks_uri",
        )
    if published.jwks is None:
        return None, not_checked(name, "no JWKS (--jwks, --issuer-url)")
    keys = published.jwks.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        return None, failed(
            name,
            "the JWKS has no keys",
            seen=str(keys)[:100],
            expected="a non-empty keys list",
            fix="oidc jwks --public-key sa.pub writes it",
        )
    kids = ", ".join(str(key.get("kid")) for key in keys)
    return keys, passed(name, f"{len(keys)} key(s) published", seen=kids)
