FROM busybox
RUN echo ok
# a typo on line 4
RUNN echo broken
