# syntax=docker/dockerfile:1.4
FROM ubuntu:24.04
RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends ca-certificates python3-pip
rm -rf /var/lib/apt/lists/*
EOF

RUN bash <<SCRIPT
cd /opt
echo "sudo is not used here" > note.txt
SCRIPT

RUN <<EOF
# pip caches wheels: cd into the cache to look
pip install --break-system-packages requests==2.32.3
EOF

COPY <<EOF /etc/app/config.ini
[server]
cd = /srv
sudo = false
EOF

RUN cat <<EOF > /etc/motd
Run apt-get install yourself, then cd /app
EOF

USER 1000
CMD ["/bin/bash"]
