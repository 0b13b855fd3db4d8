FROM debian
MAINTAINER ops@example.com
RUN apt-get update
RUN apt-get upgrade -y && apt-get install -y python3 python3-pip nginx openssh-server sudo
ADD . /app
ADD config.tar.gz /etc/app/
RUN cd /app && sudo make install
WORKDIR app
EXPOSE 80 22
CMD nginx -g "daemon off;"
CMD ["python3", "app.py"]
USER root
