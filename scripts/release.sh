#!/usr/bin/env bash
# Builds the provider in release mode and writes the files the Terraform provider registry
# protocol expects into one directory (dist/ by default):
#
#   terraform-provider-humanitec_<version>_<os>_<arch>.zip   holding terraform-provider-humanitec_v<version>
#   terraform-provider-humanitec_<version>_SHA256SUMS        sha256sum format, the zips and the manifest
#   terraform-provider-humanitec_<version>_manifest.json     {"version":1,"metadata":{"protocol_versions":["5.0"]}}
#   terraform-provider-humanitec_<version>_SHA256SUMS.sig    detached binary GPG signature, when a key is given
#   terraform-provider-humanitec-helper_<version>_linux_<arch>.oci.tar
#                                                            direct mode's helper image for each Linux
#                                                            platform, an OCI image archive built from the
#                                                            release binary and Debian's packages without
#                                                            any registry (scripts/helper-image.sh); in
#                                                            SHA256SUMS too
#
# Usage: scripts/release.sh [--out DIR] [--target TRIPLE]... [--sign KEY] [--binary PATH [--version V]]
#                           [--helper-image | --no-helper-image]
#
#   --out DIR       where to write the files (default: dist/). Older files of the same version are replaced.
#   --target T      a Rust target triple to build (repeatable). Default: the host, plus every other
#                   target `rustup target list --installed` shows; a non-host target that fails to
#                   build (no cross linker, no C cross compiler for aws-lc) is skipped with a warning.
#   --sign KEY      the GPG key (id, fingerprint or e-mail) to sign SHA256SUMS with. The environment
#                   variable RELEASE_GPG_KEY does the same; GNUPGHOME selects the keyring.
#   --binary PATH   package this already built binary for the host platform instead of building
#                   (the tests and the quickstart use it to avoid a second, slow release build).
#   --version V     the version to package --binary as (default: the crate version). Only for
#                   repacking an existing binary, e.g. to test `terraform init -upgrade`.
#   --helper-image  with --binary, also write the helper image (a build always writes it).
#   --no-helper-image  write no helper image (it needs Debian's package lists: apt-get update).
#
# It prints the directory's files on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
binary=""
version=""
sign_key="${RELEASE_GPG_KEY:-}"
helper_image=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --sign) sign_key="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --helper-image) helper_image=yes; shift ;;
    --no-helper-image) helper_image=no; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 0 ;;
    *) echo "release.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$version" ] && [ -z "$binary" ]; then
  echo "release.sh: --version only goes with --binary (a build always has the crate version)" >&2
  exit 2
fi

command -v python3 >/dev/null || { echo "release.sh: python3 is needed (it writes the zips and checksums)" >&2; exit 1; }
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$crate_version" ] || { echo "release.sh: no version in Cargo.toml" >&2; exit 1; }
version="${version:-$crate_version}"
host=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The Terraform platform (os_arch) of a Rust target triple; empty when Terraform has none.
platform() {
  local triple="$1" arch os
  case "$triple" in
    x86_64-*) arch=amd64 ;;
    aarch64-*) arch=arm64 ;;
    i686-*|i586-*) arch=386 ;;
    arm-*|armv7-*) arch=arm ;;
    *) return 0 ;;
  esac
  case "$triple" in
    *-linux-*) os=linux ;;
    *-apple-darwin) os=darwin ;;
    *-windows-*) os=windows ;;
    *-freebsd) os=freebsd ;;
    *) return 0 ;;
  esac
  echo "${os}_${arch}"
}

# Pairs of "platform binary-path" to package.
packages=()
if [ -n "$binary" ]; then
  [ -x "$binary" ] || { echo "release.sh: $binary is not an executable file" >&2; exit 1; }
  # Why check: a repack under another version is deliberate (--version); a stale binary is not.
  reported=$("$binary" --version 2>/dev/null || true)
  if [ "$reported" != "terraform-provider-humanitec $version" ]; then
    echo "release.sh: note: $binary reports '$reported', packaged as version $version" >&2
  fi
  packages+=("$(platform "$host") $binary")
else
  explicit=1
  if [ ${#targets[@]} -eq 0 ]; then
    explicit=0
    targets=("$host")
    if command -v rustup >/dev/null; then
      while read -r t; do [ "$t" != "$host" ] && targets+=("$t"); done < <(rustup target list --installed)
    fi
  fi
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  for t in "${targets[@]}"; do
    p=$(platform "$t")
    if [ -z "$p" ]; then
      echo "release.sh: skipping $t: no Terraform platform for it" >&2
      continue
    fi
    exe=terraform-provider-humanitec
    case "$p" in windows_*) exe="$exe.exe" ;; esac
    echo "release.sh: building $t ($p)" >&2
    if [ "$t" = "$host" ]; then
      # Why no --target for the host: it shares target/release with a plain `cargo build --release`.
      cargo build --release --locked --bin terraform-provider-humanitec >&2
      packages+=("$p $target_dir/release/$exe")
    elif cargo build --release --locked --bin terraform-provider-humanitec --target "$t" >&2; then
      packages+=("$p $target_dir/$t/release/$exe")
    elif [ "$explicit" = 1 ]; then
      echo "release.sh: building $t failed" >&2
      exit 1
    else
      echo "release.sh: warning: $t is installed but does not build here; skipped" >&2
    fi
  done
fi

name=terraform-provider-humanitec
rm -f "$out/${name}_${version}_"*
python3 - "$out" "$name" "$version" "${packages[@]}" <<'PY'
import hashlib, json, os, sys, zipfile

out, name, version, *packages = sys.argv[1:]
written = []
for entry in packages:
    platform, path = entry.split(" ", 1)
    exe = f"{name}_v{version}" + (".exe" if platform.startswith("windows_") else "")
    archive = f"{name}_{version}_{platform}.zip"
    # Why a fixed timestamp and mode: the same binary always gives the same zip, so its zh: hash
    # (the zip's SHA-256) is reproducible.
    info = zipfile.ZipInfo(exe, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 << 16)
    info.create_system = 3  # unix, so unzip and Terraform keep the executable bit
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(os.path.join(out, archive), "w") as z:
        z.writestr(info, data, compresslevel=6)
    written.append(archive)
    print(f"release.sh: {archive} ({len(data)} byte binary)", file=sys.stderr)

manifest = f"{name}_{version}_manifest.json"
with open(os.path.join(out, manifest), "w") as f:
    json.dump({"version": 1, "metadata": {"protocol_versions": ["5.0"]}}, f)
    f.write("\n")
written.append(manifest)

with open(os.path.join(out, f"{name}_{version}_SHA256SUMS"), "w") as f:
    for file in sorted(written):
        with open(os.path.join(out, file), "rb") as g:
            f.write(f"{hashlib.sha256(g.read()).hexdigest()}  {file}\n")
PY

sums="$out/${name}_${version}_SHA256SUMS"

# The Debian architecture of a Terraform platform's arch.
debian_arch() {
  case "$1" in
    amd64) echo amd64 ;;
    arm64) echo arm64 ;;
    386) echo i386 ;;
    arm) echo armhf ;;
  esac
}

# Writes the helper image archive of each Linux platform packaged and adds it to SHA256SUMS.
write_helper_images() {
  local entry platform path archive arch written=()
  rm -f "$out/${name}-helper_${version}_"*
  for entry in "${packages[@]}"; do
    platform="${entry%% *}" path="${entry#* }"
    case "$platform" in linux_*) ;; *) continue ;; esac
    arch=$(debian_arch "${platform#linux_}")
    [ -n "$arch" ] || continue
    archive="${name}-helper_${version}_${platform}.oci.tar"
    echo "release.sh: building the helper image $archive" >&2
    scripts/helper-image.sh --binary "$path" --version "$version" --arch "$arch" \
      --out "$out/$archive" >/dev/null
    written+=("$archive")
  done
  [ ${#written[@]} -gt 0 ] || return 0
  (cd "$out" && sha256sum "${written[@]}" >> "$sums" && LC_ALL=C sort -k2 -o "$sums" "$sums")
}

if [ -z "$helper_image" ]; then
  if [ -n "$binary" ]; then helper_image=no; else helper_image=yes; fi
fi
if [ "$helper_image" = yes ]; then
  write_helper_images
fi

if [ -n "$sign_key" ]; then
  command -v gpg >/dev/null || { echo "release.sh: a signing key was given but gpg is not installed" >&2; exit 1; }
  # Why binary (not --armor): the registry protocol's shasums_signature_url is a binary detached signature.
  gpg --batch --yes --local-user "$sign_key" --detach-sign --output "$sums.sig" "$sums"
  gpg --batch --verify "$sums.sig" "$sums" 2>/dev/null || { echo "release.sh: the new signature does not verify" >&2; exit 1; }
  echo "release.sh: signed with $sign_key" >&2
fi
ls -1 "$out"/"${name}_${version}_"* "$out"/"${name}-helper_${version}_"* 2>/dev/null || true
