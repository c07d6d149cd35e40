#!/usr/bin/env bash
# Validate the committed AsyncAPI document with the official AsyncAPI CLI, offline.
#
# Usage: scripts/validate-asyncapi.sh [SPEC_FILE] [extra `asyncapi validate` flags...]
#   SPEC_FILE defaults to docs/asyncapi.yaml at the repository root; a relative path is
#   taken from the current directory. Exits non-zero when the document is invalid.
#
# The CLI version is pinned by tools/asyncapi/package-lock.json and installed with `npm ci`
# into tools/asyncapi/node_modules only when that lock file changed since the last install
# (about 450 MB on disk). @asyncapi/cli 6 declares node >= 24; `validate` also works on
# node 20 (npm's engine warnings are hidden by --loglevel=error below).
#
# What the CLI would otherwise do on its own, and how it is stopped:
#   - anonymous usage metrics, sent to a hosted collector when a command starts and when
#     it ends: the CLI reads `analyticsEnabled` from the file named by
#     ASYNCAPI_METRICS_CONFIG_PATH (default ~/.asyncapi-analytics, the file that
#     `asyncapi config analytics --disable` edits). This script writes that file, with
#     analytics disabled, before every run. Running the config command instead is avoided:
#     on a first run it creates the file enabled and reports its own invocation.
#   - a background check of the registry for a newer CLI version (oclif's
#     warn-if-update-available; not loaded by 6.2.0, but named in its package.json):
#     ASYNCAPI_SKIP_NEW_VERSION_CHECK=true turns it off should a later version load it.
#   - package install scripts: the CLI's postinstall appends a completion hook to the user's
#     shell rc file and a dependency's postinstall reports the install; `npm ci
#     --ignore-scripts` runs neither, and the CLI needs none of them.
#   - files under the home directory (analytics id, contexts, oclif cache/config/data):
#     HOME and XDG_*_HOME point into tools/asyncapi/node_modules/.asyncapi-home for the
#     CLI process, so the only writes outside the repository are npm's own download cache.
#   - the `config` package it bundles loads ./config/ from the current directory: pointed at
#     an empty directory with NODE_CONFIG_DIR so a repository folder of that name is not read
#     (NODE_CONFIG_ENV and SUPPRESS_NO_CONFIG_WARNING only silence its start-up warnings).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool_dir="$repo_root/tools/asyncapi"
modules="$tool_dir/node_modules"
stamp="$modules/.voicebus-lock.sha256"
cli_home="$modules/.asyncapi-home"

spec="${1:-$repo_root/docs/asyncapi.yaml}"
shift || true

# The CLI also accepts a URL or a context name in this position; only a local file is
# accepted here so that validation never depends on the network or on user state.
if [[ ! -f "$spec" ]]; then
    echo "validate-asyncapi: no such file: $spec" >&2
    exit 2
fi
spec="$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "validate-asyncapi: node and npm are required" >&2
    exit 2
fi

if command -v sha256sum >/dev/null; then
    lock_hash="$(sha256sum "$tool_dir/package-lock.json" | cut -d' ' -f1)"
else
    lock_hash="$(shasum -a 256 "$tool_dir/package-lock.json" | cut -d' ' -f1)"
fi
if [[ ! -x "$modules/.bin/asyncapi" || ! -f "$stamp" || "$(<"$stamp")" != "$lock_hash" ]]; then
    echo "validate-asyncapi: installing the pinned AsyncAPI CLI (npm ci)" >&2
    (cd "$tool_dir" && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$lock_hash" >"$stamp"
fi

mkdir -p "$cli_home"
analytics_file="$cli_home/.asyncapi-analytics"
printf '%s\n' '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"none"}' \
    >"$analytics_file"

env \
    HOME="$cli_home" \
    XDG_CONFIG_HOME="$cli_home/.config" \
    XDG_CACHE_HOME="$cli_home/.cache" \
    XDG_DATA_HOME="$cli_home/.local/share" \
    ASYNCAPI_METRICS_CONFIG_PATH="$analytics_file" \
    ASYNCAPI_SKIP_NEW_VERSION_CHECK=true \
    NODE_CONFIG_DIR="$cli_home/node-config" \
    NODE_CONFIG_ENV=development \
    SUPPRESS_NO_CONFIG_WARNING=1 \
    "$modules/.bin/asyncapi" validate "$spec" --fail-severity=error "$@"
