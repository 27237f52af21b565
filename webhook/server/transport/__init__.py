"""How the apps are served: HTTPS for admission and plain HTTP for metrics, by uvicorn, in one
event loop (runner.py).

Which protocol runs: the webhook server is boundedservers.py's, on uvicorn's httptools protocol
subclassed twice: coalescingprotocol.py sends each response as one write (batched under load),
and boundedprotocol.py adds the bounds one client controls (head size, pipelining) and the
gate on requests in flight (requestgate.py); acceptor.py accepts connections under
--max-connections with TLS handshake and request-read deadlines. The metrics server is boundedservers.py's too, on uvicorn's protocol.

When the fallback runs, and why: those classes rely on uvicorn internals beyond its public API.
At start-up uvicorninternals.py checks that every one of them is there; when one is missing (a
uvicorn outside the versions pyproject.toml allows, or a patched one), the runner logs which
and serves both apps with fallbackservers.py, on uvicorn's own protocol and server, keeping TLS
and the flags uvicorn can honour (docs/performance.md, "uvicorn's internals").

Beside them: tls.py (the SSL context and certificate reload), listen.py (sockets as Go's
net.Listen opens them), deadlines.py (the request time budget's one coarse timer) and
serverlogs.py (which server a uvicorn log line is about).
"""
