# syntax=docker/dockerfile:1
FROM debian:bookworm
RUN <<EOF
set -e
apt-get update
apt-get install -y curl
EOF
COPY <<-"CONF" /etc/app.conf
	listen = ${PORT}
	CONF
RUN python3 <<PY
print("hello")
PY
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL https://example.com | wc -c
