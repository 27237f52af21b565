"""`python -m tests.support.fallback ARGS`: `serve` with ARGS, where the runner finds uvicorn's
internals missing, as it would on a uvicorn that dropped `RequestResponseCycle`: the real
server through the fallback path (runner.run_servers's `missing` argument)."""

from __future__ import annotations

import functools
import importlib
import sys
import types

from webhook import cli
from webhook.commands import serve
from webhook.server.transport import runner
from webhook.server.transport.uvicorninternals import HTTPTOOLS, USES, missing_internals


def stand_in_modules(drop: str) -> dict[str, object]:
    """uvicorn's modules as installed, except that HTTPTOOLS has no attribute `drop`."""
    modules: dict[str, object] = {use.module: importlib.import_module(use.module) for use in USES}
    stand_in = types.SimpleNamespace(**vars(modules[HTTPTOOLS]))
    delattr(stand_in, drop)
    modules[HTTPTOOLS] = stand_in
    return modules


def main() -> int:
    missing = missing_internals(stand_in_modules("RequestResponseCycle"))
    # `serve` calls the runner by this name; everything else is `python -m webhook serve`
    serve.run_servers = functools.partial(runner.run_servers, missing=missing)  # type: ignore[attr-defined]
    return cli.main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
