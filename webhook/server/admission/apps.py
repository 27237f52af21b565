"""The ASGI apps: the HTTPS webhook app and the plain-HTTP metrics app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import orjson
from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from webhook import __version__
from webhook.flags.settings import Settings
from webhook.mutation.serviceaccount import ServiceAccountIdentity
from webhook.server.admission.endpoint import AdmissionEndpoint, Decide, Enforce
from webhook.server.admission.observer import AdmissionObserver
from webhook.server.metrics.exposition import CONTENT_TYPE
from webhook.server.metrics.registry import Metrics

MUTATE_PATH = "/mutate"
MUTATE_FARGATE_PATH = "/mutate-fargate"
DEBUG_CACHE_PATH = "/debug/alpha/cache"  # upstream's path, with --enable-debugging-handlers


class Cache(Protocol):
    def snapshot(self) -> Mapping[str, ServiceAccountIdentity]: ...


class Served(Protocol):
    """What the apps serve: the assembled webhook (webhook/assembly/webhook.py)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def decide_identity(self) -> Decide: ...
    @property
    def decide_fargate(self) -> Decide: ...
    @property
    def identity_enforcement(self) -> Enforce | None: ...
    @property
    def store(self) -> Cache: ...

    def liveness(self) -> list[str]: ...
    def readiness(self) -> list[str]: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def cache_json(cache: Cache) -> dict[str, dict[str, object]]:
    """The ServiceAccount cache as upstream's /debug/alpha/cache prints it."""
    return {
        key: {
            "RoleARN": identity.role_arn,
            "Audience": identity.audience,
            "UseRegionalSTS": identity.regional_sts,
            "TokenExpiration": identity.token_expiration,
        }
        for key, identity in cache.snapshot().items()
    }


def _health_answer(reasons: list[str], failing: str, status_code: int) -> Response:
    if reasons:
        return PlainTextResponse(
            f"{failing}: " + "; ".join(reasons) + "\n", status_code=status_code
        )
    return PlainTextResponse("ok")


def _add_health_routes(api: FastAPI, served: Served) -> None:
    @api.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> Response:
        # Fails only when a background task cannot be kept running: kubelet then restarts us.
        return _health_answer(served.liveness(), "unhealthy", 500)

    @api.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> Response:
        return _health_answer(served.readiness(), "not ready", 503)


class WebhookApp:
    """Admission paths go straight to their endpoint; everything else to FastAPI."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.api = FastAPI(
            title="pod-identity-webhook",
            version=__version__,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        _add_health_routes(self.api, served)
        observe = AdmissionObserver(served.metrics, fargate_path=MUTATE_FARGATE_PATH)
        settings = served.settings
        self.endpoints: dict[str, AdmissionEndpoint] = {
            path: AdmissionEndpoint(
                path,
                decide,
                max_body_bytes=settings.max_request_bytes,
                observe=observe,
                time_budget=settings.request_time_budget,
                enforce=enforce,
            )
            for path, decide, enforce in (
                (MUTATE_PATH, served.decide_identity, served.identity_enforcement),
                (MUTATE_FARGATE_PATH, served.decide_fargate, None),
            )
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.api(scope, receive, send)


def build_metrics_app(served: Served) -> FastAPI:
    api = FastAPI(
        title="pod-identity-webhook metrics", docs_url=None, redoc_url=None, openapi_url=None
    )
    _add_health_routes(api, served)

    if served.settings.enable_debugging_handlers:

        @api.get(DEBUG_CACHE_PATH)
        async def debug_cache() -> Response:
            return Response(
                orjson.dumps(cache_json(served.store), option=orjson.OPT_SORT_KEYS),
                media_type="application/json",
            )

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(served.metrics.exposition(), media_type=CONTENT_TYPE)

    return api
