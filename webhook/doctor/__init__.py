"""`doctor`: why a pod gets (or does not get) AWS credentials, check by check."""
