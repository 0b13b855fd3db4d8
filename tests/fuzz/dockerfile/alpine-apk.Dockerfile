FROM alpine:latest
RUN apk update && apk add curl ca-certificates
RUN apk add --no-cache tini
RUN addgroup -S app && adduser -S app -G app
COPY --chown=app:app app /usr/local/bin/app
USER app
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["/usr/local/bin/app"]
