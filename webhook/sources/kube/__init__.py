"""The Kubernetes API client and the list/watch machinery every cluster source shares."""
