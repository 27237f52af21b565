"""Self-hosted IRSA OIDC issuer kit: signing keys, JWKS, discovery document, test tokens, IAM trust."""
