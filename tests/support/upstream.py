"""Upstream's container command, as its own manifests run it: the args every drop-in test uses."""

from __future__ import annotations

# aws/amazon-eks-pod-identity-webhook@3bf80a34 deploy/deployment-base.yaml, container command
UPSTREAM_DEPLOY_BASE = [
    "/webhook",
    "--in-cluster=false",
    "--namespace=default",
    "--service-name=pod-identity-webhook",
    "--annotation-prefix=eks.amazonaws.com",
    "--token-audience=sts.amazonaws.com",
    "--logtostderr",
]
