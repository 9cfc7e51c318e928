#!/usr/bin/env bash
# The project's test command (README: "Run the tests"): formatting, lints, every test.
# Installs what it needs on a new machine; everything else comes from crates.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# The bundled SQLite is compiled from C.
if ! command -v cc >/dev/null 2>&1; then
    log "installing a C compiler"
    apt-get update -qq && apt-get install -y -qq build-essential
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

log "cargo test"
cargo test --workspace --locked --no-fail-fast
