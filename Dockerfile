# One Dockerfile, two images: the web site and the `default` worker without torch (EXTRAS=""), the
# `gpu` worker with the BERTScore backbone (EXTRAS=separability; pip takes torch's CUDA build there).
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && if [ -n "$EXTRAS" ]; then pip install -e ".[$EXTRAS]"; else pip install -e .; fi
COPY . .
RUN useradd --create-home app && mkdir -p /data/media && chown -R app /app /data
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "evalsite.wsgi"]
