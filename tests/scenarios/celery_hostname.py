"""``[core] hostname_callable`` of the Celery workers in the distributed tests: task instances a
worker runs record this name, which proves where they ran. One worker: ``WORKER_HOSTNAME``; each of
several: the name in its env var ``BILLING_DIGEST_TEST_WORKER_HOSTNAME``."""

import os

WORKER_HOSTNAME = "celery-smoke-worker"


def worker_name() -> str:
    return os.environ.get("BILLING_DIGEST_TEST_WORKER_HOSTNAME", WORKER_HOSTNAME)
