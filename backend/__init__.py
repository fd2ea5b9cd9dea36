"""Veil backend: the Flask app that stores chat records and serves the supervisor panel."""

from backend.app import create_app

__all__ = ["create_app"]
