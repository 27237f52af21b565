"""What the core falls back to when no flag or annotation says otherwise: upstream's defaults.

The command-line flags (webhook/flags/shared.py) and Settings (webhook/flags/settings.py) take their defaults
from here, so the core never imports the shell.
"""

from __future__ import annotations

DEFAULT_ANNOTATION_PREFIX = "eks.amazonaws.com"
DEFAULT_TOKEN_AUDIENCE = "sts.amazonaws.com"
DEFAULT_TOKEN_MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
DEFAULT_TOKEN_EXPIRATION_SECONDS = 86400
MIN_TOKEN_EXPIRATION_SECONDS = 600  # kube-apiserver refuses shorter projected tokens
JITTER_MIN_TOKEN_EXPIRATION_SECONDS = 79200  # upstream jitters 86400 into [79200, 86400]
DEFAULT_CC_AUDIENCE = "pods.eks.amazonaws.com"
DEFAULT_CC_MOUNT_PATH = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
DEFAULT_CC_VOLUME_NAME = "eks-pod-identity-token"
DEFAULT_CC_TOKEN_PATH = "eks-pod-identity-token"
DEFAULT_CC_FULL_URI = "http://169.254.170.23/v1/credentials"
DEFAULT_FARGATE_SCHEDULER_NAME = "fargate-scheduler"
