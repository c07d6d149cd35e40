#!/usr/bin/env bash
# Install Debian's Chromium for the browser-call end-to-end test, unless one is present.
# The test drives it headless with a fake microphone; nothing is downloaded at test time.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
