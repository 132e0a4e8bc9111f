"""The researchers' REST API (DRF, token auth) under /api/v1/."""
