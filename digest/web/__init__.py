"""`digest serve`: the editions on the web and each subscriber's own pages."""

from digest.web.app import create_app, serve

__all__ = ["create_app", "serve"]
