"""The shell: HTTP, TLS, metrics. Only this package knows AdmissionReview JSON and the web stack.

- admission/: what is served: the AdmissionReview codec, the /mutate and /mutate-fargate
  endpoint, and the two ASGI apps (the webhook's and the metrics server's);
- transport/: how it is served: uvicorn with our protocol and servers, TLS, listening sockets,
  request deadlines, and the runner that serves both apps in one event loop;
- metrics/: the Prometheus families and their exposition in Go's text format.

What the apps serve is assembled elsewhere (webhook/assembly/, docs/architecture.md).
"""
