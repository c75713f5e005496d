# Airflow image with rapport's locked dependencies; used by docker-compose.yml.
# The base tag must match apache-airflow in requirements.lock (tests/test_docker_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements.lock /opt/rapport/requirements.lock
RUN pip install --no-cache-dir uv==0.13.9 \
    && uv pip install --no-cache --python "$(which python)" --require-hashes -r /opt/rapport/requirements.lock
COPY --chown=airflow:root . /opt/rapport
RUN uv pip install --no-cache --python "$(which python)" --no-deps -e /opt/rapport
ENV DO_NOT_TRACK=1
