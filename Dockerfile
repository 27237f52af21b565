# syntax=docker/dockerfile:1
# The webhook image: `make image` (docker build -t pod-identity-webhook:dev .).
# Dependencies come from requirements.lock (exact versions, regenerate with `make lock`);
# the runtime stage is the same slim Python with only the virtual environment copied in.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/webhook
WORKDIR /src
# Dependencies first, so this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/webhook/bin/pip install --no-deps --requirement requirements.lock
COPY pyproject.toml README.md ./
COPY webhook ./webhook
# --no-deps: the lock is complete, and `pip check` proves it.
RUN /opt/webhook/bin/pip install --no-deps . \
    && /opt/webhook/bin/pip check \
    && /opt/webhook/bin/python -m compileall -q /opt/webhook/lib

FROM ${PYTHON_IMAGE}
# Bytecode was compiled in the build stage; nothing is written at run time, so the
# container runs with readOnlyRootFilesystem (TLS reloads use /tmp, an emptyDir in the manifests).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/webhook/bin:$PATH
COPY --from=build /opt/webhook /opt/webhook
# Numeric, so runAsNonRoot can verify it without a passwd entry.
USER 65532:65532
# A non-root user cannot bind 443 everywhere: the webhook listens on 8443, the Service maps 443 to it.
EXPOSE 8443 9999
ENTRYPOINT ["pod-identity-webhook"]
CMD ["serve", "--port=8443"]
