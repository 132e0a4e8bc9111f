# One image for web and workers (torch is needed by the gpu worker; the web could drop it, see README).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install -e .
COPY . .
RUN useradd --create-home app && mkdir -p /data/media && chown -R app /app /data
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "evalsite.wsgi"]
