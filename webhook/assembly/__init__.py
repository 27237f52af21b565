"""The one place that assembles the webhook from Settings (docs/architecture.md).

From Settings to the sources (files, the cluster) and to a ready decision for identity and for
Fargate, each part built once. `serve` builds the live webhook here (webhook.py: watched
files, cluster watches, metrics); `mutate` and `doctor` build the same decisions from sources
read once (offline.py). The server only serves what is assembled here.
"""
