#!/usr/bin/env python3
"""Writes link/startup-order.txt: the functions of the provider binary that a launch runs, in the
order they first run, which build.rs hands to the linker (`--symbol-ordering-file`) so that
they sit together at the start of the code.

Why: a launch (go-plugin handshake, AutoMTLS, the schema, validation) runs about 1 MB of the
binary's 12 MB of code, and every page fault maps its neighbours too; spread among code it never
runs, that 1 MB made 5.4 MB of code resident. Packed together it is a few hundred pages.

How: Terraform launches the release binary under valgrind's callgrind, as it launches any
provider (AutoMTLS on), for `terraform providers schema -json` and `terraform validate` of a
configuration with both resources; every function callgrind saw run in the binary is listed.

Run it after a change that moves a lot of what a launch runs (a new dependency version, a new
protocol path); a stale list costs memory, never a build: the linker skips names the binary
no longer has. `scripts/bench.py` shows the effect (peak RSS over the AutoMTLS exchange).

Usage: scripts/order-startup-code.py [--bin PATH]
Needs: valgrind (apt-get install -y valgrind) and terraform on PATH. Without --bin it builds
the release binary with cargo first.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "link", "startup-order.txt")

CONFIG = """terraform {
  required_providers {
    humanitec = { source = "container-runner/humanitec" }
  }
}

provider "humanitec" {
  org_id     = "my-org"
  api_prefix = "http://127.0.0.1:1"
  token      = "not-used"
}

resource "humanitec_runner_config" "dev" {
  id = "config-dev"
  cluster {
    cluster_type = "gke"
    name         = "dev"
    project_id   = "my-project"
    zone         = "europe-west3"
  }
  kubernetes {
    config_path = "~/.kube/config"
  }
}

resource "humanitec_container_runner" "s3" {
  id            = "s3-bucket"
  type          = "s3"
  runner_config = humanitec_runner_config.dev
  job {
    image            = "ghcr.io/my-org/runner:1"
    variables        = { REGION = "eu-west-1" }
    secret_variables = { TOKEN = "secret" }
  }
  source {
    url      = "https://github.com/my-org/infra.git"
    username = "git"
    password = "secret"
  }
  files = { "terraform.tfvars" = "region = \\"eu-west-1\\"" }
}
"""


def functions_run(callgrind_out, binary):
    """The names of the functions of `binary` that ran, in the order callgrind first lists them."""
    objects, functions, names, seen = {}, {}, [], set()
    current = None

    def lookup(rest, table):
        # callgrind compresses names: "(7) name" defines id 7, a later "(7)" refers to it.
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        if m.group(2):
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1))

    with open(callgrind_out) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                current = lookup(line[3:], objects)
            elif line.startswith("cob="):
                # Why: an object may be named first where a call goes to it.
                lookup(line[4:], objects)
            elif line.startswith("cfn="):
                lookup(line[4:], functions)
            elif line.startswith("fn="):
                name = lookup(line[3:], functions)
                if current == binary and name:
                    # `'2` marks a recursion depth, not a name; `0x…` an address without one.
                    name = re.sub(r"'\d+$", "", name)
                    if name not in seen and not name.startswith("0x"):
                        seen.add(name)
                        names.append(name)
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", help="the provider binary (default: build the release binary)")
    args = parser.parse_args()
    for tool, how in (("valgrind", "apt-get install -y valgrind"), ("terraform", "https://developer.hashicorp.com/terraform/install")):
        if not shutil.which(tool):
            sys.exit("order-startup-code: %s is missing (%s)" % (tool, how))
    binary = args.bin
    if not binary:
        # Why exactly this build: it is scripts/release.sh's; a build with other packages may
        # give dependencies other features, and so their functions other names.
        subprocess.run(["cargo", "build", "--release", "--bin", "terraform-provider-humanitec"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        binary = os.path.join(target, "release", "terraform-provider-humanitec")
    binary = os.path.realpath(binary)

    with tempfile.TemporaryDirectory() as work:
        plugins = os.path.join(work, "plugins")
        os.makedirs(plugins)
        wrapper = os.path.join(plugins, "terraform-provider-humanitec")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec valgrind -q --tool=callgrind --demangle=no '
                    '--callgrind-out-file=%s/callgrind.%%p %s "$@"\n' % (work, binary))
        os.chmod(wrapper, 0o755)
        cli_config = os.path.join(work, "cli.tfrc")
        with open(cli_config, "w") as f:
            f.write('provider_installation {\n  dev_overrides {\n    "container-runner/humanitec" = "%s"\n'
                    '  }\n  direct {}\n}\n' % plugins)
        config = os.path.join(work, "config")
        os.makedirs(config)
        with open(os.path.join(config, "main.tf"), "w") as f:
            f.write(CONFIG)
        env = dict(os.environ, TF_CLI_CONFIG_FILE=cli_config, CHECKPOINT_DISABLE="1")
        for command in (["providers", "schema", "-json"], ["validate", "-no-color"]):
            run = subprocess.run(["terraform", *command], cwd=config, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit("order-startup-code: terraform %s failed:\n%s%s" % (" ".join(command), run.stdout, run.stderr))
        names, seen = [], set()
        for out in sorted(glob.glob(os.path.join(work, "callgrind.*")), key=os.path.getmtime):
            for name in functions_run(out, binary):
                if name not in seen:
                    seen.add(name)
                    names.append(name)
    if not names:
        sys.exit("order-startup-code: callgrind saw no function of %s run" % binary)

    sizes = {}
    for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(names) + "\n")
    print("wrote %s: %d functions, %d KiB of code (%d names not found by nm)" % (
        os.path.relpath(OUT, REPO), len(names), sum(sizes.get(n, 0) for n in names) // 1024,
        sum(1 for n in names if n not in sizes)))


if __name__ == "__main__":
    main()
