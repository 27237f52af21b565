"""What the webhook serves: AdmissionReview in and out (codec.py), the admission endpoint that
checks a request and hands it to its decision (endpoint.py), what each answered request leaves
behind, its metrics and log line (observer.py), and the ASGI apps (apps.py)."""
