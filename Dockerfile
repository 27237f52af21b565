# The webhook image: `make image` (hack/image/build.sh). docs/deploy.md explains every stage.
# Dependencies come from requirements.lock (exact versions, regenerate with `make lock`).
# No `# syntax=` line: BuildKit would fetch that frontend from a registry, and builds must work
# where none is reachable.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# The package index as the host reaches it (hack/image/build.sh passes the host's pip settings).
# Build arguments stay in this stage: the final image has neither them nor pip.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/webhook
WORKDIR /src
# Dependencies first, so this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/webhook/bin/pip install --no-deps --requirement requirements.lock
COPY pyproject.toml README.md ./
COPY webhook ./webhook
# --no-deps: the lock is complete, and `pip check` proves it. Then pip and setuptools leave the
# environment, and so does the kubernetes client's asyncio flavour (kubernetes.aio, 68 MB of
# generated code) with aiohttp and its helpers, which only it imports: the webhook uses
# kubernetes.client and kubernetes.config. Everything left is compiled, so nothing is written
# at run time. docs/deploy.md lists what the image holds.
RUN /opt/webhook/bin/pip install --no-deps . \
    && /opt/webhook/bin/pip check \
    && /opt/webhook/bin/pip uninstall --yes --quiet pip setuptools \
    && site="$(/opt/webhook/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && rm -rf "$site"/kubernetes/aio "$site"/aiohttp* "$site"/aiohappyeyeballs* "$site"/aiosignal* \
        "$site"/yarl* "$site"/multidict* "$site"/frozenlist* "$site"/propcache* \
    && /opt/webhook/bin/python -c 'import kubernetes, kubernetes.client, kubernetes.config, webhook.cli' \
    && /opt/webhook/bin/python -m compileall -q -j 0 /opt/webhook/lib
# /webhook, upstream's entry point, may be asked for port 443 as user 65532 where the runtime
# does not lower net.ipv4.ip_unprivileged_port_start. It runs the same console script through
# a copy of the interpreter carrying the file capability cap_net_bind_service (set as the xattr
# `setcap cap_net_bind_service=+ep` writes, so no libcap tools are needed). The kernel refuses
# to start a binary whose file capabilities the bounding set lacks (capabilities: drop: [ALL]),
# so /webhook falls back to the plain interpreter there; `pod-identity-webhook` never uses it.
COPY hack/image/webhook.sh /opt/webhook/bin/webhook
RUN cp "$(readlink -f /opt/webhook/bin/python)" /opt/webhook/bin/python-netbind \
    && /opt/webhook/bin/python -c 'import os, struct; os.setxattr("/opt/webhook/bin/python-netbind", "security.capability", struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0))' \
    && chmod 0755 /opt/webhook/bin/webhook /opt/webhook/bin/python-netbind

# The base without what only installing needs (pip, setuptools, ensurepip, wheel, apt's lists)
# and with its standard library compiled: the official slim image deletes its .pyc files.
FROM ${PYTHON_IMAGE} AS runtime
RUN stdlib="$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
    && rm -rf /usr/local/bin/pip* /usr/bin/pip* \
        "$stdlib"/ensurepip "$stdlib"/idlelib "$stdlib"/tkinter "$stdlib"/turtledemo \
        "$stdlib"/lib2to3 "$stdlib"/pydoc_data "$stdlib"/test "$stdlib"/unittest/test \
        "$stdlib"/site-packages/pip* "$stdlib"/site-packages/setuptools* \
        "$stdlib"/site-packages/wheel* "$stdlib"/site-packages/_distutils_hack \
        /usr/lib/python3/dist-packages/pip* /usr/lib/python3/dist-packages/setuptools* \
        /usr/lib/python3/dist-packages/wheel* /usr/lib/python3/dist-packages/pkg_resources \
        /usr/lib/python3/dist-packages/_distutils_hack /usr/share/python-wheels \
        /var/lib/apt/lists/* /var/cache/* /usr/share/man /root/.cache \
    && python -m compileall -q -j 0 "$stdlib" \
    && ln -s /opt/webhook/bin/webhook /webhook
COPY --from=build /opt/webhook /opt/webhook

# One layer: files deleted above are gone, not hidden under a whiteout.
FROM scratch
ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
ARG SOURCE=https://github.com/pod-identity-webhook/pod-identity-webhook
COPY --from=runtime / /
LABEL org.opencontainers.image.title="pod-identity-webhook" \
      org.opencontainers.image.description="Mutating admission webhook that gives Kubernetes pods AWS IAM roles" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Nothing is written at run time, so the container runs with readOnlyRootFilesystem and needs
# no writable path at all (certificate reloads load from memory, see docs/deploy.md).
ENV PATH=/opt/webhook/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so runAsNonRoot can verify it without a passwd entry.
USER 65532:65532
# The manifests listen on 8443 (the Service maps 443 to it); upstream's `/webhook` uses 443.
EXPOSE 8443 9999
ENTRYPOINT ["pod-identity-webhook"]
CMD ["serve", "--port=8443"]
