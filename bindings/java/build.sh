#!/usr/bin/env bash
# Builds the Rill jar: the Rust library of this crate (cargo), the Java
# classes (javac), and the library packed into the jar under
# native/<os>-<arch>/, where dev.rill.client.NativeLoader finds it at run
# time. Also compiles the examples; with --tests, the JUnit tests too.
#
#   bindings/java/build.sh [--release] [--tests] [--out DIR]
#
# Output (DIR defaults to bindings/java/build): DIR/rill-client.jar,
# DIR/examples (classes), DIR/test-classes. Cargo's target directory is
# CARGO_TARGET_DIR, else the repository's target/ (shared with the
# workspace). The default profile is dev (dependencies optimised, as in the
# workspace); --release builds the release profile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

profile=dev
tests=0
out="$here/build"
while (($#)); do
    case "$1" in
        --release) profile=release ;;
        --tests) tests=1 ;;
        --out) out="$2"; shift ;;
        *) echo "usage: $0 [--release] [--tests] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
out="$(realpath -m "$out")"
target="$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")"

for tool in cargo javac jar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool is missing: scripts/install-deps installs a JDK (and checks for cargo)" >&2
        exit 1
    fi
done

echo "== cargo build ($profile) bindings/java"
CARGO_TARGET_DIR="$target" cargo build --manifest-path "$here/Cargo.toml" --locked \
    --profile "$profile" --quiet
dir=debug
[[ $profile == release ]] && dir=release

case "$(uname -s)" in
    Linux) os=linux lib=librill_java.so ;;
    Darwin) os=macos lib=librill_java.dylib ;;
    *) echo "unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) arch="$(uname -m)" ;;
esac

echo "== javac, jar -> $out/rill-client.jar"
rm -rf "$out/classes" "$out/examples" "$out/test-classes" "$out/rill-client.jar"
mkdir -p "$out/classes/native/$os-$arch"
javac --release 11 -Xlint:all -Werror -encoding UTF-8 -d "$out/classes" \
    $(find "$here/java" -name '*.java' | sort)
# Debug info is most of a dev build's size; the jar does without it.
if command -v strip >/dev/null 2>&1 && [[ $os == linux ]]; then
    strip --strip-debug -o "$out/classes/native/$os-$arch/$lib" "$target/$dir/$lib"
else
    cp "$target/$dir/$lib" "$out/classes/native/$os-$arch/$lib"
fi
jar --create --file "$out/rill-client.jar" -C "$out/classes" .

javac --release 11 -Xlint:all -Werror -encoding UTF-8 -cp "$out/rill-client.jar" \
    -d "$out/examples" $(find "$here/examples" -name '*.java' | sort)

if ((tests)); then
    junit=/usr/share/java/junit-jupiter-api.jar
    if [[ ! -f $junit ]]; then
        echo "$junit is missing: scripts/install-deps installs Debian's junit5" >&2
        exit 1
    fi
    javac --release 11 -Xlint:all -Werror -encoding UTF-8 \
        -cp "$out/rill-client.jar:$out/examples:$junit:/usr/share/java/junit-jupiter-params.jar" \
        -d "$out/test-classes" $(find "$here/tests" -name '*.java' | sort)
fi
