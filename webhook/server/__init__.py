"""The shell: HTTP, TLS, metrics. Only this package knows AdmissionReview JSON and the web stack."""
