"""Limit/offset pagination for every list of the API."""
from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's limit/offset pagination with a ceiling on `limit`. DRF's default has none, so a huge
    `?limit=` went through to the database's LIMIT and overflowed it (a 500); a larger one now gets
    `max_limit` rows and a `next` link."""

    max_limit = 20_000
