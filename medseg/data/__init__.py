"""Datasets, fingerprints, plans, caches and patch sampling."""
