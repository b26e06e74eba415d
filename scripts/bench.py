#!/usr/bin/env python3
"""Benchmarks for the provider, reported as numbers and ratios from one run.

Measures, on the release build:
  1. process start to handshake line (median of N launches, with AutoMTLS on);
  2. resident memory of the provider after Terraform fetched its schema;
  3. `terraform apply` + `terraform destroy` of 100 humanitec_runner_config resources against
     humanitec-sandbox, versus 100 terraform_data resources in the same run (the floor:
     Terraform with no plugin at all);
  4. the same for 100 humanitec_container_runner resources with every attribute set (job with
     pod_template, variables and secret_variables; source with a password; files and
     secret_files; credentials_config; driver_account; criteria; force_delete; timeouts).

Usage: scripts/bench.py [--count 100] [--launches 50]   (builds with cargo --release first)
Nothing here is a pass/fail assertion: the machines are shared and noisy.
"""

import argparse
import json
import os
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


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bins",
                    "-p", "terraform-provider-humanitec", "-p", "humanitec-sandbox"], cwd=REPO, check=True)
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


def timed(cmd, cwd, env):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def apply_destroy(work, name, main_tf, env):
    d = os.path.join(work, name)
    os.makedirs(d)
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(main_tf)
    apply = timed(["terraform", "apply", "-auto-approve", "-input=false", "-no-color"], d, env)
    destroy = timed(["terraform", "destroy", "-auto-approve", "-input=false", "-no-color"], d, env)
    return apply, destroy


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--launches", type=int, default=50)
    args = parser.parse_args()

    bin_dir = build()
    provider = os.path.join(bin_dir, "terraform-provider-humanitec")
    work = tempfile.mkdtemp(prefix="humanitec-bench-")
    sandbox = None
    try:
        times = handshake_times(provider, client_cert_pem(work), args.launches)
        print("start to handshake line: median %.2f ms, p90 %.2f ms (%d launches, AutoMTLS on)"
              % (statistics.median(times), sorted(times)[int(len(times) * 0.9) - 1], len(times)))
        print("resident memory after GetSchema: %.1f MiB" % rss_after_schema(bin_dir, work))

        token = "bench-token"
        sandbox = subprocess.Popen([os.path.join(bin_dir, "humanitec-sandbox"), "--token", token],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = sandbox.stdout.readline().strip()
        env = tf_env(work, bin_dir)
        header = ('terraform {\n  required_providers {\n    humanitec = { source = "container-runner/humanitec" }\n  }\n}\n'
                  'provider "humanitec" {\n  org_id = "bench"\n  token = "%s"\n  api_prefix = "%s"\n}\n' % (token, url))
        runner_configs = header + '''
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
''' % args.count
        container_runners = header + CONTAINER_RUNNERS % args.count
        baseline = 'resource "terraform_data" "bench" {\n  count = %d\n  input = "runner-${count.index}"\n}\n' % args.count
        base_apply, base_destroy = apply_destroy(work, "baseline", baseline, env)
        ours_apply, ours_destroy = apply_destroy(work, "runner_configs", runner_configs, env)
        cr_apply, cr_destroy = apply_destroy(work, "container_runners", container_runners, env)
        base, ours, cr = base_apply + base_destroy, ours_apply + ours_destroy, cr_apply + cr_destroy
        print("apply+destroy of %d terraform_data: %.2f s (apply %.2f, destroy %.2f)" % (args.count, base, base_apply, base_destroy))
        print("apply+destroy of %d humanitec_runner_config: %.2f s (apply %.2f, destroy %.2f)" % (args.count, ours, ours_apply, ours_destroy))
        print("ratio runner_config / terraform_data: %.2f" % (ours / base))
        print("apply+destroy of %d humanitec_container_runner (every attribute): %.2f s (apply %.2f, destroy %.2f)"
              % (args.count, cr, cr_apply, cr_destroy))
        print("ratio container_runner / terraform_data: %.2f" % (cr / base))
    finally:
        if sandbox:
            sandbox.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
