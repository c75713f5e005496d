# Airflow image with rapport's locked dependencies; used by docker-compose.yml.
# The base tag must match apache-airflow in requirements.lock (tests/test_docker_compose.py checks it).
# RAPPORT_LOCK picks the lock file: requirements.lock (LocalExecutor) or requirements-celery.lock (the same
# pins plus Airflow's Celery provider, for docker-compose.celery.yml).
FROM apache/airflow:3.3.2-python3.11
ARG RAPPORT_LOCK=requirements.lock
USER root
RUN apt-get update && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements.lock requirements-celery.lock /opt/rapport/
RUN pip install --no-cache-dir uv==0.13.9 \
    && uv pip install --no-cache --python "$(which python)" --require-hashes -r "/opt/rapport/${RAPPORT_LOCK}"
COPY --chown=airflow:root . /opt/rapport
RUN uv pip install --no-cache --python "$(which python)" --no-deps -e /opt/rapport
ENV DO_NOT_TRACK=1
