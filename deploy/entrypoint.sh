#!/bin/sh
# The process commands of a production deployment, in one place: the Procfile, the
# Dockerfile, compose.yaml, the systemd units and the production-mode tests all run
# this script (docs/deploy.md). `python`, `gunicorn` and `celery` are the ones on PATH
# (a virtualenv's bin/ first on PATH is enough). Each command is exec'd, so the process
# manager's signals (SIGTERM on stop) reach gunicorn or celery themselves.
#
#   deploy/entrypoint.sh web       gunicorn with deploy/gunicorn.conf.py (PORT, GUNICORN_BIND)
#   deploy/entrypoint.sh worker    a Celery worker (WORKER_CONCURRENCY, default 4)
#   deploy/entrypoint.sh beat      Celery beat, the periodic tasks (one at a time: a lock)
#   deploy/entrypoint.sh migrate   the database migrations
#   deploy/entrypoint.sh release   the migrations, then collectstatic (once per deploy)
#   deploy/entrypoint.sh CMD ...   anything else is run as given (python manage.py shell)
#
# Options after web, worker and beat are passed on (deploy/entrypoint.sh worker -Q mail).
set -eu
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
    sed -n '8,13s/^#   //p' "$0" >&2
    exit 2
fi

command="$1"
case "$command" in
    web)
        shift
        exec gunicorn appease.wsgi:application --config deploy/gunicorn.conf.py "$@"
        ;;
    worker)
        shift
        exec celery -A appease worker --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
            --concurrency="${WORKER_CONCURRENCY:-4}" --without-gossip --without-mingle -Ofair "$@"
        ;;
    beat)
        shift
        # The scheduler is the settings' (CELERY_BEAT_SCHEDULER): with Redis, RedBeat and
        # its lock; the schedule file below is the embedded demo's default scheduler's.
        mkdir -p "${APPEASE_VAR_DIR:-var}"
        exec celery -A appease beat --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
            --schedule="${APPEASE_VAR_DIR:-var}/celerybeat-schedule" "$@"
        ;;
    migrate)
        exec python manage.py migrate --no-input
        ;;
    release)
        python manage.py migrate --no-input
        exec python manage.py collectstatic --no-input
        ;;
    *)
        exec "$@"
        ;;
esac
