# Shared settings for Pulse's scripts; sourced, not run.
# The cargo target directory lives outside the clone so CI and fresh clones reuse builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${PULSE_CACHE_DIR:-$HOME/.cache/pulse}/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
PULSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PULSE_ROOT
# Test vectors from circomlibjs sit beside the repository in shared/.
export PULSE_VECTORS_DIR="${PULSE_VECTORS_DIR:-$PULSE_ROOT/../shared/vectors}"
