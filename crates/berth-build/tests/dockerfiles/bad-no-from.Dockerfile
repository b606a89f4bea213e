# comments first
ARG X=1

LABEL a=b
FROM busybox
