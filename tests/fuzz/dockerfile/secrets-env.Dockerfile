FROM node:20.11-alpine
ARG NPM_TOKEN
ARG GITHUB_TOKEN=ghp_exampleexampleexampleexample
ENV NODE_ENV=production \
    DB_HOST=db.internal \
    DB_PASSWORD=correct-horse-battery-staple
ENV API_KEY sk_live_example
ENV SECRET_KEY_FILE=/run/secrets/secret_key
ENV AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
WORKDIR /app
COPY --chown=node:node . .
RUN npm ci --omit=dev
USER node
HEALTHCHECK CMD ["node", "healthcheck.js"]
CMD ["node", "index.js"]
