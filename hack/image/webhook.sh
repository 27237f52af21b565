#!/bin/sh
# /webhook in the image: upstream's entry point, running the pod-identity-webhook console script.
# Through the interpreter copy that carries cap_net_bind_service, so that user 65532 can bind
# port 443 where the runtime does not allow unprivileged ports; where the kernel refuses to
# start that copy (the pod dropped all capabilities), through the plain interpreter.
BIN=/opt/webhook/bin
if "$BIN/python-netbind" -I -S -c '' 2>/dev/null; then
  exec "$BIN/python-netbind" "$BIN/pod-identity-webhook" "$@"
fi
exec "$BIN/python" "$BIN/pod-identity-webhook" "$@"
