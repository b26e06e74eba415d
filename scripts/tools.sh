#!/usr/bin/env bash
# Builds the Go programs the tests use (today `tofu`, OpenTofu's CLI) from their official Go
# modules, and caches them under target/ so that a second run costs nothing.
#
# Usage: scripts/tools.sh [--quiet] NAME...     e.g. scripts/tools.sh tofu
#
# Each NAME is a wrapper module of ours in tools/NAME/: a go.mod that requires the upstream
# module at one pinned release (with the upstream's own `replace` lines, which only a main
# module's go.mod can carry) and lists the programs to build as `tool` lines, its go.sum, and
# optionally build.env with `ldflags=...` (passed to -ldflags after "-s -w"), `cgo=1` (else
# CGO_ENABLED=0, as upstream release builds) and `tags=...`. Adding a tool is adding such a
# directory; this script needs no change. No upstream code is committed: `go build` fetches the
# modules through the Go module proxy (GOPROXY), checked against go.sum.
#
# Every `tool` package of tools/NAME/go.mod is built into
#   target/tools/NAME-HASH/bin/<last path element>      (HASH: tools/NAME's files, the Go version,
#                                                        the platform and the build recipe)
# and linked as target/tools/bin/<program>. A cached build is reused as is; a stale one (another
# HASH) is removed after the new one is built. TOOLS_DIR overrides target/tools.
#
# It prints the path of each program on stdout, one a line; progress goes to stderr. Go's own
# module and build caches (GOMODCACHE, GOCACHE) are used as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quiet=0
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quiet) quiet=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 0 ;;
    -*) echo "tools.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || { echo "tools.sh: name a tool (one of: $(ls tools | tr '\n' ' '))" >&2; exit 2; }

log() { [ "$quiet" = 1 ] || echo "tools.sh: $*" >&2; }

# Bumped when the build command below changes, so that cached builds are redone.
recipe="go-build-v1 -trimpath -s -w"
tools_dir="${TOOLS_DIR:-$root/target/tools}"

# The Go version a wrapper module needs: its `go` line.
required_go() { sed -n 's/^go \([0-9.]*\)$/\1/p' "$1/go.mod" | head -n1; }

# True when Go version $1 (e.g. 1.26.8) is at least $2 (e.g. 1.26.6).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

build_one() {
  local name="$1" module="$root/tools/$1"
  [ -f "$module/go.mod" ] || { echo "tools.sh: no tools/$name/go.mod (tools: $(ls tools | tr '\n' ' '))" >&2; return 1; }
  [ -f "$module/go.sum" ] || { echo "tools.sh: tools/$name has no go.sum (run: cd tools/$name && go mod tidy)" >&2; return 1; }

  local need have
  need=$(required_go "$module")
  if ! command -v go >/dev/null; then
    echo "tools.sh: Go $need or newer is needed to build $name, and \`go\` is not on PATH" \
      "(install it from https://go.dev/dl/ into /usr/local/go and add /usr/local/go/bin to PATH;" \
      "Debian's golang-go is too old)" >&2
    return 1
  fi
  # Why GOTOOLCHAIN=local: an older Go would otherwise try to fetch a newer toolchain itself;
  # a clear message is better than a surprise download.
  have=$(GOTOOLCHAIN=local go env GOVERSION | sed 's/^go//')
  if ! version_at_least "$have" "$need"; then
    echo "tools.sh: tools/$name needs Go $need or newer; \`go\` on PATH is $have" >&2
    return 1
  fi

  local ldflags="" cgo=0 tags=""
  if [ -f "$module/build.env" ]; then
    local key value
    while IFS='=' read -r key value; do
      case "$key" in
        ''|'#'*) ;;
        ldflags) ldflags="$value" ;;
        cgo) cgo="$value" ;;
        tags) tags="$value" ;;
        *) echo "tools.sh: tools/$name/build.env: unknown key $key" >&2; return 1 ;;
      esac
    done <"$module/build.env"
  fi

  local hash
  hash=$(
    {
      echo "$recipe"
      GOTOOLCHAIN=local go env GOVERSION GOOS GOARCH
      (cd "$module" && find . -type f | LC_ALL=C sort | while read -r f; do echo "$f"; cat "$f"; done)
    } | sha256sum | cut -c1-12
  )
  local out="$tools_dir/$name-$hash"
  local packages
  # The `tool` lines of go.mod: `tool PATH` or a `tool ( ... )` block.
  packages=$(awk '
    /^tool \($/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block && NF { print $1; next }
    /^tool [^(]/ { print $2 }
  ' "$module/go.mod")
  [ -n "$packages" ] || { echo "tools.sh: tools/$name/go.mod lists no \`tool\` packages" >&2; return 1; }

  mkdir -p "$tools_dir/bin"
  # Why a lock: the test command and a test binary may ask for the same tool at once.
  exec 9>"$tools_dir/.$name.lock"
  flock 9
  if [ -f "$out/.complete" ]; then
    log "$name is cached in $out"
  else
    log "building $name ($(echo $packages)) from tools/$name/go.mod with Go $have"
    local start=$SECONDS tmp="$out.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/bin"
    local pkg
    for pkg in $packages; do
      (
        cd "$module"
        GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED="$cgo" \
          go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" \
          -o "$tmp/bin/${pkg##*/}" "$pkg"
      ) || { rm -rf "$tmp"; echo "tools.sh: building $pkg failed" >&2; return 1; }
    done
    touch "$tmp/.complete"
    rm -rf "$out"
    mv "$tmp" "$out"
    log "built $name in $((SECONDS - start)) s into $out"
    # A build of another hash is stale now: remove it.
    local old
    for old in "$tools_dir/$name"-????????????; do
      [ "$old" = "$out" ] || rm -rf "$old"
    done
  fi
  for pkg in $packages; do
    ln -sfn "../$name-$hash/bin/${pkg##*/}" "$tools_dir/bin/${pkg##*/}"
    echo "$out/bin/${pkg##*/}"
  done
  flock -u 9
}

for name in "${names[@]}"; do
  build_one "$name"
done
