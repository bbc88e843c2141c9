#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds ucm's examples in release mode and runs the demo: concurrent requests on a thread pool,
# each seeing only its own request id, user and policy flags.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --workflow --preset demo
./build/release/examples/request_isolation
