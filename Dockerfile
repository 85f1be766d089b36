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

# Python dependencies come as wheels prepared by `evt image build`: no index at build time.
COPY .build/wheels /tmp/wheels
COPY pyproject.toml /opt/evt/
COPY evt /opt/evt/evt
COPY conf /opt/evt/conf
COPY templates /opt/evt/templates
COPY triggers /opt/evt/triggers
RUN python3 -m venv /opt/evt/.venv \
 && /opt/evt/.venv/bin/pip install -q --no-index --find-links /tmp/wheels -e /opt/evt \
 && rm -rf /tmp/wheels
ENV PATH=/opt/evt/.venv/bin:$PATH
ENTRYPOINT ["evt"]
