# The trigger-runner image: evt and every tool the catalog's scripts run.
# On a machine with a registry the default base works as is; on machines without one,
# `make setup` builds a Debian base image locally (mmdebstrap + docker import) and
# `evt image build` passes it as BASE_IMAGE.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# Install the scripts' tools only where the base lacks them (the local base has them).
RUN set -e; missing=; \
    for tool in strace bpftool bpftrace inotifywait ping nc sudo unshare timeout python3; do \
      command -v "$tool" >/dev/null 2>&1 || missing=1; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update && apt-get install -y --no-install-recommends strace bpftool bpftrace \
        inotify-tools iputils-ping netcat-openbsd sudo util-linux procps python3-venv && \
      rm -rf /var/lib/apt/lists/*; \
    fi

# Python dependencies first, in a layer of their own: pinned by constraints.txt and
# present as wheels prepared by `evt image build` (no index at build time). A change to
# evt's sources rebuilds only the layers below.
COPY constraints.txt /tmp/evt-build/constraints.txt
COPY .build/wheels /tmp/evt-build/wheels
RUN python3 -m venv /opt/evt/.venv \
 && /opt/evt/.venv/bin/pip install -q --no-index -c /tmp/evt-build/constraints.txt /tmp/evt-build/wheels/*.whl \
 && rm -rf /tmp/evt-build

# evt itself, installed as a wheel (conf/, templates/, triggers/ become package data).
COPY pyproject.toml /tmp/evt-src/
COPY evt /tmp/evt-src/evt
COPY hydra_plugins /tmp/evt-src/hydra_plugins
COPY conf /tmp/evt-src/conf
COPY templates /tmp/evt-src/templates
COPY triggers /tmp/evt-src/triggers
RUN /opt/evt/.venv/bin/pip install -q --no-index --no-deps --no-build-isolation /tmp/evt-src \
 && rm -rf /tmp/evt-src
ENV PATH=/opt/evt/.venv/bin:$PATH
ENTRYPOINT ["evt"]
