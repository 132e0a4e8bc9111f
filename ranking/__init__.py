"""Leaderboards from pairwise votes.

The rating mathematics (`ranking.elo`, `ranking.bt`, `ranking.ratings`) and the command-line front end
(`ranking.cli`, reading vote files with `annotations.imports.parse`) are plain Python/numpy with no
Django import, so they can be unit-tested, benchmarked and used from a notebook or from
`python -m ranking VOTES.csv`. The Django parts of this app (models, pages, tasks) are thin layers
around them. This package file must stay free of imports.
"""
