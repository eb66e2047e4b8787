# syntax=docker/dockerfile:1
# The same environment as the flyte.Image in envs/: Python 3.11 and exactly the packages in uv.lock.
# PyPI's torch wheels carry their CUDA libraries (CUDA 13.2); the NVIDIA container runtime supplies the
# driver, which must be 580 or newer.
FROM python:3.11-slim-bookworm

COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
# uv's cache is a build cache mount, never part of a layer, so packages are copied out of it (UV_LINK_MODE).
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/app/.venv PATH=/app/.venv/bin:$PATH DO_NOT_TRACK=1

# The user that runs the environment also creates it: changing the owner afterwards (chown -R) would copy
# every file of it into a second layer of the same size. A numeric user lets Kubernetes check it is not root.
RUN useradd --create-home --uid 1000 satpipe && install -d -o 1000 -g 1000 /app
WORKDIR /app
USER 1000:1000

# Dependencies first, in their own layer, so editing the code does not reinstall torch.
COPY --chown=1000:1000 pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/home/satpipe/.cache/uv,uid=1000,gid=1000 \
    uv sync --frozen --no-dev --no-install-project
COPY --chown=1000:1000 . .
RUN --mount=type=cache,target=/home/satpipe/.cache/uv,uid=1000,gid=1000 \
    uv sync --frozen --no-dev

CMD ["python", "run.py", "--help"]
