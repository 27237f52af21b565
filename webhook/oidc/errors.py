"""The one error the OIDC kit raises for input it cannot use."""

from __future__ import annotations


class OidcInputError(ValueError):
    """Bad input (key file, issuer URL, subject, account id): the message names it and the fix."""
