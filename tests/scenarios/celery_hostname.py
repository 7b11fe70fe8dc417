"""``[core] hostname_callable`` of the Celery worker in the smoke test: task instances it runs
record this name, which proves where they ran."""

WORKER_HOSTNAME = "celery-smoke-worker"


def worker_name() -> str:
    return WORKER_HOSTNAME
