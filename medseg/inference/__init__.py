"""Sliding-window inference and the Predictor API."""
