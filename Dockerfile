# syntax=docker/dockerfile:1
# Web by default (`idp-copilot serve`); run workers with the command `idp-copilot worker`.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY jobs ./jobs
COPY tools ./tools
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-compile .

FROM python:3.11.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin idp
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
WORKDIR /home/idp
EXPOSE 3000 8070
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2); sys.exit(0)"]
CMD ["idp-copilot", "serve", "--host", "0.0.0.0", "--port", "3000"]
