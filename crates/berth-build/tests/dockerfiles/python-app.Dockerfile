FROM python:3.12-slim

LABEL org.opencontainers.image.title="inventory" \
      org.opencontainers.image.description="Inventory API" \
      maintainer="ops@example.com"

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENV APP_HOME /srv/app

RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 # keep the image small
 && rm -rf /var/lib/apt/lists/*

WORKDIR $APP_HOME
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chmod=0755 docker-entrypoint.sh /usr/local/bin/
COPY app/ ./app/
VOLUME ["/srv/app/data"]
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD gunicorn -b 0.0.0.0:8000 app.wsgi
