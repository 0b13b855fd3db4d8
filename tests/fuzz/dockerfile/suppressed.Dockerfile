FROM debian:12-slim
# Pinning is done by the snapshot mirror, recommends are wanted here.
# hadolint ignore=DL3008,DL3015
RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
# picket:ignore=PKT-DF-016
# hadolint ignore=DL3003
RUN cd /tmp && echo hi > /tmp/hi
USER nobody
HEALTHCHECK NONE
CMD ["sleep", "infinity"]
