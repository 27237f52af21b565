"""The issuer's published documents: discovery `issuer` and `jwks_uri`, and the JWKS itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhook.doctor.report import Check, failed, not_checked, passed
from webhook.oidc.discovery import DISCOVERY_PATH


@dataclass(frozen=True, slots=True)
class Published:
    """What is known about the issuer; a fetch that failed leaves its document None and a reason."""

    issuer_url: str | None = None  # from --issuer-url
    discovery: dict[str, Any] | None = None
    jwks: dict[str, Any] | None = None
    discovery_error: str = ""
    issuer_problem: str = ""  # why IAM would refuse --issuer-url as a provider URL
    jwks_error: str = ""

    def issuer(self) -> str | None:
        if self.issuer_url:
            return self.issuer_url
        value = (self.discovery or {}).get("issuer")
        return value if isinstance(value, str) else None


def discovery_checks(published: Published) -> list[Check]:
    checks = [_issuer_url(published)] if published.issuer_url else []
    return checks + _discovery(published)


def _issuer_url(published: Published) -> Check:
    if published.issuer_problem:
        return failed(
            "issuer.url",
            "IAM cannot register this issuer as an OIDC provider",
            seen=f"{published.issuer_url}: {published.issuer_problem}",
            expected="https://HOST[/PATH] with no port, trailing slash, query or fragment",
            fix="serve the issuer on port 443 under a plain https URL; use it in "
            "--service-account-issuer and in the IAM provider",
        )
    return passed(
        "issuer.url", "a URL IAM accepts for an OIDC provider", seen=published.issuer_url or ""
    )


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
    if published.issuer_url and issuer != published.issuer_url:
        checks.append(
            failed(
                "issuer.discovery",
                "the discovery document's issuer differs from the URL it is served under",
                seen=repr(issuer),
                expected=published.issuer_url,
                fix="regenerate it with oidc discovery/bundle --issuer ISSUER_URL",
            )
        )
    elif not isinstance(issuer, str) or not issuer.startswith("https://"):
        checks.append(
            failed(
                "issuer.discovery",
                "the discovery document's issuer is not an https:// URL",
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
