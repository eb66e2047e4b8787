# The same environment as the flyte.Image in envs/: Python 3.11 and exactly the packages in uv.lock.
# PyPI's torch wheels carry their CUDA libraries; the NVIDIA container runtime supplies the driver.
FROM python:3.11-slim-bookworm

COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/app/.venv PATH=/app/.venv/bin:$PATH DO_NOT_TRACK=1

RUN useradd --create-home --uid 1000 satpipe
WORKDIR /app

# Dependencies first, in their own layer, so editing the code does not reinstall torch.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev && chown -R satpipe:satpipe /app

USER satpipe
CMD ["python", "run.py", "--help"]
