"""Check what IRSA depends on in a service-account token kube-apiserver issued.

    python3 hack/kind/check-token.py TOKEN_FILE KEYS_JSON PUBLIC_KEY ISSUER SUBJECT [POD]

AWS STS accepts the token only if its `iss` is the issuer whose discovery document it reads,
its header's `kid` names a key in that issuer's keys.json (`pod-identity-webhook oidc jwks`),
and the RS256 signature verifies against that key. This checks all three, plus the audience,
the subject and (given POD) the pod the token is bound to. The signature is verified with
openssl, independently of the code that wrote keys.json. Standard library only.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def check(
    token: str, keys: dict[str, Any], public_key: Path, issuer: str, subject: str, pod: str
) -> list[str]:
    problems = []
    header_part, payload_part, signature_part = token.strip().split(".")
    header = json.loads(b64decode(header_part))
    claims = json.loads(b64decode(payload_part))
    kids = sorted(key["kid"] for key in keys["keys"])
    if header.get("alg") != "RS256":
        problems.append(f"alg is {header.get('alg')!r}, AWS STS wants RS256")
    if header.get("kid") not in kids:
        problems.append(f"kid {header.get('kid')!r} is not in keys.json {kids}")
    if claims.get("iss") != issuer:
        problems.append(f"iss is {claims.get('iss')!r}, want {issuer!r}")
    if "sts.amazonaws.com" not in claims.get("aud", []):
        problems.append(f"aud is {claims.get('aud')!r}, want sts.amazonaws.com in it")
    if claims.get("sub") != subject:
        problems.append(f"sub is {claims.get('sub')!r}, want {subject!r}")
    bound = claims.get("kubernetes.io", {}).get("pod", {}).get("name")
    if pod and bound != pod:
        problems.append(f"the token is bound to pod {bound!r}, want {pod!r}")
    with tempfile.TemporaryDirectory() as work:
        signed, signature = Path(work, "signed"), Path(work, "signature")
        signed.write_bytes(f"{header_part}.{payload_part}".encode())
        signature.write_bytes(b64decode(signature_part))
        verified = subprocess.run(
            [
                "openssl",
                "dgst",
                "-sha256",
                "-verify",
                str(public_key),
                "-signature",
                str(signature),
                str(signed),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if verified.returncode != 0:
        problems.append(
            f"the signature does not verify against {public_key}: {verified.stdout.strip()}"
        )
    return problems


def main(argv: list[str]) -> int:
    token_file, keys_json, public_key, issuer, subject, *rest = argv
    problems = check(
        Path(token_file).read_text(),
        json.loads(Path(keys_json).read_text()),
        Path(public_key),
        issuer,
        subject,
        rest[0] if rest else "",
    )
    for problem in problems:
        print(f"token: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
