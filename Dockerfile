# syntax=docker/dockerfile:1
# IDP Copilot: one image for the web receiver (the default command) and the workers
# (`idp-copilot worker`). Build: docker build -t idp-copilot:0.1.0 .
# The base image is pinned by tag; pin it by digest too in your own build pipeline.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY jobs ./jobs
COPY tools ./tools
# Byte-compiled at install time: the root filesystem is read-only at run time.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="idp-copilot" \
      org.opencontainers.image.description="GitHub App: platform requests on issues become reviewed pull requests" \
      org.opencontainers.image.licenses="Apache-2.0"
# git: the LocalForge (dry runs, `idp-copilot demo`) keeps its branches in local git repos.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 idp \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin idp
# Owned by root and not writable by the App's user: the code cannot be changed at run time.
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/idp
EXPOSE 3000 8070
# For the web command; docker-compose.yml gives the worker a check of its own. Kubernetes
# ignores HEALTHCHECK and uses the probes in deploy/.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2)"]
CMD ["idp-copilot", "serve", "--host", "0.0.0.0", "--port", "3000"]
