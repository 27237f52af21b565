"""Mutating admission webhook that gives Kubernetes pods AWS IAM credentials."""

__version__ = "0.1.0"
