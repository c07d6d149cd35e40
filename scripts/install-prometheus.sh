#!/usr/bin/env bash
# Install Debian's prometheus (the server binary and promtool), unless present.
# The rule tests run `promtool check rules` / `promtool test rules`, and the dashboard
# test starts a real Prometheus scraping the dev stack; nothing is downloaded at test time.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends prometheus
