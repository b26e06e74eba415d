#!/usr/bin/env python3
"""Benchmarks for the provider, reported as numbers and ratios from one run.

Measures, on the release build:
  1. process start to handshake line (median of N launches, with AutoMTLS on);
  2. resident memory of the provider after Terraform fetched its schema;
  3. `terraform apply` + `terraform destroy` of 100 humanitec_runner_config resources against
     humanitec-sandbox, versus 100 terraform_data resources in the same run (the floor:
     Terraform with no plugin at all), and versus 1 runner config and 99 terraform_data (what
     Terraform spends launching a plugin at all is then in the baseline too), and versus 100
     terraform_data holding the whole object a runner config's state holds (every attribute of
     its type, unset ones as null, read from one real apply);
  4. the same for 100 humanitec_container_runner resources with every attribute set (job with
     pod_template, variables and secret_variables; source with a password; files and
     secret_files; credentials_config; driver_account; criteria; force_delete; timeouts).

  5. the resident memory of the provider at its peak over `terraform providers schema` as
     Terraform really runs it (AutoMTLS handshake, GetProviderSchema, shutdown);
  6. the binary's size, its count of dynamic relocations (each one is work at every start) and
     how many of the functions link/startup-order.txt lists it has (build.rs; a stale list
     shows here as a low count).

Times of (3) and (4) are given as wall time and as CPU time (user + system of Terraform and every
provider process it started), the median of --rounds rounds, each with its ratio to the
baselines: 100 terraform_data whose `input` holds an object of the configured values (the
target: the provider costs Terraform nothing beyond the data), for runner configs also the two
above (the launches paid; the whole state object), and 100 plain terraform_data. The provider
processes' own CPU is reported too, from one more round with each launch timed.

What Terraform spends on a resource grows with its schema's type, set or not: a runner config's
type has 43 attributes whatever the configuration sets. The baseline of the whole state object
holds them all; the one of the configured values holds 8.

Usage: scripts/bench.py [--count 100] [--launches 50] [--rounds 3] [--bin-dir DIR]
Without --bin-dir it builds with cargo --release first; with it, it measures the binaries in DIR
as they are (e.g. a build of another commit, to compare two builds on one machine in one session).
Nothing here is a pass/fail assertion: the machines are shared and noisy.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

COOKIE = ("TF_PLUGIN_MAGIC_COOKIE", "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Every attribute of humanitec_container_runner, with criteria distinct per resource (a matching
# rule must be unique per resource type).
CONTAINER_RUNNERS = r'''
resource "humanitec_container_runner" "bench" {
  count          = %d
  id             = "container-runner-${count.index}"
  name           = "Container runner ${count.index}"
  type           = "s3"
  driver_account = "my-aws-account"

  criteria {
    app_id   = "app-${count.index}"
    env_type = "development"
    class    = "default"
  }

  job {
    image            = "ghcr.io/my-org/my-image:1.1.0"
    command          = ["/opt/container"]
    shared_directory = "/home/runneruser/workspace"
    namespace        = "humanitec-runner"
    service_account  = "humanitec-runner-job"
    pod_template     = <<-EOT
      spec:
        imagePullSecrets:
          - name: ghcr-private-registry
    EOT
    variables        = { TF_LOG = "info", INDEX = "${count.index}" }
    secret_variables = { AWS_SECRET_ACCESS_KEY = "secret-${count.index}" }
  }

  source {
    url      = "https://my-domain.com/my-org/my-repo.git"
    ref      = "refs/heads/main"
    path     = "s3"
    username = "my-git-handler"
    password = "git-password-${count.index}"
  }

  files = {
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({ bucket = "$${context.app.id}-$${context.env.id}" })
  }
  secret_files = {
    "/home/runneruser/workspace/s3/secret.auto.tfvars" = "token = \"secret-file-${count.index}\""
  }

  credentials_config {
    environment = { AWS_ACCESS_KEY_ID = "AccessKeyId", AWS_SECRET_ACCESS_KEY = "SecretAccessKey" }
    file        = "credentials.json"
  }

  force_delete = true
  timeouts {
    create = "10m"
    update = "10m"
    delete = "10m"
    read   = "5m"
  }
}
'''


# 100 terraform_data whose input is an object of the same shape and values as one runner config
# (blocks become lists of objects, as in Terraform's type of the resource).
RUNNER_CONFIGS_AS_DATA = r'''
resource "terraform_data" "bench" {
  count = %d
  input = {
    id       = "runner-${count.index}"
    criteria = [{ env_type = "env-${count.index}" }]
    cluster = [{
      cluster_type = "gke"
      account      = "org/account"
      name         = "cluster"
      project_id   = "project"
      zone         = "zone"
    }]
  }
}
'''

# The same for one container runner with every attribute set.
CONTAINER_RUNNERS_AS_DATA = r'''
resource "terraform_data" "bench" {
  count = %d
  input = {
    id             = "container-runner-${count.index}"
    name           = "Container runner ${count.index}"
    type           = "s3"
    driver_account = "my-aws-account"
    criteria = [{
      app_id   = "app-${count.index}"
      env_type = "development"
      class    = "default"
    }]
    job = [{
      image            = "ghcr.io/my-org/my-image:1.1.0"
      command          = ["/opt/container"]
      shared_directory = "/home/runneruser/workspace"
      namespace        = "humanitec-runner"
      service_account  = "humanitec-runner-job"
      pod_template     = <<-EOT
        spec:
          imagePullSecrets:
            - name: ghcr-private-registry
      EOT
      variables        = { TF_LOG = "info", INDEX = "${count.index}" }
      secret_variables = { AWS_SECRET_ACCESS_KEY = "secret-${count.index}" }
    }]
    source = [{
      url      = "https://my-domain.com/my-org/my-repo.git"
      ref      = "refs/heads/main"
      path     = "s3"
      username = "my-git-handler"
      password = "git-password-${count.index}"
    }]
    files = {
      "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({ bucket = "$${context.app.id}-$${context.env.id}" })
    }
    secret_files = {
      "/home/runneruser/workspace/s3/secret.auto.tfvars" = "token = \"secret-file-${count.index}\""
    }
    credentials_config = [{
      environment = { AWS_ACCESS_KEY_ID = "AccessKeyId", AWS_SECRET_ACCESS_KEY = "SecretAccessKey" }
      file        = "credentials.json"
    }]
    force_delete = true
    timeouts     = { create = "10m", update = "10m", delete = "10m", read = "5m" }
  }
}
'''


def build():
    # Why the provider on its own: built as scripts/release.sh builds it, its dependencies have
    # the same features, so its symbols are the names link/startup-order.txt lists (built with
    # the sandbox, some would differ and the order would not apply).
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "terraform-provider-humanitec"],
                   cwd=REPO, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "humanitec-sandbox", "--bin", "humanitec-sandbox"],
                   cwd=REPO, check=True)
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO))
    return os.path.join(meta["target_directory"], "release")


def client_cert_pem(work):
    """A P-521 self-signed certificate like the one Terraform sends."""
    key, cert = os.path.join(work, "k.pem"), os.path.join(work, "c.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-sha512",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/O=HashiCorp/CN=localhost"],
        check=True, capture_output=True)
    with open(cert) as f:
        return f.read()


def handshake_times(provider, pem, launches):
    env = dict(os.environ, PLUGIN_PROTOCOL_VERSIONS="5", PLUGIN_CLIENT_CERT=pem)
    env[COOKIE[0]] = COOKIE[1]
    times = []
    for _ in range(launches):
        start = time.perf_counter()
        proc = subprocess.Popen([provider], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        line = proc.stdout.readline()
        times.append((time.perf_counter() - start) * 1000)
        proc.kill()
        proc.wait()
        assert line.startswith(b"1|5|unix|"), line
    return times


def tf_env(work, bin_dir, extra=None):
    rc = os.path.join(work, "dev.tfrc")
    with open(rc, "w") as f:
        f.write('provider_installation {\n  dev_overrides {\n    "container-runner/humanitec" = "%s"\n  }\n  direct {}\n}\n' % bin_dir)
    env = dict(os.environ, TF_CLI_CONFIG_FILE=rc, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
    env.update(extra or {})
    return env


def rss_after_schema(bin_dir, work):
    """Serves the provider in reattach mode, has Terraform fetch the schema, reads VmRSS."""
    proc = subprocess.Popen([os.path.join(bin_dir, "terraform-provider-humanitec"), "--debug"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    reattach = None
    while reattach is None:
        line = proc.stdout.readline()
        if "TF_REATTACH_PROVIDERS=" in line:
            reattach = line.split("=", 1)[1].strip().strip("'")
    d = os.path.join(work, "schema")
    os.makedirs(d)
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write('terraform {\n  required_providers {\n    humanitec = { source = "container-runner/humanitec" }\n  }\n}\n')
    env = dict(os.environ, TF_REATTACH_PROVIDERS=reattach, CHECKPOINT_DISABLE="1")
    env.pop("TF_CLI_CONFIG_FILE", None)
    subprocess.run(["terraform", "providers", "schema", "-json"], cwd=d, env=env, check=True, capture_output=True)
    with open("/proc/%d/status" % proc.pid) as f:
        rss_kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    proc.kill()
    proc.wait()
    return rss_kib / 1024


def rss_over_mtls_exchange(bin_dir, work):
    """Peak VmHWM of the provider while Terraform launches it with AutoMTLS and fetches its schema.

    Why a wrapper: Terraform starts and stops the provider itself; the wrapper execs the binary
    under GNU time, which reports the peak resident set of exactly that process at its exit.
    """
    wrap_dir = os.path.join(work, "wrapped")
    os.makedirs(wrap_dir)
    report = os.path.join(work, "peak-rss-kib")
    wrapper = os.path.join(wrap_dir, "terraform-provider-humanitec")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec /usr/bin/time -f %%M -o %s %s "$@"\n'
                % (report, os.path.join(bin_dir, "terraform-provider-humanitec")))
    os.chmod(wrapper, 0o755)
    d = os.path.join(work, "schema-mtls")
    os.makedirs(d)
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write('terraform {\n  required_providers {\n    humanitec = { source = "container-runner/humanitec" }\n  }\n}\n')
    # Why the binary leaves the page cache first: how the kernel cached the file (one large
    # folio or many small ones) changes how much of it a page fault maps, by up to 0.5 MiB, so
    # every build is measured from the same state: read back by the first launch.
    fd = os.open(os.path.join(bin_dir, "terraform-provider-humanitec"), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    peaks = []
    for _ in range(5):
        if os.path.exists(report):
            os.remove(report)
        subprocess.run(["terraform", "providers", "schema", "-json"], cwd=d, env=tf_env(work, wrap_dir),
                       check=True, capture_output=True)
        for _ in range(100):  # GNU time writes its report when the provider has exited
            if os.path.exists(report) and os.path.getsize(report) > 0:
                break
            time.sleep(0.05)
        with open(report) as f:
            peaks.append(int(f.read().split()[-1]) / 1024)
    return statistics.median(peaks)


def startup_order_coverage(path):
    """How many of the functions link/startup-order.txt lists the binary has (by name)."""
    order = os.path.join(REPO, "link", "startup-order.txt")
    if not os.path.exists(order):
        return 0, 0
    with open(order) as f:
        listed = [line.strip() for line in f if line.strip()]
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return sum(1 for name in listed if name in names), len(listed)


def relocations(path):
    """The number of dynamic relocations the loader applies at start (`readelf -r`)."""
    out = subprocess.run(["readelf", "-r", "-W", path], capture_output=True, text=True).stdout
    return sum(int(line.split("contains ")[1].split()[0]) for line in out.splitlines()
               if "Relocation section" in line and "contains " in line)


def timed(cmd, cwd, env):
    """Wall time and CPU time (user + system of the command and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def apply_destroy(work, name, main_tf, env):
    d = os.path.join(work, name)
    os.makedirs(d)
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(main_tf)
    apply = timed(["terraform", "apply", "-auto-approve", "-input=false", "-no-color"], d, env)
    destroy = timed(["terraform", "destroy", "-auto-approve", "-input=false", "-no-color"], d, env)
    return apply, destroy


def median_run(runs):
    """The median wall and CPU time of apply + destroy over rounds of `apply_destroy`."""
    wall = statistics.median(a[0] + d[0] for a, d in runs)
    cpu = statistics.median(a[1] + d[1] for a, d in runs)
    return wall, cpu


def hcl(value, indent=""):
    """A value of Terraform's JSON state as an HCL expression (nulls kept)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return "[" + ", ".join(hcl(v, indent) for v in value) + "]"
    inner = indent + "  "
    return "{\n" + "".join("%s%s = %s\n" % (inner, json.dumps(k), hcl(v, inner)) for k, v in value.items()) + indent + "}"


def runner_config_state_as_data(work, header, runner_config_resources, env, count):
    """`count` terraform_data whose input is the whole object a runner config's state holds: every
    attribute of its type, the unset ones as null, read from the state of one real apply.

    Why this baseline too: Terraform handles a resource as the whole type of its schema (43
    attributes for a runner config), whatever the configuration sets; a terraform_data holding
    only the set values handles 8. This one holds what the runner config's state holds.
    """
    d = os.path.join(work, "state-as-data")
    os.makedirs(d)
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(header + runner_config_resources % 1)
    subprocess.run(["terraform", "apply", "-auto-approve", "-input=false"], cwd=d, env=env, check=True, capture_output=True)
    with open(os.path.join(d, "terraform.tfstate")) as f:
        attributes = json.load(f)["resources"][0]["instances"][0]["attributes"]
    subprocess.run(["terraform", "destroy", "-auto-approve", "-input=false"], cwd=d, env=env, check=True, capture_output=True)
    text = hcl(attributes, "  ")
    for index_zero, per_index in [('"runner-0"', '"runner-${count.index}"'), ('"env-0"', '"env-${count.index}"')]:
        assert index_zero in text, index_zero
        text = text.replace(index_zero, per_index)
    return 'resource "terraform_data" "bench" {\n  count = %d\n  input = %s\n}\n' % (count, text)


def wrapped_bin_dir(bin_dir, work, cpu_log):
    """A directory whose provider runs the real one under GNU time, which appends each launch's
    user and system CPU seconds to `cpu_log`: the provider processes' own share of a command."""
    wrap_dir = os.path.join(work, "cpu-wrapped")
    os.makedirs(wrap_dir, exist_ok=True)
    wrapper = os.path.join(wrap_dir, "terraform-provider-humanitec")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec /usr/bin/time -a -f "%%U %%S" -o %s %s "$@"\n'
                % (cpu_log, os.path.join(bin_dir, "terraform-provider-humanitec")))
    os.chmod(wrapper, 0o755)
    return wrap_dir


def provider_cpu(cpu_log):
    """The CPU seconds (user + system) of every provider launch logged in `cpu_log`, and the
    number of launches."""
    total, launches = 0.0, 0
    with open(cpu_log) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 2:
                total += float(fields[0]) + float(fields[1])
                launches += 1
    return total, launches


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--launches", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="apply+destroy rounds per configuration")
    parser.add_argument("--bin-dir", help="measure the binaries in this directory instead of building")
    args = parser.parse_args()

    bin_dir = os.path.abspath(args.bin_dir) if args.bin_dir else build()
    provider = os.path.join(bin_dir, "terraform-provider-humanitec")
    work = tempfile.mkdtemp(prefix="humanitec-bench-")
    sandbox = None
    try:
        times = handshake_times(provider, client_cert_pem(work), args.launches)
        print("start to handshake line: median %.2f ms, p90 %.2f ms (%d launches, AutoMTLS on)"
              % (statistics.median(times), sorted(times)[int(len(times) * 0.9) - 1], len(times)))
        print("resident memory after GetSchema: %.1f MiB" % rss_after_schema(bin_dir, work))
        print("peak resident memory over a real mTLS exchange (terraform providers schema): %.1f MiB"
              " (median of 5 launches)" % rss_over_mtls_exchange(bin_dir, work))
        found, listed = startup_order_coverage(provider)
        print("binary: %.1f MiB, %d dynamic relocations, %d of the %d functions of "
              "link/startup-order.txt in it" % (os.path.getsize(provider) / 2**20, relocations(provider), found, listed))

        token = "bench-token"
        sandbox = subprocess.Popen([os.path.join(bin_dir, "humanitec-sandbox"), "--token", token],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = sandbox.stdout.readline().strip()
        env = tf_env(work, bin_dir)
        header = ('terraform {\n  required_providers {\n    humanitec = { source = "container-runner/humanitec" }\n  }\n}\n'
                  'provider "humanitec" {\n  org_id = "bench"\n  token = "%s"\n  api_prefix = "%s"\n}\n' % (token, url))
        runner_config_resources = '''
resource "humanitec_runner_config" "bench" {
  count = %d
  id    = "runner-${count.index}"
  criteria { env_type = "env-${count.index}" }
  cluster {
    cluster_type = "gke"
    account      = "org/account"
    name         = "cluster"
    project_id   = "project"
    zone         = "zone"
  }
}
'''
        runner_configs = header + runner_config_resources % args.count
        container_runners = header + CONTAINER_RUNNERS % args.count
        configs = [
            ("terraform_data (plain)", 'resource "terraform_data" "bench" {\n  count = %d\n  input = "runner-${count.index}"\n}\n' % args.count),
            ("terraform_data (runner config data)", RUNNER_CONFIGS_AS_DATA % args.count),
            ("humanitec_runner_config", runner_configs),
            # Why: Terraform launches a plugin about nine times per apply and destroy, whatever it
            # manages; with one runner config among the data, this baseline pays those launches
            # too, so the ratio to it is what each further resource costs.
            ("1 humanitec_runner_config + %d terraform_data (runner config data)" % (args.count - 1),
             header + runner_config_resources % 1 + RUNNER_CONFIGS_AS_DATA % (args.count - 1)),
            ("terraform_data (runner config state)",
             runner_config_state_as_data(work, header, runner_config_resources, env, args.count)),
            ("terraform_data (container runner data)", CONTAINER_RUNNERS_AS_DATA % args.count),
            ("humanitec_container_runner (every attribute)", container_runners),
        ]
        # Why rounds taken in turn: the machines are shared, and a burst of load then hits every
        # configuration alike rather than one of them.
        runs = {name: [] for name, _ in configs}
        for round_ in range(args.rounds):
            for i, (name, main_tf) in enumerate(configs):
                runs[name].append(apply_destroy(work, "r%d-%d" % (round_, i), main_tf, env))
        medians = {name: median_run(runs[name]) for name, _ in configs}
        for name, _ in configs:
            wall, cpu = medians[name]
            # Why the count only where the name has none: the mixed baseline names its own.
            label = name if name[0].isdigit() else "%d %s" % (args.count, name)
            print("apply+destroy of %s: wall %.2f s, CPU %.2f s (median of %d rounds)"
                  % (label, wall, cpu, args.rounds))
        runner_config, container_runner = "humanitec_runner_config", "humanitec_container_runner (every attribute)"
        for ours, base in [(runner_config, "terraform_data (runner config data)"),
                           (runner_config, "1 humanitec_runner_config + %d terraform_data (runner config data)" % (args.count - 1)),
                           (runner_config, "terraform_data (runner config state)"),
                           (runner_config, "terraform_data (plain)"),
                           (container_runner, "terraform_data (container runner data)"),
                           (container_runner, "terraform_data (plain)")]:
            print("ratio %s / %s: wall %.2f, CPU %.2f"
                  % (ours, base, medians[ours][0] / medians[base][0], medians[ours][1] / medians[base][1]))

        # One more apply+destroy each, with every provider launch under GNU time: how much of the
        # command's CPU the provider processes themselves spend (the wrapper's own cost is in
        # the command's total here, not in the ratios above).
        for i, (name, main_tf) in enumerate([configs[2], configs[-1]]):
            cpu_log = os.path.join(work, "provider-cpu-%d.log" % i)
            open(cpu_log, "w").close()
            (_, apply_cpu), (_, destroy_cpu) = apply_destroy(
                work, "cpu-%d" % i, main_tf, tf_env(work, wrapped_bin_dir(bin_dir, work, cpu_log)))
            cpu, launches = provider_cpu(cpu_log)
            print("provider processes' CPU in apply+destroy of %d %s: %.3f s in %d launches, %.1f %% of the command's %.2f s"
                  % (args.count, name, cpu, launches, 100 * cpu / (apply_cpu + destroy_cpu), apply_cpu + destroy_cpu))
    finally:
        if sandbox:
            sandbox.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
