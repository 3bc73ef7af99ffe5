#!/usr/bin/env bash
# What the catalog web page's browser test needs (tests/python/test_web_browser.py):
# Debian's chromium at /usr/bin/chromium and playwright-core, pinned in
# tests/browser/package-lock.json, in tests/browser/node_modules. Installs only what
# is missing; exits non-zero naming what could not be installed (the browser test
# then fails with the same message: it never skips).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    echo "browser-deps: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_install() {
  echo "==> installing $* (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || { echo "browser-deps: could not install chromium" >&2; exit 1; }
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm || { echo "browser-deps: could not install node and npm" >&2; exit 1; }
fi

lock=tests/browser/package-lock.json
want=$(sha256sum "$lock" | cut -d' ' -f1)
stamp=tests/browser/node_modules/.lock.sha256
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing playwright-core (npm ci --prefix tests/browser)"
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error \
    || { echo "browser-deps: npm ci --prefix tests/browser failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
