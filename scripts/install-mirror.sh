#!/usr/bin/env bash
# Installs a release built by scripts/release.sh into a Terraform provider mirror, after checking
# the zips against SHA256SUMS (and SHA256SUMS against its .sig, when there is one).
#
# Usage: scripts/install-mirror.sh [--from DIR] [--version V] [--hostname H]... [--packed | --network] [MIRROR]
#
# One mirror serves Terraform and OpenTofu: the bare source address `container-runner/humanitec`
# means registry.terraform.io/container-runner/humanitec to Terraform and
# registry.opentofu.org/container-runner/humanitec to OpenTofu, so by default the provider is
# installed under both hostnames (HOSTNAME below).
#
#   (default)   a filesystem mirror in the unpacked layout:
#                 MIRROR/HOSTNAME/container-runner/humanitec/VERSION/OS_ARCH/terraform-provider-humanitec_vVERSION
#               MIRROR defaults to ~/.terraform.d/plugins, the implied local mirror directory that
#               `terraform init` and `tofu init` search without any CLI configuration.
#   --packed    a filesystem mirror in the packed layout (the zips as released):
#                 MIRROR/HOSTNAME/container-runner/humanitec/terraform-provider-humanitec_VERSION_OS_ARCH.zip
#   --network   a provider network mirror directory for any static HTTPS server (MIRROR is required):
#                 MIRROR/HOSTNAME/container-runner/humanitec/index.json        versions
#                 MIRROR/HOSTNAME/container-runner/humanitec/VERSION.json      archives with h1: and zh: hashes
#                 MIRROR/HOSTNAME/container-runner/humanitec/terraform-provider-humanitec_VERSION_OS_ARCH.zip
#               Versions already in the mirror are kept, so running it per release builds up the index.
#
#   --from DIR        the release directory (default: dist/)
#   --version V       the version to install (default: the only version in --from)
#   --hostname H      a registry hostname to install under (repeatable; default: registry.terraform.io
#                     and registry.opentofu.org, what `source = "container-runner/humanitec"` means
#                     to Terraform and to OpenTofu)
#   --skip-signature  install even though SHA256SUMS.sig cannot be verified (no gpg, key not imported)
#
# It prints the installed path on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

from=dist
version=""
hostnames=()
layout=unpacked
mirror=""
skip_signature=0
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --hostname) hostnames+=("$2"); shift 2 ;;
    --packed) layout=packed; shift ;;
    --network) layout=network; shift ;;
    --skip-signature) skip_signature=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 0 ;;
    -*) echo "install-mirror.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$mirror" ] || { echo "install-mirror.sh: one mirror directory only" >&2; exit 2; }; mirror="$1"; shift ;;
  esac
done
[ ${#hostnames[@]} -gt 0 ] || hostnames=(registry.terraform.io registry.opentofu.org)
command -v python3 >/dev/null || { echo "install-mirror.sh: python3 is needed" >&2; exit 1; }
[ -d "$from" ] || { echo "install-mirror.sh: no release directory $from (run scripts/release.sh first)" >&2; exit 1; }

name=terraform-provider-humanitec
if [ -z "$version" ]; then
  versions=$(cd "$from" && ls -1 | sed -n "s/^${name}_\(.*\)_SHA256SUMS$/\1/p")
  case $(echo "$versions" | grep -c .) in
    1) version="$versions" ;;
    0) echo "install-mirror.sh: no ${name}_*_SHA256SUMS in $from" >&2; exit 1 ;;
    *) echo "install-mirror.sh: $from holds several versions ($(echo $versions)); pick one with --version" >&2; exit 1 ;;
  esac
fi
sums="$from/${name}_${version}_SHA256SUMS"
[ -f "$sums" ] || { echo "install-mirror.sh: no $sums" >&2; exit 1; }

if [ -f "$sums.sig" ]; then
  if command -v gpg >/dev/null && gpg --batch --verify "$sums.sig" "$sums" 2>/dev/null; then
    echo "install-mirror.sh: SHA256SUMS signature verified" >&2
  elif [ "$skip_signature" = 1 ]; then
    echo "install-mirror.sh: warning: SHA256SUMS.sig not verified (--skip-signature)" >&2
  else
    echo "install-mirror.sh: $sums.sig does not verify: import the signing team's public key (gpg --import KEY.asc) or pass --skip-signature" >&2
    exit 1
  fi
fi

case "$layout" in
  network) [ -n "$mirror" ] || { echo "install-mirror.sh: --network needs a mirror directory" >&2; exit 2; } ;;
  *) mirror="${mirror:-$HOME/.terraform.d/plugins}" ;;
esac
mkdir -p "$mirror"

for hostname in "${hostnames[@]}"; do
python3 - "$from" "$name" "$version" "$hostname" "$layout" "$mirror" <<'PY'
import base64, hashlib, json, os, re, shutil, sys, zipfile

src, name, version, hostname, layout, mirror = sys.argv[1:]
provider_dir = os.path.join(mirror, hostname, "container-runner", "humanitec")
os.makedirs(provider_dir, exist_ok=True)

def log(msg):
    print(f"install-mirror.sh: {msg}", file=sys.stderr)

def h1(path):
    # Terraform's "hash scheme 1" (Go's dirhash.Hash1 over the zip's contents): the SHA-256 of
    # the lines "<hex sha256 of file>  <file name>\n", sorted by name, base64-encoded.
    with zipfile.ZipFile(path) as z:
        lines = []
        for entry in sorted(z.namelist()):
            lines.append(f"{hashlib.sha256(z.read(entry)).hexdigest()}  {entry}\n")
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()

pattern = re.compile(re.escape(f"{name}_{version}_") + r"([a-z0-9]+_[a-z0-9]+)\.zip")
archives = {}
with open(os.path.join(src, f"{name}_{version}_SHA256SUMS")) as f:
    for line in f:
        digest, file = line.split()
        path = os.path.join(src, file)
        with open(path, "rb") as g:
            if hashlib.sha256(g.read()).hexdigest() != digest:
                sys.exit(f"install-mirror.sh: {file} does not match SHA256SUMS; refusing to install it")
        m = pattern.fullmatch(file)
        if m:
            archives[m.group(1)] = (file, path, digest)
if not archives:
    sys.exit(f"install-mirror.sh: SHA256SUMS of {version} lists no zip")

for platform, (file, path, digest) in sorted(archives.items()):
    if layout == "unpacked":
        target = os.path.join(provider_dir, version, platform)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        with zipfile.ZipFile(path) as z:
            for entry in z.namelist():
                dest = z.extract(entry, target)
                os.chmod(dest, 0o755)
        print(target)
    else:
        shutil.copyfile(path, os.path.join(provider_dir, file))
        print(os.path.join(provider_dir, file))
    log(f"installed {version} {platform} ({layout}) for {hostname}")

if layout == "network":
    # Why read before writing: other versions and platforms already in the mirror stay listed.
    index_path = os.path.join(provider_dir, "index.json")
    index = {"versions": {}}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index.setdefault("versions", {})[version] = {}
    version_path = os.path.join(provider_dir, f"{version}.json")
    listing = {"archives": {}}
    if os.path.exists(version_path):
        with open(version_path) as f:
            listing = json.load(f)
    for platform, (file, path, digest) in archives.items():
        # The URL is relative: Terraform resolves it against this JSON document's URL.
        listing.setdefault("archives", {})[platform] = {
            "url": file,
            "hashes": [h1(path), f"zh:{digest}"],
        }
    for path, doc in ((index_path, index), (version_path, listing)):
        with open(path, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
    log(f"wrote {index_path} and {version_path}")
PY
done
