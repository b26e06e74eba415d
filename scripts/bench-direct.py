#!/usr/bin/env python3
"""Benchmarks of direct mode, reported as numbers and ratios from one run.

Direct mode: `humanitec_container_runner` runs its container as a Kubernetes Job on the cluster
of its `humanitec_runner_config` and brings the outputs back. Here the cluster is the test
cluster (`scripts/test-cluster.sh up`: a real Kubernetes v1.34.4 on this machine, found running
or started, and stopped at the end if this script started it), in a namespace of the
benchmark's own, driven by the real `terraform` through dev_overrides, on the release build
(`--debug`: the debug build). A watch on the namespace's Jobs, read by this script, timestamps
every Job event with time.monotonic().

Measures:
  1. `terraform apply` of one container runner (runner image, no source): spawn to the Job's
     ADDED event (median of --runs); and, from TF_LOG_PROVIDER=INFO timestamps, terraform's own
     start to the first provider launch;
  2. the same applies: the first event with the Job's `Complete` condition True to
     `terraform apply` exiting (median of --runs);
  3. the provider's CPU and memory while one run waits on a Job that sleeps --wait-seconds
     (utime+stime and VmRSS from /proc, sampled every second);
  4. the apply of --parallel container runners (RUNNER_SLEEP=5) in one configuration against
     the apply of 1 with the same command, their overlap from `last_run`, and the same pods as
     plain Jobs through `kubectl create` + `kubectl wait` (no Terraform, no provider).

Usage: scripts/bench-direct.py [--runs 5] [--wait-seconds 120] [--parallel 10] [--only 1,2,3,4]
                               [--json] [--debug]
BENCH_KEEP_WORK=1 keeps the work directory (main.tf, terraform's output).
Needs what scripts/test-cluster.sh needs (Go, root, containerd), podman, runc and terraform (it
drives the cluster with the cluster's own kubectl), and the test images (scripts/build-test-images.sh); the helper image is rebuilt from
the provider binary and copied onto the node. Nothing here is a pass/fail assertion: the
machines are shared and noisy.
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTAINERS_CONF = os.path.join(REPO, "scripts", "podman", "containers.conf")

# Why the process id: the cluster is shared with the tests of this checkout, each in a namespace
# of its own.
NAMESPACE = "bench-direct-%d" % os.getpid()
RUNNER_SA = "runner-job"
RUNNER_IMAGE = "localhost/test-images/runner:1"
HELPER_IMAGE = "localhost/test-images/helper:1"
# Why a tag of our own: the podman image store is shared with every checkout on the machine and
# their tests retag helper:1 at start; the benchmark's runs must keep the release build's helper.
BENCH_HELPER = "localhost/test-images/helper:bench-direct"
PROVIDER_NAME = "terraform-provider-humanitec"
PARALLEL_SLEEP = 5

# The namespace, service accounts and RBAC of the tests, and the cluster-admin identity whose
# token the Job watch sends (the test cluster's admin kubeconfig holds a client certificate): the
# test support's own files.
SUPPORT = os.path.join(REPO, "tests", "integration", "support")
with open(os.path.join(SUPPORT, "runs-namespace.yaml")) as f:
    SETUP = f.read().replace("name: runs", "name: " + NAMESPACE).replace("namespace: runs", "namespace: " + NAMESPACE)
with open(os.path.join(SUPPORT, "test-admin.yaml")) as f:
    ADMIN = f.read()
TEST_CLUSTER = os.path.join(REPO, "scripts", "test-cluster.sh")


def note(message):
    print("bench-direct: " + message, file=sys.stderr, flush=True)


def podman_env():
    return dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)


def build(debug):
    profile = [] if debug else ["--release"]
    subprocess.run(["cargo", "build", *profile, "--quiet", "--bin", PROVIDER_NAME], cwd=REPO, check=True)
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO))
    return os.path.join(meta["target_directory"], "debug" if debug else "release")


def podman(*args, check=True):
    return subprocess.run(["podman", *args], env=podman_env(), check=check, capture_output=True, text=True)


def image_id(ref):
    out = podman("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def helper_tags():
    """Every tag of the helper repository now, with its image id."""
    out = podman("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "localhost/test-images/helper")
    tags = []
    for line in out.stdout.splitlines():
        ref, _, ident = line.partition(" ")
        if not ref.endswith(":<none>") and not ref.endswith(":bench-direct"):
            tags.append((ref, ident.strip()))
    return tags


def build_images(provider):
    """Builds the helper image from `provider` (and the other test images if the runner image is
    missing) and tags it BENCH_HELPER; gives the helper tags that existed before back to their
    images, so that other checkouts' tests sharing the image store are not disturbed."""
    before = helper_tags()
    keep = []
    for n, ident in enumerate(sorted({i for _, i in before})):
        podman("tag", ident, "localhost/test-images/helper:bench-keep-%d" % n)
        keep.append("localhost/test-images/helper:bench-keep-%d" % n)
    try:
        args = ["--helper-binary", provider]
        if image_id(RUNNER_IMAGE) is None:
            note("%s is missing: running scripts/build-test-images.sh" % RUNNER_IMAGE)
        else:
            args.insert(0, "--helper-only")
        out = subprocess.run(["bash", os.path.join(REPO, "scripts", "build-test-images.sh"), *args],
                             cwd=REPO, env=podman_env(), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("scripts/build-test-images.sh %s failed:\n%s%s" % (" ".join(args), out.stdout, out.stderr))
        built = image_id(HELPER_IMAGE)
        if built is None:
            raise RuntimeError("scripts/build-test-images.sh built no %s:\n%s" % (HELPER_IMAGE, out.stdout))
        previous = image_id(BENCH_HELPER)
        podman("tag", built, BENCH_HELPER)
        if previous and previous != built:
            tags = podman("image", "inspect", "--format", "{{len .RepoTags}}", previous, check=False).stdout.strip()
            if tags == "0":
                podman("rmi", previous, check=False)  # our own previous build, now untagged
    finally:
        for ref, ident in before:
            podman("tag", ident, ref, check=False)
        for ref in keep:
            # Why the name twice: `podman untag IMAGE` without names removes every tag.
            podman("untag", ref, ref, check=False)
    return BENCH_HELPER


def test_cluster(*args):
    out = subprocess.run(["bash", TEST_CLUSTER, *args], cwd=REPO, env=podman_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("scripts/test-cluster.sh %s failed:\n%s" % (" ".join(args), out.stderr[-3000:]))
    return out.stdout


def cluster_kubectl():
    """The running test cluster's own kubectl (of its release, built next to it), so the
    benchmark needs no kubectl on the machine."""
    for line in test_cluster("env").splitlines():
        if line.startswith("KUBECTL="):
            return line.split("=", 1)[1]
    raise RuntimeError("scripts/test-cluster.sh env names no KUBECTL")


def start_cluster(helper):
    """Starts the test cluster (or finds it running) and copies the helper image onto its node;
    returns its admin kubeconfig and whether this call started it."""
    running = subprocess.run(["bash", TEST_CLUSTER, "env"], cwd=REPO, capture_output=True).returncode == 0
    kubeconfig = test_cluster("up").strip().splitlines()[-1]
    test_cluster("images", helper, RUNNER_IMAGE)
    return kubeconfig, not running


def read_kubeconfig(path):
    """(server URL, CA PEM) of the test cluster's kubeconfig, and a token of a cluster admin."""
    fields = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition(": ")
            if key in ("server", "certificate-authority-data"):
                fields[key] = value.strip()
    kubectl = [cluster_kubectl(), "--kubeconfig", path]
    subprocess.run([*kubectl, "apply", "-f", "-"], input=ADMIN, text=True, check=True, capture_output=True)
    token = subprocess.run([*kubectl, "create", "token", "test-admin", "-n", "kube-system", "--duration=2h"],
                           text=True, check=True, capture_output=True).stdout.strip()
    return fields["server"], base64.b64decode(fields["certificate-authority-data"]).decode(), token


class Event:
    __slots__ = ("t", "type", "name", "obj")

    def __init__(self, t, type_, name, obj):
        self.t, self.type, self.name, self.obj = t, type_, name, obj


def complete(obj):
    return any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


class JobWatch(threading.Thread):
    """An HTTP watch of the Jobs in one namespace; every event is kept with the monotonic time of
    its arrival. Resumes from the last resourceVersion when the stream ends."""

    def __init__(self, server, ca_pem, token, namespace):
        super().__init__(daemon=True)
        url = urllib.parse.urlsplit(server)
        self.host, self.port = url.hostname, url.port or 443
        self.context = ssl.create_default_context(cadata=ca_pem)
        self.token = token
        self.path = "/apis/batch/v1/namespaces/%s/jobs" % namespace
        self.events = []
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.stopping = False
        self.conn = None
        self.error = None

    def run(self):
        version = None
        while not self.stopping:
            try:
                conn = http.client.HTTPSConnection(self.host, self.port, context=self.context)
                query = "watch=true&allowWatchBookmarks=true"
                if version:
                    query += "&resourceVersion=" + version
                conn.request("GET", self.path + "?" + query,
                             headers={"Authorization": "Bearer " + self.token, "Accept": "application/json"})
                resp = conn.getresponse()
                if resp.status != 200:
                    raise RuntimeError("watch answered %d: %s" % (resp.status, resp.read()[:500]))
                self.conn = conn
                self.ready.set()
                while True:
                    line = resp.readline()
                    t = time.monotonic()
                    if not line:
                        break
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = None  # 410 Expired: start again from the current state
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") == "BOOKMARK":
                        continue
                    with self.cond:
                        self.events.append(Event(t, event.get("type"), obj["metadata"].get("name", ""), obj))
                        self.cond.notify_all()
                conn.close()
            except Exception as e:  # noqa: BLE001 -- a benchmark helper: retry, remember the cause
                if self.stopping:
                    return
                self.error = e
                time.sleep(0.2)

    def stop(self):
        self.stopping = True
        if self.conn is not None and self.conn.sock is not None:
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def first(self, pred):
        with self.cond:
            return next((e for e in self.events if pred(e)), None)

    def all(self, pred):
        with self.cond:
            return [e for e in self.events if pred(e)]

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = next((e for e in self.events if pred(e)), None)
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self.cond.wait(left)


def of_run(prefix):
    """Events of the create Job of the container runner whose id is `prefix`."""
    return lambda e: e.name.startswith(prefix + "-create-")


class Bench:
    def __init__(self, bin_dir, work, kubeconfig, helper, watch):
        self.bin_dir, self.work, self.kubeconfig, self.helper, self.watch = bin_dir, work, kubeconfig, helper, watch
        self.kubectl_program = cluster_kubectl()
        rc = os.path.join(work, "dev.tfrc")
        with open(rc, "w") as f:
            f.write('provider_installation {\n  dev_overrides {\n    "container-runner/humanitec" = "%s"\n  }\n'
                    '  direct {}\n}\n' % bin_dir)
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=rc, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
        for var in ("TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_CORE", "TF_LOG_PATH"):
            self.env.pop(var, None)

    # -- HCL, copied from tests/integration/direct/resources.rs and support/cluster.rs --------------------

    def header(self):
        return ('terraform {\n  required_providers {\n    humanitec = { source = "container-runner/humanitec" }\n  }\n}\n\n'
                'provider "humanitec" {\n  mode = "direct"\n}\n\n'
                'resource "humanitec_runner_config" "cluster" {\n'
                '  id = "config-container-runner"\n'
                '  cluster {\n'
                '    cluster_type = "gke"\n'
                '    name         = "test-cluster"\n'
                '    project_id   = "local"\n'
                '    zone         = "local"\n'
                '  }\n'
                '  kubernetes {\n'
                '    config_path = "%s"\n'
                '  }\n'
                '  helper_image = "%s"\n'
                '}\n' % (self.kubeconfig, self.helper))

    @staticmethod
    def runner(name, rid, sleep=None, count=None):
        variables = '\n    variables       = { RUNNER_SLEEP = "%d" }' % sleep if sleep is not None else ""
        counted = "\n  count         = %d" % count if count is not None else ""
        return ('\nresource "humanitec_container_runner" "%s" {%s\n'
                '  id            = "%s"\n'
                '  type          = "s3"\n'
                '  runner_config = humanitec_runner_config.cluster\n'
                '  job {\n'
                '    image           = "%s"\n'
                '    namespace       = "%s"\n'
                '    service_account = "%s"%s\n'
                '  }\n'
                '}\n' % (name, counted, rid, RUNNER_IMAGE, NAMESPACE, RUNNER_SA, variables))

    # -- processes ---------------------------------------------------------------------------

    def workdir(self, name, main_tf):
        d = os.path.join(self.work, name)
        os.makedirs(d)
        with open(os.path.join(d, "main.tf"), "w") as f:
            f.write(main_tf)
        return d

    def spawn_apply(self, d, extra_env=None, extra_args=()):
        out = open(os.path.join(d, "apply.out"), "w")
        err = open(os.path.join(d, "apply.err"), "w")
        env = dict(self.env, **(extra_env or {}))
        wall = time.time()
        start = time.monotonic()
        proc = subprocess.Popen(["terraform", "apply", "-auto-approve", "-input=false", "-no-color", *extra_args],
                                cwd=d, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        return proc, start, wall

    @staticmethod
    def finish(proc, d):
        code = proc.wait()
        end = time.monotonic()
        if code != 0:
            with open(os.path.join(d, "apply.out")) as o, open(os.path.join(d, "apply.err")) as e:
                raise RuntimeError("terraform apply in %s exited %d:\n%s\n%s" % (d, code, o.read()[-3000:], e.read()[-3000:]))
        return end

    def kubectl(self, args, stdin=None):
        out = subprocess.run([self.kubectl_program, "--kubeconfig", self.kubeconfig, *args], input=stdin, text=True, capture_output=True)
        if out.returncode != 0:
            raise RuntimeError("kubectl %s failed: %s" % (" ".join(args[:2]), out.stderr.strip()))
        return out.stdout

    # -- 1 and 2 -----------------------------------------------------------------------------

    def latency(self, runs):
        results = []
        for i in range(runs):
            rid = "lat-%d" % i
            d = self.workdir(rid, self.header() + self.runner("bench", rid))
            proc, start, wall = self.spawn_apply(d, {"TF_LOG_PROVIDER": "INFO"})
            end = self.finish(proc, d)
            created = self.watch.wait(lambda e, r=rid: of_run(r)(e) and e.type == "ADDED", 10)
            done = self.watch.wait(lambda e, r=rid: of_run(r)(e) and complete(e.obj), 10)
            deleted = self.watch.wait(lambda e, r=rid: of_run(r)(e) and e.type == "DELETED", 0)
            first_launch, launches = provider_launches(os.path.join(d, "apply.err"))
            run = {
                "apply_seconds": end - start,
                "spawn_to_job_created": created.t - start if created else None,
                "job_created_to_complete": done.t - created.t if done and created else None,
                "complete_to_exit": end - done.t if done else None,
                "complete_to_job_deleted": deleted.t - done.t if deleted and done else None,
                "job_deleted_to_exit": end - deleted.t if deleted else None,
                "spawn_to_first_provider_launch": first_launch - wall if first_launch else None,
                "provider_launches": launches,
            }
            results.append(run)
            note("latency run %d/%d: %s" % (i + 1, runs, ", ".join(
                "%s %s" % (k, "%.3f" % v if isinstance(v, float) else v) for k, v in run.items())))
        summary = {}
        for key in results[0]:
            values = [r[key] for r in results if r[key] is not None]
            summary[key] = statistics.median(values) if values else None
        summary["missing_complete_events"] = sum(1 for r in results if r["complete_to_exit"] is None)
        return {"runs": results, "median": summary}

    # -- 3 -----------------------------------------------------------------------------------

    def cpu_during_wait(self, seconds):
        rid = "cpu"
        d = self.workdir(rid, self.header() + self.runner("bench", rid, sleep=seconds))
        proc, start, _ = self.spawn_apply(d)
        created = self.watch.wait(lambda e: of_run(rid)(e) and e.type == "ADDED", 300)
        if created is None:
            proc.kill()
            raise RuntimeError("no Job appeared for the CPU run")
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline:
            pid = provider_child(proc.pid)
            if pid is None:
                time.sleep(0.05)
        if pid is None:
            proc.kill()
            raise RuntimeError("no %s child of terraform (pid %d) while the Job ran" % (PROVIDER_NAME, proc.pid))
        samples = []
        tick = os.sysconf("SC_CLK_TCK")
        t0 = time.monotonic()
        k = 0
        while True:
            sample = read_proc(pid)
            if sample is None:
                break
            samples.append((time.monotonic(), sample[0] / tick, sample[1]))
            if self.watch.first(lambda e: of_run(rid)(e) and complete(e.obj)):
                break
            k += 1
            time.sleep(max(0.0, t0 + k - time.monotonic()))
        end = self.finish(proc, d)
        done = self.watch.first(lambda e: of_run(rid)(e) and complete(e.obj))
        (ta, ca, _), (tb, cb, _) = samples[0], samples[-1]
        rss = [s[2] / 1024 for s in samples]
        return {
            "wait_seconds": seconds,
            "job_created_to_complete": done.t - created.t if done else None,
            "sampled_seconds": tb - ta,
            "samples": len(samples),
            "cpu_seconds": cb - ca,
            "cpu_percent_of_one_core": 100 * (cb - ca) / (tb - ta) if tb > ta else None,
            "cpu_seconds_before_job": ca,
            "rss_peak_mib": max(rss),
            "rss_median_mib": statistics.median(rss),
            "apply_seconds": end - start,
        }

    # -- 4 -----------------------------------------------------------------------------------

    def parallel(self, count):
        args = ["-parallelism=%d" % max(10, count)]
        timings = {}
        for name, n in (("one", 1), ("many", count)):
            d = self.workdir(name, self.header() + self.runner("bench", "%s-${count.index}" % name, sleep=PARALLEL_SLEEP, count=n))
            proc, start, _ = self.spawn_apply(d, extra_args=args)
            timings[name] = self.finish(proc, d) - start
        state = json.loads(subprocess.run(["terraform", "show", "-json", "-no-color"], cwd=os.path.join(self.work, "many"),
                                          env=self.env, check=True, capture_output=True, text=True).stdout)
        runs = [r["values"]["last_run"] for r in state["values"]["root_module"]["resources"]
                if r["type"] == "humanitec_container_runner"]
        starts = [parse_time(r["started_at"]) for r in runs]
        finishes = [parse_time(r["finished_at"]) for r in runs]
        created = [e.t for e in self.watch.all(lambda e: e.name.startswith("many-") and e.type == "ADDED")]
        in_cluster = self.cluster_seconds("many-")
        baseline = {n: self.kubectl_jobs("base%d" % n, n) for n in sorted({1, count})}
        baseline_in_cluster = self.cluster_seconds("base%d-" % count)
        return {
            "count": count,
            "sleep_seconds": PARALLEL_SLEEP,
            "apply_one_seconds": timings["one"],
            "apply_many_seconds": timings["many"],
            "ratio_many_to_one": timings["many"] / timings["one"],
            "last_run_max_start_to_min_finish_seconds": min(finishes) - max(starts),
            "last_run_start_spread_seconds": max(starts) - min(starts),
            "last_run_first_start_to_last_finish_seconds": max(finishes) - min(starts),
            "runs_in_state": len(runs),
            "jobs_created_spread_seconds": max(created) - min(created) if created else None,
            "jobs_first_created_to_last_complete_seconds": in_cluster,
            "kubectl_one_seconds": baseline[1],
            "kubectl_many_seconds": baseline[count],
            "kubectl_jobs_first_created_to_last_complete_seconds": baseline_in_cluster,
            "ratio_apply_to_kubectl_one": timings["one"] / baseline[1],
            "ratio_apply_to_kubectl_many": timings["many"] / baseline[count],
        }

    def cluster_seconds(self, prefix):
        """From the watch: the first ADDED of the Jobs named `prefix`... to the last of their
        first events with Complete True, the time the cluster itself spent."""
        events = self.watch.all(lambda e: e.name.startswith(prefix))
        added = [e.t for e in events if e.type == "ADDED"]
        done = {}
        for e in events:
            if complete(e.obj):
                done.setdefault(e.name, e.t)
        return max(done.values()) - min(added) if added and done else None

    def kubectl_jobs(self, prefix, n):
        """Creates `n` Jobs shaped like the provider's (helper-image init container and native
        sidecar, runner main container, the same security settings) with kubectl, waits for them
        to complete; returns the seconds from create to the end of the wait."""
        names = ["%s-%d" % (prefix, i) for i in range(n)]
        # A stream of JSON documents (kubectl has no schema for a List to validate against).
        stream = "\n".join(json.dumps(baseline_job(name, self.helper, PARALLEL_SLEEP)) for name in names)
        start = time.monotonic()
        self.kubectl(["create", "-f", "-"], stream)
        self.kubectl(["wait", "-n", NAMESPACE, "--for=condition=complete", "--timeout=600s", *("job/" + x for x in names)])
        took = time.monotonic() - start
        self.kubectl(["delete", "-n", NAMESPACE, "--cascade=foreground", "--wait=false", *("job/" + x for x in names)])
        return took


def baseline_job(name, helper, sleep):
    results = "/humanitec/results"
    shared = "/home/runneruser/workspace"
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"}}
    mounts = [{"name": "workspace", "mountPath": shared}, {"name": "results", "mountPath": results}]
    env = [{"name": "ACTION", "value": "create"}, {"name": "SCRIPTS_DIRECTORY", "value": shared},
           {"name": "OUTPUTS_FILE", "value": results + "/outputs.json"},
           {"name": "SECRET_OUTPUTS_FILE", "value": results + "/secret-outputs.json"},
           {"name": "ERROR_FILE", "value": results + "/error.txt"},
           {"name": "RUNNER_SLEEP", "value": str(sleep)}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "serviceAccountName": RUNNER_SA,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 120,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "results", "emptyDir": {}}],
                "initContainers": [
                    {"name": "prepare", "image": helper, "command": ["sh", "-c", "true"], "volumeMounts": mounts,
                     "securityContext": security},
                    {"name": "collect", "image": helper, "restartPolicy": "Always",
                     "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
                     "volumeMounts": [mounts[1]], "securityContext": security},
                ],
                "containers": [{"name": "main", "image": RUNNER_IMAGE, "env": env, "volumeMounts": mounts,
                                "securityContext": security}],
            }},
        },
    }


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))\s+\[")


def parse_time(text):
    """An RFC 3339 / hclog time as seconds since the epoch."""
    text = text.strip().replace("Z", "+00:00")
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)
    return datetime.datetime.fromisoformat(text).timestamp()


def provider_launches(stderr_path):
    """From terraform's TF_LOG_PROVIDER=INFO stderr: the epoch time of the first plugin launch
    (go-plugin logs "configuring client automatic mTLS" just before it starts the process) and how
    many provider processes ran."""
    first, launches = None, 0
    with open(stderr_path, errors="replace") as f:
        for line in f:
            if "provider: configuring client automatic mTLS" in line:
                launches += 1
                m = LOG_TIME.match(line)
                if m and first is None:
                    first = parse_time(m.group(1))
    return first, launches


def provider_child(parent):
    """The newest live child of `parent` that is the provider binary."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            exe = os.path.basename(os.readlink("/proc/%s/exe" % entry))
        except OSError:
            continue
        if int(rest[1]) == parent and exe == PROVIDER_NAME and rest[0] != "Z":
            found.append((int(rest[19]), int(entry)))
    return max(found)[1] if found else None


def read_proc(pid):
    """(utime+stime in clock ticks, VmRSS in KiB) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/status" % pid) as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), None)
    except OSError:
        return None
    if rest[0] == "Z" or rss is None:
        return None
    return int(rest[11]) + int(rest[12]), rss


def fmt(value, unit="s", digits=2):
    return "n/a" if value is None else ("%.*f %s" % (digits, value, unit)).strip()


def report(results, args):
    lines = []
    lat = results.get("latency")
    if lat:
        m = lat["median"]
        if "1" in args.only:
            lines.append("1. apply spawn to Job created: median %s (%d runs; whole apply %s)"
                         % (fmt(m["spawn_to_job_created"]), len(lat["runs"]), fmt(m["apply_seconds"])))
            lines.append("   terraform start to first provider launch (TF_LOG_PROVIDER=INFO): median %s; provider processes per apply: %s"
                         % (fmt(m["spawn_to_first_provider_launch"]), fmt(m["provider_launches"], "", 0)))
        if "2" in args.only:
            lines.append("2. Job Complete condition to apply exit: median %s (%d runs; of which Complete to Job deleted %s, Job deleted to exit %s)"
                         % (fmt(m["complete_to_exit"]), len(lat["runs"]), fmt(m["complete_to_job_deleted"]), fmt(m["job_deleted_to_exit"])))
            lines.append("   Job created to Complete (the pod's own time): median %s" % fmt(m["job_created_to_complete"]))
            if m["missing_complete_events"]:
                lines.append("   (%d runs had no Complete event in the watch)" % m["missing_complete_events"])
    cpu = results.get("cpu")
    if cpu:
        lines.append("3. provider during a %d s wait: %s CPU over %s sampled (%s of one core, %d samples); RSS peak %s, median %s"
                     % (cpu["wait_seconds"], fmt(cpu["cpu_seconds"], "s", 3), fmt(cpu["sampled_seconds"], "s", 1),
                        fmt(cpu["cpu_percent_of_one_core"], "%", 2), cpu["samples"], fmt(cpu["rss_peak_mib"], "MiB", 1),
                        fmt(cpu["rss_median_mib"], "MiB", 1)))
        lines.append("   (CPU the provider had used before the Job appeared: %s; whole apply %s)"
                     % (fmt(cpu["cpu_seconds_before_job"], "s", 3), fmt(cpu["apply_seconds"])))
    par = results.get("parallel")
    if par:
        n = par["count"]
        lines.append("4. apply of %d container runners (RUNNER_SLEEP=%d): %s; of 1: %s; ratio %d/1: %.2f"
                     % (n, par["sleep_seconds"], fmt(par["apply_many_seconds"]), fmt(par["apply_one_seconds"]), n, par["ratio_many_to_one"]))
        lines.append("   last_run overlap (min finish - max start): %s, starts spread over %s, first start to last finish %s; Job creations spread over %s"
                     % (fmt(par["last_run_max_start_to_min_finish_seconds"], "s", 0), fmt(par["last_run_start_spread_seconds"], "s", 0),
                        fmt(par["last_run_first_start_to_last_finish_seconds"], "s", 0), fmt(par["jobs_created_spread_seconds"])))
        lines.append("   kubectl create + wait of the same pods: %d: %s, 1: %s; ratio apply/kubectl: %d: %.2f, 1: %.2f"
                     % (n, fmt(par["kubectl_many_seconds"]), fmt(par["kubectl_one_seconds"]), n,
                        par["ratio_apply_to_kubectl_many"], par["ratio_apply_to_kubectl_one"]))
        lines.append("   first Job created to last Job Complete (watch): %d by terraform %s, %d by kubectl %s"
                     % (n, fmt(par["jobs_first_created_to_last_complete_seconds"]), n,
                        fmt(par["kubectl_jobs_first_created_to_last_complete_seconds"])))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="applies for benchmarks 1 and 2 (default 5)")
    parser.add_argument("--wait-seconds", type=int, default=120, help="RUNNER_SLEEP of benchmark 3 (default 120)")
    parser.add_argument("--parallel", type=int, default=10, help="container runners of benchmark 4 (default 10)")
    parser.add_argument("--only", default="1,2,3,4", help="which benchmarks, e.g. 1,3 (default all)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the report")
    parser.add_argument("--debug", action="store_true", help="the debug build instead of the release build")
    args = parser.parse_args()
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    if not args.only <= {"1", "2", "3", "4"}:
        parser.error("--only takes numbers among 1,2,3,4")

    note("building the %s provider binary" % ("debug" if args.debug else "release"))
    bin_dir = build(args.debug)
    provider = os.path.join(bin_dir, PROVIDER_NAME)
    note("building the helper image from %s" % provider)
    helper = build_images(provider)
    work = tempfile.mkdtemp(prefix="humanitec-bench-direct-")
    watch = kubeconfig = None
    started = False
    results = {}
    try:
        note("starting the test cluster (scripts/test-cluster.sh up; the first build takes about 10 minutes)")
        kubeconfig, started = start_cluster(helper)
        server, ca_pem, token = read_kubeconfig(kubeconfig)
        bench = Bench(bin_dir, work, kubeconfig, helper, None)
        bench.kubectl(["apply", "-f", "-"], SETUP)
        watch = JobWatch(server, ca_pem, token, NAMESPACE)
        watch.start()
        if not watch.ready.wait(30):
            raise RuntimeError("the Job watch did not start: %s" % watch.error)
        bench.watch = watch
        note("warming up: one Job of the same images through kubectl")
        bench.kubectl_jobs("warmup", 1)
        if args.only & {"1", "2"}:
            note("benchmarks 1 and 2: %d applies of one container runner" % args.runs)
            results["latency"] = bench.latency(args.runs)
        if "3" in args.only:
            note("benchmark 3: one run that waits %d s" % args.wait_seconds)
            results["cpu"] = bench.cpu_during_wait(args.wait_seconds)
        if "4" in args.only:
            note("benchmark 4: %d container runners in parallel" % args.parallel)
            results["parallel"] = bench.parallel(args.parallel)
        version = subprocess.run(["terraform", "version", "-json"], capture_output=True, text=True, env=bench.env)
        results["environment"] = {"cpus": os.cpu_count(), "helper_image": helper, "helper_image_id": image_id(helper),
                                  "terraform": json.loads(version.stdout).get("terraform_version")}
    finally:
        if watch:
            watch.stop()
        if kubeconfig:
            subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "delete", "namespace", NAMESPACE, "--wait=false"],
                           capture_output=True)
        if started:
            test_cluster("down")
        if os.environ.get("BENCH_KEEP_WORK"):
            note("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results, args))


if __name__ == "__main__":
    sys.exit(main())
