"""The HTTP API and search web page of ``describeme serve`` (FastAPI; imported lazily).

``describeme.service.app.build_app(backend, settings)`` builds the app; the backend
(:class:`describeme.service.backend.StoreBackend`) is the only part that talks to Redis.
Importing this package imports neither FastAPI nor redis.

Stream control: ``describeme serve --pipeline`` also starts the pipeline graph and hands a
:class:`describeme.pipeline.control.StreamController` to the app (``app.state.controller``).
``POST /streams`` with ``{"source": "rtsp://...", "stream_id": "door"}`` (the id is optional,
derived from the source as ``describeme run`` derives it) answers 201 with the stream's record;
``DELETE /streams/ID`` (ID = the record's percent-encoded ``id``) stops it after its in-flight
frames are described and written, answering the final record (404 for an unknown stream);
``GET /streams`` adds the ``live`` records (status running, stopping, finished, stopped or
failed, and frames read). Clients may start rtsp(s)/http(s) URLs and ``/dev/videoN``; local
files only inside a ``--media-root`` folder (403 otherwise), so the API cannot make the server
read arbitrary files. Without ``--pipeline``, POST and DELETE answer 501.
"""
