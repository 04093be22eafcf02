#!/bin/sh
# Make sure wrk is installed: apt-get it when possible, else say how and fail.
command -v wrk >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
    echo "wrk not found; installing it with apt-get" >&2
    $SUDO apt-get install -y wrk >/dev/null 2>&1 \
        || { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y wrk >/dev/null; }
fi
command -v wrk >/dev/null 2>&1 && exit 0
cat >&2 <<'MSG'
make bench needs wrk (an HTTP load generator) and could not install it.
Install it, then run make bench again:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y wrk
  Fedora:         sudo dnf install wrk
  macOS:          brew install wrk
MSG
exit 1
