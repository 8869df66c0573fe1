#!/usr/bin/env bash
# System packages the tests and benchmarks need beyond the Python venv (Debian 12 / Ubuntu).
#   - GStreamer RTSP server + Python bindings, run by /usr/bin/python3 in
#     tests/integration/test_rtsp.py (qtdemux: -good, h264parse: -bad, rtph264pay: -good);
#   - ffmpeg, the reference decoder of benchmarks/decode_speed.py;
#   - Chromium + ChromeDriver for the web page test (tests/integration/test_web_page.py).
# Idempotent and non-interactive: exits 0 at once when everything is already installed.
set -euo pipefail

PACKAGES=(
  python3-gi
  python3-gst-1.0
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  ffmpeg
  chromium
  chromium-driver
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "system-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "system-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "system-deps: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
