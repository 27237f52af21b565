"""The issuer URL and its `/.well-known/openid-configuration` document, in the shapes STS expects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from webhook.oidc.errors import OidcInputError
from webhook.oidc.keys import PublicKey, algorithm

DISCOVERY_PATH = ".well-known/openid-configuration"
JWKS_FILE = "keys.json"
# kube-apiserver's own discovery document uses this value for service-account issuers
AUTHORIZATION_ENDPOINT = "urn:kubernetes:programmatic_authorization"
DEFAULT_ALGORITHMS = ("RS256",)


@dataclass(frozen=True, slots=True)
class Issuer:
    url: str  # https://host/path, exactly what kube-apiserver puts in `iss`

    @property
    def host_path(self) -> str:
        """The issuer without `https://`: IAM's provider name and condition-key prefix."""
        return self.url.removeprefix("https://")


def parse_issuer(url: str) -> Issuer:
    expected = "expected https://HOST[/PATH] with no trailing slash, query, fragment or port"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OidcInputError(f"--issuer {url!r}: {exc}; {expected}") from exc
    if parts.scheme != "https" or not url.startswith("https://"):
        raise OidcInputError(
            f"--issuer {url!r}: scheme {url.partition('://')[0] if parts.scheme else 'missing'!r}, "
            f"STS only trusts https (lower case); {expected}"
        )
    problem = ""
    if not parts.hostname:
        problem = "no host"
    elif parts.username is not None or parts.password is not None:
        problem = "user info in the URL"
    elif port is not None:
        problem = "a port (IAM OIDC providers cannot have one)"
    elif parts.query or parts.fragment or url.endswith(("?", "#")):
        problem = "a query or fragment"
    elif url.endswith("/"):
        problem = "a trailing slash (tokens' iss would not match the provider)"
    elif any(ch.isspace() for ch in url):
        problem = "whitespace"
    if problem:
        raise OidcInputError(f"--issuer {url!r}: {problem}; {expected}")
    return Issuer(url)


def signing_algorithms(keys: Sequence[PublicKey]) -> list[str]:
    return sorted({algorithm(key) for key in keys}) or list(DEFAULT_ALGORITHMS)


def discovery_document(issuer: Issuer, keys: Sequence[PublicKey]) -> dict[str, object]:
    return {
        "issuer": issuer.url,
        "jwks_uri": f"{issuer.url}/{JWKS_FILE}",
        "authorization_endpoint": AUTHORIZATION_ENDPOINT,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algorithms(keys),
        "claims_supported": ["sub", "iss"],
    }
