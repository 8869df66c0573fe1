"""What a source URI points at, whether it is live, and how to print it without secrets.

A URI is one of: a local video file (``path`` or ``file://path``), a V4L2 webcam
(``/dev/video*``), or a network stream (``rtsp://``, ``rtsps://``, ``rtmp://``, ``http(s)://``
including HLS playlists, ``udp://``, ``srt://``, ``tcp://``). Network streams and webcams are
live by default; files are archives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "srt", "tcp")
# user:password@ in any URL-looking substring. The password may itself hold '@' (greedy up to
# the last '@' before the path); the user name is kept because it helps debugging.
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/\s]*@")
# Cameras also take secrets as query parameters (``?password=...``, ``&token=...``).
_SECRET_PARAMS = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|pass|token|key|secret)=)[^&#\s]*", re.I
)


@dataclass(frozen=True)
class SourceUri:
    """A parsed source URI.

    Attributes:
        uri: the string handed to FFmpeg (``file://`` stripped for files).
        kind: ``file``, ``device`` (V4L2 webcam) or ``network``.
        scheme: URL scheme for network sources (``rtsp``, ``http``, ...), else ``""``.
        live: the default liveness of this kind of source.
    """

    uri: str
    kind: str
    scheme: str

    @property
    def live(self) -> bool:
        return self.kind != "file"

    @property
    def redacted(self) -> str:
        return redact_uri(self.uri)


def parse_source_uri(uri: str | Path) -> SourceUri:
    """Classifies a source URI.

    Args:
        uri: a path, ``file://`` URL, ``/dev/videoN`` or network URL.

    Returns:
        The parsed :class:`SourceUri`.

    Raises:
        ValueError: empty URI or an unsupported URL scheme.
    """
    text = str(uri).strip()
    if not text:
        raise ValueError("video source URI is empty; pass a file path, /dev/videoN or a URL")
    if text.startswith("file://"):
        return SourceUri(text[len("file://") :], "file", "")
    if re.fullmatch(r"/dev/video\d+", text):
        return SourceUri(text, "device", "")
    if "://" in text:
        scheme = urlsplit(text).scheme.lower()
        if scheme not in NETWORK_SCHEMES:
            raise ValueError(
                f"unsupported video URI scheme {scheme!r} in {redact_uri(text)}; "
                f"use a file path, /dev/videoN or one of {', '.join(NETWORK_SCHEMES)}"
            )
        return SourceUri(text, "network", scheme)
    return SourceUri(text, "file", "")


def redact_uri(uri: str) -> str:
    """Replaces the password of ``scheme://user:password@host`` and secret query parameters
    (``password=``, ``token=``, ...) with ``***``.

    >>> redact_uri("rtsp://admin:s3cret@10.0.0.5:554/live")
    'rtsp://admin:***@10.0.0.5:554/live'
    """
    return _SECRET_PARAMS.sub(r"\g<key>***", _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", uri))


def redact_text(text: str, uri: str) -> str:
    """Redacts ``uri`` (and any other credential-bearing URL) inside a message such as an
    FFmpeg error string, which quotes the URL it failed on."""
    if uri:
        text = text.replace(uri, redact_uri(uri))
    return redact_uri(text)
