FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app

FROM base AS deps
COPY requirements.txt .
RUN pip install -r requirements.txt
RUN python -m pip install --no-cache-dir gunicorn==23.0.0

FROM base
# system libraries for psycopg
RUN apt-get update && apt-get install -y --no-install-recommends libpq5=15.* \
    && rm -rf /var/lib/apt/lists/*
COPY --from=deps /usr/local/lib/python3.12/site-packages /usr/local/lib/python3.12/site-packages
COPY --from=dep /usr/local/bin/gunicorn /usr/local/bin/gunicorn
COPY . .
RUN useradd --create-home appuser
USER appuser
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"]
CMD ["gunicorn", "app:app", "--bind", "0.0.0.0:8000"]
