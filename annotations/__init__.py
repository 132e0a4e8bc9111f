"""Datasets, studies, comparisons, assignments and votes; importers; the annotator pages."""
