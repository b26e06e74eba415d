#!/usr/bin/env bash
# Sets up this machine for one of the project's commands, so that a fresh clone on a fresh
# machine needs nothing but the command itself:
#
#   scripts/setup.sh quickstart   what scripts/quickstart.sh needs (--tofu: its OpenTofu run, which
#                                 needs Go instead of terraform)
#   scripts/setup.sh direct       what scripts/quickstart.sh --direct needs: the test cluster's
#                                 (scripts/test-cluster.sh: Go, containerd, podman, runc,
#                                 busybox-static, uidmap, Debian's git) and the test images
#                                 (scripts/build-test-images.sh)
#   scripts/setup.sh test         what scripts/test.sh needs: all the above, plus gnupg, PyYAML
#                                 and OpenTofu's `tofu` (built by scripts/tools.sh)
#
# It installs what is missing when it can: Debian packages with apt-get when it runs as root (or
# with a password-less sudo), PyYAML with pip, the Go-built tools and the images. What it cannot
# install (cargo, terraform, Go) it names, with where to get it, and exits 1 having
# installed nothing. It is idempotent: on a machine that has everything it only looks (a few
# hundred milliseconds; the tools and images are cached by a hash of their inputs).
#
# With --tofu (or for `test`) it prints `TOFU=<path of the built tofu>` as its last stdout line;
# everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-}"
tofu=0
case "$what" in
  quickstart) [ "${2:-}" = --tofu ] && tofu=1 ;;
  direct) ;;
  test) tofu=1 ;;
  *) echo "usage: scripts/setup.sh quickstart [--tofu] | direct | test" >&2; exit 2 ;;
esac

say() { echo "setup.sh: $*" >&2; }

# --- what no package manager here can install: checked first, reported together ---
cannot=()
command -v cargo >/dev/null || cannot+=("cargo (Rust): https://rustup.rs, then open a new shell")
[ "$what:$tofu" = quickstart:1 ] || command -v terraform >/dev/null \
  || cannot+=("terraform: https://developer.hashicorp.com/terraform/install (a zip with one binary; put it on PATH)")
# Whether the test cluster runs: it and the test images serve direct mode's tests and quickstart.
cluster=0
[ "$what" = quickstart ] || cluster=1
if [ "$tofu" = 1 ] || [ "$cluster" = 1 ]; then
  # tools.sh and test-cluster.sh say the same at build time; checking here reports everything
  # at once. OpenTofu's module asks for the newer Go, so its go line wins when both build.
  go_mod=tools/kubernetes/go.mod
  [ "$tofu" = 1 ] && go_mod=tools/tofu/go.mod
  need_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$go_mod")
  if ! command -v go >/dev/null; then
    cannot+=("go $need_go or newer (it builds tofu and the test cluster's Kubernetes from their Go modules): https://go.dev/dl/, unpacked into /usr/local/go, with /usr/local/go/bin on PATH (Debian's golang-go is too old)")
  else
    have_go=$(GOTOOLCHAIN=local go env GOVERSION | sed 's/^go//')
    if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
      cannot+=("go $need_go or newer (\`go\` on PATH is $have_go): https://go.dev/dl/")
    fi
  fi
fi
# No kubectl is asked for: the test cluster's build makes its own, of its release, and the tests,
# the quickstart and the benchmarks drive the cluster with it (`scripts/test-cluster.sh env`).

# --- Debian packages: the missing ones, by the file or command that shows each ---
packages=()
missing_cmd() { command -v "$1" >/dev/null || packages+=("$2"); }
missing_cmd curl curl
missing_cmd python3 python3
if [ "$what" = test ]; then
  # gpg signs and verifies a release in the install tests.
  missing_cmd gpg gnupg
fi
if [ "$cluster" = 1 ]; then
  # The test images are built with podman and runc (rootless needs newuidmap) from the
  # machine's static busybox and Debian's git.
  missing_cmd podman podman
  missing_cmd runc runc
  missing_cmd newuidmap uidmap
  { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || packages+=(busybox-static)
  [ -x /usr/bin/git ] || packages+=(git)
  # The test cluster's node (scripts/test-cluster.sh) runs pods with Debian's containerd.
  missing_cmd containerd containerd
fi

if [ ${#cannot[@]} -gt 0 ]; then
  say "cannot set up this machine for \`$what\`; install these first:"
  for c in "${cannot[@]}"; do echo "  - $c" >&2; done
  [ ${#packages[@]} -eq 0 ] || echo "  (then this script installs: ${packages[*]})" >&2
  exit 1
fi

apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      say "missing Debian packages: $*; install them as root:"
      echo "  apt-get update && apt-get install -y $*" >&2
      exit 1
    fi
  fi
  command -v apt-get >/dev/null || { say "missing: $* (no apt-get here: install them with the system's package manager)"; exit 1; }
  say "installing $* (apt-get)"
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
[ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"

if [ "$what" = test ]; then
  # PyYAML: one test reads the runner config's outputs template the way YAML 1.1 tools do.
  if ! python3 -c 'import yaml' 2>/dev/null; then
    say "installing PyYAML for $(command -v python3)"
    # Why pip first: python3 may be a private interpreter (pyenv, venv) that Debian's package
    # does not reach; Debian's own python3 refuses pip (PEP 668) and gets python3-yaml.
    python3 -m pip install -q pyyaml >&2 2>/dev/null || apt_install python3-yaml
    python3 -c 'import yaml' 2>/dev/null || { say "PyYAML is still not importable by $(command -v python3)"; exit 1; }
  fi
fi

tofu_path=""
if [ "$tofu" = 1 ]; then
  tofu_path=$(scripts/tools.sh --quiet tofu)
  # The pinned release, never a "-dev" build: the tests report what they ran against.
  want=$(sed -n 's/^require github.com\/opentofu\/opentofu \(v[0-9.]*\).*$/\1/p' tools/tofu/go.mod)
  # Why an empty CLI configuration: OpenTofu prints a warning about a missing one on stdout.
  have=$(TF_CLI_CONFIG_FILE=/dev/null "$tofu_path" version | head -n1)
  [ "$have" = "OpenTofu $want" ] || { say "$tofu_path reports \"$have\", expected \"OpenTofu $want\""; exit 1; }
fi

if [ "$cluster" = 1 ]; then
  # Why quiet unless something is built: an unchanged image costs only its inputs' hash.
  images_log=$(scripts/build-test-images.sh 2>&1) || { echo "$images_log" >&2; exit 1; }
  echo "$images_log" | grep -v 'is up to date' >&2 || true
fi

[ -z "$tofu_path" ] || echo "TOFU=$tofu_path"
