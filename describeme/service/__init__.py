"""The HTTP API and search web page of ``describeme serve`` (FastAPI; imported lazily).

``describeme.service.app.build_app(backend, settings)`` builds the app; the backend
(:class:`describeme.service.backend.StoreBackend`) is the only part that talks to Redis.
Importing this package imports neither FastAPI nor redis.
"""
