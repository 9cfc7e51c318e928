#!/usr/bin/env bash
# The project's test command (README: "Run the tests"): formatting, lints, every test.
# Installs what it needs on a new machine; everything else comes from crates.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
    apt-get install -y -qq "$@"
}

# The bundled SQLite is compiled from C.
command -v cc >/dev/null 2>&1 || { log "installing a C compiler"; apt_install build-essential; }
# The browser check drives Debian's Chromium with playwright-core (npm).
command -v chromium >/dev/null 2>&1 || { log "installing chromium"; apt_install chromium; }
command -v npm >/dev/null 2>&1 || { log "installing node and npm"; apt_install nodejs npm; }
# The widget check takes a screenshot of its Chinese UI: CJK glyphs need a font.
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || { log "installing CJK fonts"; apt_install fonts-noto-cjk; }
# kf-store-postgres's tests run a real PostgreSQL server (with the pg_trgm extension, which Debian's package
# ships); Debian puts initdb in /usr/lib/postgresql/<version>/bin, not on the PATH.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    log "installing postgresql"
    apt_install postgresql
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        log "installing $component"
        rustup component add "$component"
    fi
done

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo doc (broken doc links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

log "MSRV check (rust-version of the workspace)"
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
# Every dependency must build on our MSRV (their own rust-version), and clippy's incompatible_msrv lint (run
# above) refuses std APIs newer than it; with that toolchain installed, it also compiles the workspace.
cargo metadata --format-version 1 --locked | python3 scripts/msrv.py "$msrv"
if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
    cargo "+$msrv" check --workspace --all-targets --locked
fi

log "PostgreSQL test server (scripts/pg-test-server.sh), stopped when this script exits"
pg_env=$(scripts/pg-test-server.sh start)
eval "$pg_env"
trap 'scripts/pg-test-server.sh stop "$KF_TEST_POSTGRES_DIR"' EXIT

log "cargo test"
cargo test --workspace --locked --no-fail-fast

log "browser client package (clients/js): type check and unit tests"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check && npm test --silent)

log "widget (clients/widget): type check of its JSDoc (strict), with the client package's TypeScript"
(cd clients/widget && ../js/node_modules/.bin/tsc -p .)

log "browser check of the demo pages (headless Chromium)"
cargo build --locked -p kf-demo
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
(cd examples/demo/browser && npm ci --no-audit --no-fund --loglevel=error)
node examples/demo/browser/check.mjs "$target_dir/debug/kf-demo" "$target_dir"

log "browser check of the embeddable widget (headless Chromium)"
node examples/demo/browser/widget.mjs "$target_dir/debug/kf-demo" "$target_dir"
