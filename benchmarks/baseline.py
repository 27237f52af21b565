"""The baseline to beat: a bare FastAPI route that decodes the body and answers a fixed response.

Run by the benchmark on the same uvicorn (uvloop, httptools, TLS, one worker) as the webhook.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

_FIXED = orjson.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "baseline", "allowed": True},
    }
)


@app.post("/mutate")
async def mutate(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(_FIXED, media_type="application/json")


@app.get("/readyz")
async def readyz() -> Response:
    return Response(b"ok", media_type="text/plain")
