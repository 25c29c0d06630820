#!/usr/bin/env bash
# make package-check: `cargo package` (with its verification build) for every crate the
# workspace publishes (every member without `publish = false`), and a failure on any
# warning cargo prints while doing it (missing description, licence, readme or
# documentation, a file the package leaves out...) but the one expected below. Each
# package must also carry its LICENSE and README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-python3}

# The publishable members, from cargo's own view of the manifests.
mapfile -t crates < <($CARGO metadata --no-deps --format-version 1 --locked |
  $PYTHON -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["publish"] != []:
        print(p["name"])')
if [ "${#crates[@]}" -eq 0 ]; then echo "package-check: no publishable crate found" >&2; exit 1; fi
args=()
for c in "${crates[@]}"; do args+=(-p "$c"); done
echo "package-check: ${crates[*]}"

# Expected: the root crate ships src/ only, so its tests (the documentation-reference
# test, which walks the repository's docs, and the end-to-end suites, which start the
# repository's emulator and function) are not in the package.
allowed='^warning: ignoring test `[a-z_]+` as `tests/[a-z_]+\.rs` is not included in the published package$'

# cargo verifies each package against a temporary local registry of the fresh packages.
# A registry crate is taken to be immutable: cargo does not unpack it again when its
# directory under $CARGO_HOME/registry/src/-<hash of the registry's path>/ exists, and
# does not rebuild it when its fingerprint exists. With a target dir kept between runs
# (as CI keeps it), the verification would build against an earlier run's sources. So
# the check builds in a target dir of its own, and first removes our crates' unpacked
# copies from the local registries (names that start with `-`; crates.io's are never
# touched) and our crates' fingerprints there; the other dependencies stay built.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/package-check"
while read -r name version; do
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$name-$version"
  rm -rf "$CARGO_TARGET_DIR"/debug/.fingerprint/"$name"-*
done < <($CARGO metadata --no-deps --format-version 1 --locked |
  $PYTHON -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["publish"] != []:
        print(p["name"], p["version"])')

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --allow-dirty: a check, not a publication; a work tree with edits is checked as it is.
if ! $CARGO package --locked --allow-dirty "${args[@]}" 2>"$log"; then
  cat "$log" >&2; echo "package-check: cargo package failed" >&2; exit 1
fi
if grep -E '^warning' "$log" | grep -Ev "$allowed" >/dev/null; then
  cat "$log" >&2; echo "package-check: cargo package warned (above)" >&2; exit 1
fi

# Every package carries the licence text and its README.
for c in "${crates[@]}"; do
  files=$($CARGO package --locked --allow-dirty --list -p "$c" 2>/dev/null)
  for f in LICENSE README.md; do
    grep -qx "$f" <<<"$files" || { echo "package-check: $c's package has no $f" >&2; exit 1; }
  done
done
echo "package-check: ${#crates[@]} crates package and verify cleanly"
