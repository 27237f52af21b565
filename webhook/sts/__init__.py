"""`pod-identity-webhook sts`: a local STS for tests that checks web identity tokens as AWS STS
does, with doctor's checks (docs/kind-testing.md)."""
