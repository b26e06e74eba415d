#!/usr/bin/env bash
# Builds direct mode's helper image as an OCI image archive, without any registry or container
# engine: the provider binary (which a run's pod starts as `helper prepare` and `helper
# collect`), git, ssh and the public CA certificates, from Debian's packages.
#
#   scripts/helper-image.sh --binary PATH --version V --out FILE [--arch ARCH]
#
#   --binary PATH   the provider binary for Linux on ARCH (the release binary)
#   --version V     the provider version: the image's tag and its ref.name annotation
#   --out FILE      the archive to write (terraform-provider-humanitec-helper_<V>_linux_<ARCH>.oci.tar)
#   --arch ARCH     the Debian architecture (amd64, arm64, ...); default: this machine's.
#                   Another architecture's packages come from a private apt state under
#                   $TMPDIR (an `apt-get update` for that architecture), not this machine's.
#
# The image: Debian's git, openssh-client, ca-certificates and dash with what they depend on
# (Depends and Pre-Depends, recursively), less the packages only maintainer scripts or git's
# Perl commands need (perl, debconf, adduser, passwd, openssl, git-man, ...); the CA bundle that
# update-ca-certificates would write; /etc/passwd with `runner` (UID and GID 1000, the pods'
# user: ssh refuses a user without an entry); the binary at
# /usr/local/bin/terraform-provider-humanitec; and /usr/share/terraform-provider-humanitec-helper/
# packages.txt listing each package and version. Documentation, manual pages and locales are
# left out.
#
# Reproducible: the same binary and the same package versions give the same image digest
# (entries sorted, owners and modes fixed, every time SOURCE_DATE_EPOCH, default 0, gzip
# without a name or time). It prints the manifest digest on stdout; progress goes to stderr.
#
# Needs: apt-get, apt-cache, dpkg-deb, python3 and Debian's package lists (`apt-get update`).
set -euo pipefail

binary="" version="" out="" arch=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --arch) arch="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 0 ;;
    *) echo "helper-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$binary" ] && [ -n "$version" ] && [ -n "$out" ] || {
  echo "helper-image.sh: --binary, --version and --out are needed (see --help)" >&2; exit 2; }
[ -x "$binary" ] || { echo "helper-image.sh: $binary is not an executable file" >&2; exit 1; }
for tool in apt-get apt-cache dpkg-deb python3; do
  command -v "$tool" >/dev/null || { echo "helper-image.sh: $tool is needed (a Debian machine)" >&2; exit 1; }
done
host_arch=$(dpkg --print-architecture)
arch="${arch:-$host_arch}"

# Why update only when git is unknown: a fresh machine may have no package lists yet.
if [ "$arch" = "$host_arch" ] && ! apt-cache show git >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "helper-image.sh: no Debian package lists yet; running apt-get update" >&2
    apt-get update -qq >&2
  else
    echo "helper-image.sh: Debian's package lists are missing: run apt-get update as root" >&2; exit 1
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Why a private apt state for another architecture: adding it to this machine's dpkg would
# change the machine; apt reads another architecture's lists from its own directories instead.
apt_opts=()
# Why: apt downloads as its _apt user, which cannot write into a private temporary directory.
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
if [ "$arch" != "$host_arch" ]; then
  state="$work/apt"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
  : > "$state/status"
  apt_opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
    -o "Dir::State::Lists=$state/lists" -o "Dir::State::status=$state/status"
    -o "Dir::Cache=$state/cache")
  echo "helper-image.sh: reading Debian's package lists for $arch" >&2
  apt-get "${apt_opts[@]}" -qq update >&2
fi

# The packages: the closure of Depends and Pre-Depends (the first of alternatives, the first
# provider of a virtual package), not descending into the left-out packages.
packages=$(python3 - "${apt_opts[@]}" <<'PY'
import re, subprocess, sys

opts = sys.argv[1:]
# Why each is left out: perl* and liberror-perl serve git's Perl commands (add -i, send-email,
# svn), not fetch and checkout; git-man is documentation; debconf, adduser, passwd, dpkg and
# debianutils serve maintainer scripts, which never run here (the passwd entry is written
# directly); openssl serves update-ca-certificates, whose bundle is written directly; the PAM
# packages serve passwd.
left_out = {
    "perl", "perl-base", "perl-modules-5.36", "libperl5.36", "liberror-perl", "git-man",
    "debconf", "cdebconf", "adduser", "passwd", "dpkg", "debianutils", "openssl",
    "libpam0g", "libpam-modules", "libpam-modules-bin", "libpam-runtime",
}
wanted = ["git", "openssh-client", "ca-certificates", "dash", "libgcc-s1"]
depends = re.compile(r"\s*(\|?)(?:Pre)?Depends: (\S+)")

def dependencies(package):
    out = subprocess.run(
        ["apt-cache", *opts, "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", package],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()[1:]
    found, alternative, i = [], False, 0
    while i < len(out):
        match = depends.match(out[i])
        if not match:
            i += 1
            continue
        name, i = match.group(2), i + 1
        providers = []
        while i < len(out) and not depends.match(out[i]):
            providers.append(out[i].strip())
            i += 1
        if name.startswith("<"):
            name = providers[0] if providers else None
        if name and not alternative:
            found.append(name.split(":")[0])
        alternative = match.group(1) == "|"
    return found

seen, queue = set(), list(wanted)
while queue:
    package = queue.pop(0)
    if package in seen or package in left_out:
        continue
    seen.add(package)
    queue.extend(dependencies(package))
print("\n".join(sorted(seen)))
PY
)
count=$(echo "$packages" | wc -l)
echo "helper-image.sh: $count Debian packages for linux/$arch" >&2

mkdir -p "$work/debs" "$work/root"
suffix=""
[ "$arch" != "$host_arch" ] && suffix=":$arch"
# shellcheck disable=SC2046 # one word per package
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download $(echo "$packages" | sed "s/\$/$suffix/") >&2)
: > "$work/packages.txt"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$work/root"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' | awk '{print $2 "=" $4}' >> "$work/packages.txt"
done

root="$work/root"
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion} "$root/etc/cron.daily"
mkdir -p "$root"/{tmp,var/tmp,home/runner,etc/ssl/certs,usr/local/bin,usr/share/terraform-provider-humanitec-helper}
chmod 1777 "$root/tmp" "$root/var/tmp"
# Why /bin/sh: git runs GIT_SSH_COMMAND through the shell; dash's postinst would link it.
ln -sf dash "$root/bin/sh"
# What update-ca-certificates writes for Debian's default selection (every Mozilla root).
find "$root/usr/share/ca-certificates/mozilla" -name '*.crt' | LC_ALL=C sort | xargs cat \
  > "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nrunner:x:1000:1000:runner:/home/runner:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nrunner:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
install -m 0755 "$binary" "$root/usr/local/bin/terraform-provider-humanitec"
LC_ALL=C sort "$work/packages.txt" > "$root/usr/share/terraform-provider-humanitec-helper/packages.txt"

python3 - "$root" "$out" "$version" "$arch" "${SOURCE_DATE_EPOCH:-0}" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile

root, out, version, arch, epoch = sys.argv[1:]
epoch = int(epoch)

def normalize(info):
    info.mtime = epoch
    info.uname = info.gname = ""
    info.uid = info.gid = 0
    if info.name == "home/runner" or info.name.startswith("home/runner/"):
        info.uid = info.gid = 1000
    if info.isreg() or info.isdir():
        info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
        if info.name in ("tmp", "var/tmp"):
            info.mode = 0o1777
    return info

# The layer: every path in sorted order, so hard links point at the first of their group.
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as tar:
    paths = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            paths.append(os.path.relpath(full, root))
    for path in sorted(paths):
        info = tar.gettarinfo(os.path.join(root, path), arcname=path)
        info = normalize(info)
        if info.isreg():
            with open(os.path.join(root, path), "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
raw = layer.getvalue()
compressed = io.BytesIO()
with gzip.GzipFile(filename="", fileobj=compressed, mode="wb", compresslevel=9, mtime=0) as z:
    z.write(raw)
layer_blob = compressed.getvalue()

def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

created = "1970-01-01T00:00:00Z" if epoch == 0 else \
    __import__("datetime").datetime.fromtimestamp(epoch, __import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
name = "ghcr.io/container-runner/terraform-provider-humanitec-helper"
labels = {
    "org.opencontainers.image.title": "terraform-provider-humanitec-helper",
    "org.opencontainers.image.description": "The steps of terraform-provider-humanitec's direct mode inside a run's pod (helper prepare, helper collect), with git and ssh",
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.licenses": "MPL-2.0",
}
config = canonical({
    "architecture": arch,
    "os": "linux",
    "created": created,
    "config": {
        "User": "1000:1000",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/home/runner"],
        "Cmd": ["/usr/local/bin/terraform-provider-humanitec", "--version"],
        "WorkingDir": "/home/runner",
        "Labels": labels,
    },
    "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
    "history": [{"created": created, "created_by": "scripts/helper-image.sh"}],
})
manifest = canonical({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": digest(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(layer_blob), "size": len(layer_blob)}],
    "annotations": labels,
})
index = canonical({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(manifest), "size": len(manifest),
        "platform": {"architecture": arch, "os": "linux"},
        # Why the whole name: `podman load` names the image after it, so a node that loads
        # the archive has the provider's default helper_image.
        "annotations": {"org.opencontainers.image.ref.name": f"{name}:{version}"},
    }],
})
entries = [
    ("oci-layout", canonical({"imageLayoutVersion": "1.0.0"})),
    ("index.json", index),
]
entries += sorted(
    (f"blobs/sha256/{digest(blob)[7:]}", blob) for blob in (config, manifest, layer_blob)
)
with tarfile.open(out, mode="w", format=tarfile.GNU_FORMAT) as tar:
    for directory in ("blobs", "blobs/sha256"):
        info = tarfile.TarInfo(directory)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
        tar.addfile(info)
    for path, data in entries:
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = len(data), 0o644, epoch
        tar.addfile(info, io.BytesIO(data))
print(f"helper-image.sh: {os.path.basename(out)}: {len(raw)} bytes unpacked, "
      f"{len(layer_blob)} bytes compressed", file=sys.stderr)
print(digest(manifest))
PY
