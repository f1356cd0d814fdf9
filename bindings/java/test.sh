#!/usr/bin/env bash
# Builds the jar and the tests (build.sh --tests) and runs the JUnit tests
# with JUnit's console launcher (Debian's junit5). The tests start the
# debug `rill` binary as their SPU: RILL_BIN, else
# $CARGO_TARGET_DIR/debug/rill (build it with `cargo build -p rill-cli`).
# Exits non-zero if any test fails.
#
#   bindings/java/test.sh [--out DIR] [extra console-launcher options]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/build"
if [[ ${1:-} == --out ]]; then
    out="$2"
    shift 2
fi
out="$(realpath -m "$out")"
target="$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")"
rill_bin="${RILL_BIN:-$target/debug/rill}"
if [[ ! -x $rill_bin ]]; then
    echo "$rill_bin is missing: run \`cargo build -p rill-cli\` first" >&2
    exit 1
fi

"$here/build.sh" --tests --out "$out"

echo "== JUnit (bindings/java/tests)"
cp="$out/rill-client.jar:$out/examples:$out/test-classes"
java -Drill.test.bin="$rill_bin" -Drill.test.classpath="$out/rill-client.jar:$out/examples" \
    -jar /usr/share/java/junit-platform-console-standalone.jar \
    --class-path "$cp" --scan-class-path "$out/test-classes" \
    --disable-banner --disable-ansi-colors --fail-if-no-tests --details=tree "$@"
