"""A one-file RTSP server for tests: serves an H.264 MP4 at rtsp://HOST:PORT/PATH.

Run by Debian's system Python (``/usr/bin/python3``), which has the GStreamer bindings
(``python3-gst-1.0``, ``gir1.2-gst-rtsp-server-1.0``; see ``.ci/system-deps.sh``); the project
venv does not. The file is re-streamed from the start for each client, paced in real time.

Usage:
    /usr/bin/python3 rtsp_server.py --check
    /usr/bin/python3 rtsp_server.py --file clip.mp4 --port 8554 [--host 127.0.0.1] [--path /test]

Prints ``READY rtsp://HOST:PORT/PATH`` on stdout once it listens; runs until killed.
"""

from __future__ import annotations

import argparse
import sys

REQUIRED_ELEMENTS = ("filesrc", "qtdemux", "h264parse", "rtph264pay")


def load_gstreamer():
    """Imports Gst, GstRtspServer and GLib, or exits 3 naming what is missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as err:
        sys.exit(f"GStreamer RTSP server bindings missing ({err}); run .ci/system-deps.sh")
    Gst.init(None)
    missing = [name for name in REQUIRED_ELEMENTS if Gst.ElementFactory.find(name) is None]
    if missing:
        sys.exit(f"GStreamer elements missing: {', '.join(missing)}; run .ci/system-deps.sh")
    return GLib, Gst, GstRtspServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 0 if the server can run")
    parser.add_argument("--file", help="H.264 MP4 to serve")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--path", default="/test")
    args = parser.parse_args(argv)
    glib, _, rtsp = load_gstreamer()
    if args.check:
        print("OK")
        return 0
    if not args.file:
        parser.error("--file is required unless --check")
    location = args.file.replace("\\", "\\\\").replace('"', '\\"')
    factory = rtsp.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    server = rtsp.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on {args.host}:{args.port}")
    print(f"READY rtsp://{args.host}:{args.port}{args.path}", flush=True)
    glib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
