# Peerline: one image for the web service (daphne serves HTTP and WebSockets).
#   docker build -t peerline .        (docker-compose.yml builds it for you)
FROM python:3.12-slim

# PYTHONPATH: run from the source tree in /app (settings find templates/ and static/ beside
# config/), not from the copy `pip install` puts in site-packages.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    PYTHONPATH=/app

RUN groupadd --system peerline \
 && useradd --system --gid peerline --home-dir /app --no-create-home --shell /usr/sbin/nologin peerline

WORKDIR /app

# Dependencies first, read from pyproject.toml: this layer survives changes to the code only.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY . .
RUN pip install --no-deps .

# Static files are collected at build time. Settings refuse to load without a secret key when
# DEBUG is off, so the build gets a throwaway one; the real one comes from the environment at run.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
 && rm -f /tmp/build.sqlite3 \
 && chmod 0755 deploy/entrypoint.sh

# The code stays owned by root and read-only for the server's user.
USER peerline

EXPOSE 8000
# GET /healthz on 127.0.0.1:8000 with a Host from DJANGO_ALLOWED_HOSTS (127.0.0.1 need not be allowed).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/app/deploy/healthcheck.py"]

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "config.asgi:application"]
