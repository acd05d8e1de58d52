# syntax=docker/dockerfile:1

# Build stage: resolve the locked dependencies into a virtualenv that the runtime copies whole.
FROM python:3.13-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-deps --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
COPY operator ./operator
RUN /opt/venv/bin/pip install --no-deps .

# Runtime stage: no compilers, no build tools, a non-root user.
FROM python:3.13-slim AS runtime
RUN groupadd --system --gid 10001 botsmith \
    && useradd --system --uid 10001 --gid botsmith --no-create-home --shell /usr/sbin/nologin botsmith
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["botsmith"]
CMD ["serve"]
