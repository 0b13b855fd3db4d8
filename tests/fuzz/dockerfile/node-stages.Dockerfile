FROM node:20.11-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build
USER root

FROM node:20.11-bookworm-slim
WORKDIR /app
COPY --from=build /src/dist ./dist
ENTRYPOINT ["node"]
ENTRYPOINT ["node", "dist/main.js"]
