#!/usr/bin/env bash
# Install Debian's espeak-ng for test fixtures (a Hindi caller's line), unless present.
# Tests synthesize with it offline; nothing is downloaded at test time.
set -euo pipefail

if command -v espeak-ng >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends espeak-ng
