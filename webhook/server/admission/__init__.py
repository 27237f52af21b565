"""What the webhook serves: AdmissionReview in and out (codec.py), the admission endpoint that
checks a request and hands it to its decision (endpoint.py), and the ASGI apps (apps.py)."""
