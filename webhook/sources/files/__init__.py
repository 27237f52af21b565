"""Watched files: the poll loop, container credentials, Fargate profiles."""
