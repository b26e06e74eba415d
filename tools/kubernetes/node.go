// The test cluster's node: Debian's containerd (with runc and the CNI plugins) and the real
// kubelet of this release, registered with the API server as its own identity
// (system:node:<name>), running every pod on a bridge network of its own.
//
// Several test clusters may run on one machine (several checkouts' tests at once), so
// everything a node makes outside its directory carries the node's slot number N, held by a
// lock in /run/test-cluster for the node's life: the bridge tcluster<N> with pods on
// 10.85.<N>.0/24, the cgroup /test-cluster-<N>, the nat chain TEST-CLUSTER-<N>. cleanNode
// removes all of it, also after a crash (`kube node-clean`).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// The pause image every pod's sandbox runs; scripts/test-cluster.sh builds and imports it, as
// there is no registry to pull registry.k8s.io/pause from.
const pauseImage = "localhost/test-cluster/pause:1"

// node is where a node's files are and what it made.
type node struct {
	dir    string // <cluster dir>/node
	slot   int
	lock   *os.File
	name   string
	ip     string
	port   int
	socket string
}

func (n *node) bridge() string   { return fmt.Sprintf("tcluster%d", n.slot) }
func (n *node) subnet() string   { return fmt.Sprintf("10.85.%d.0/24", n.slot) }
func (n *node) cgroup() string   { return fmt.Sprintf("/test-cluster-%d", n.slot) }
func (n *node) chain() string    { return fmt.Sprintf("TEST-CLUSTER-%d", n.slot) }
func (n *node) endpoint() string { return "unix://" + n.socket }

// hostIP is the address of this machine that pods and the API server reach the node at: the
// source address of its default route. Why not 127.0.0.1: a pod's loopback is its own, and the
// kubelet refuses a loopback node IP ("nodeIP can't be loopback address").
func hostIP() (string, error) {
	// Why UDP: connecting a UDP socket only picks the route; nothing is sent.
	c, err := net.Dial("udp4", "192.0.2.1:9")
	if err != nil {
		return "", fmt.Errorf("finding this machine's address: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// claimSlot takes the first free slot, holding its lock until the process ends.
func claimSlot() (int, *os.File, error) {
	if err := os.MkdirAll("/run/test-cluster", 0o755); err != nil {
		return 0, nil, err
	}
	for slot := range 250 {
		f, err := os.OpenFile(fmt.Sprintf("/run/test-cluster/slot-%d.lock", slot), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return 0, nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return slot, f, nil
	}
	return 0, nil, errors.New("no free node slot in /run/test-cluster")
}

// startNode starts containerd and the kubelet for a node called name, whose kubelet serves on
// port; children are appended through start. The caller waits for the Node to be Ready.
func startNode(clusterDir, name, ip string, port int, p *pki, apiPort int, start func(string, string, ...string) (*child, error)) (*node, *child, error) {
	slot, lock, err := claimSlot()
	if err != nil {
		return nil, nil, err
	}
	n := &node{dir: filepath.Join(clusterDir, "node"), slot: slot, lock: lock, name: name, ip: ip, port: port}
	n.socket = filepath.Join(n.dir, "containerd", "containerd.sock")
	// A node that crashed in this slot may have left its chain, bridge and cgroups.
	cleanHost(n)
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return nil, nil, err
		}
	}
	if err := write(filepath.Join(n.dir, "slot"), []byte(strconv.Itoa(slot)+"\n")); err != nil {
		return nil, nil, err
	}

	containerdConfig := filepath.Join(n.dir, "containerd.toml")
	if err := write(containerdConfig, []byte(fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  # Why: this machine's processes lack CAP_SYS_RESOURCE, so they cannot lower an
  # oom_score_adj, and the kubelet asks -998 for every pod sandbox (runc then fails with "can't
  # get final child's PID from pipe: EOF"). This keeps each at containerd's own score, as for
  # containerd in a user namespace.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[5]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
`, filepath.Join(n.dir, "containerd", "root"), filepath.Join(n.dir, "containerd", "state"), n.socket,
		pauseImage, filepath.Join(n.dir, "containerd", "runc"), filepath.Join(n.dir, "cni", "net.d")))); err != nil {
		return nil, nil, err
	}
	// The pod network: a bridge with this node's subnet, pods masqueraded when they leave it.
	if err := write(filepath.Join(n.dir, "cni", "net.d", "10-test-cluster.conflist"), []byte(fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "test-cluster-%[1]d",
  "plugins": [
    {"type": "bridge", "bridge": %[2]q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %[3]q,
              "ranges": [[{"subnet": %[4]q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, slot, n.bridge(), filepath.Join(n.dir, "cni", "ipam"), n.subnet()))); err != nil {
		return nil, nil, err
	}
	containerd, err := start("containerd", "/usr/bin/containerd", "--config", containerdConfig)
	if err != nil {
		return nil, nil, err
	}
	if err := waitRuntime(n.endpoint(), 30*time.Second); err != nil {
		return n, containerd, err
	}

	// Why a DNAT rule: pods reach the API server as the `kubernetes` Service, 10.0.0.1:443, which
	// kube-proxy would map to the API server. kube-proxy's chains are one set per machine and
	// would clash between test clusters, so this one rule, for this node's pods only, stands in.
	if err := iptables("-t", "nat", "-N", n.chain()); err != nil {
		return n, containerd, err
	}
	if err := iptables("-t", "nat", "-A", n.chain(), "-d", "10.0.0.1/32", "-p", "tcp", "--dport", "443",
		"-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", ip, apiPort)); err != nil {
		return n, containerd, err
	}
	if err := iptables("-t", "nat", "-I", "PREROUTING", "-s", n.subnet(), "-j", n.chain()); err != nil {
		return n, containerd, err
	}

	if err := makeCgroup(n.cgroup()); err != nil {
		return n, containerd, err
	}

	kubeletConfig := filepath.Join(n.dir, "kubelet.yaml")
	if err := write(kubeletConfig, []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  x509: {clientCAFile: %[1]q}
  webhook: {enabled: true}
  anonymous: {enabled: false}
authorization: {mode: Webhook}
address: %[2]q
port: %[3]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: %[4]q
tlsPrivateKeyFile: %[5]q
containerRuntimeEndpoint: %[6]q
cgroupDriver: cgroupfs
cgroupRoot: %[7]q
# Why: this machine has cgroup v1, which 1.34 still runs on (with a CgroupV1 warning Event).
failCgroupV1: false
failSwapOn: false
podLogsDir: %[8]q
clusterDomain: cluster.local
# Why the machine's resolver: there is no cluster DNS; without one the kubelet warns
# (MissingClusterDNS) on every pod.
clusterDNS: [%[9]q]
# Why: the kubelet's own firewall chains (KUBE-FIREWALL) are one set per machine.
makeIPTablesUtilChains: false
# Why: the images are imported, not pulled; garbage collection or disk-pressure eviction would
# remove them or the pods on a busy test machine.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
`, p.caCert, ip, port, p.nodeServing, p.nodeServingKey, n.endpoint(), n.cgroup(),
		filepath.Join(n.dir, "pod-logs"), resolver()))); err != nil {
		return n, containerd, err
	}
	self, err := os.Executable()
	if err != nil {
		return n, containerd, err
	}
	if _, err := start("kubelet", self, "kubelet",
		"--config="+kubeletConfig,
		"--kubeconfig="+p.node,
		"--root-dir="+filepath.Join(n.dir, "kubelet"),
		"--hostname-override="+name,
		"--node-ip="+ip,
	); err != nil {
		return n, containerd, err
	}
	return n, containerd, nil
}

// makeCgroup makes the node's cgroup in every hierarchy, as the kubelet wants its cgroupRoot to
// exist; a cpuset cgroup starts without CPUs or memory nodes, so it gets its parent's.
func makeCgroup(name string) error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	for _, procs := range hierarchies {
		parent := filepath.Dir(procs)
		dir := filepath.Join(parent, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("making the node's cgroup: %w", err)
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if value, err := os.ReadFile(filepath.Join(parent, file)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, file), value, 0o644); err != nil {
					return fmt.Errorf("making the node's cgroup: %w", err)
				}
			}
		}
	}
	return nil
}

// resolver is the first nameserver of /etc/resolv.conf that pods can reach (not loopback).
func resolver() string {
	f, err := os.Open("/etc/resolv.conf")
	if err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) == 2 && fields[0] == "nameserver" {
				if ip := net.ParseIP(fields[1]); ip != nil && ip.To4() != nil && !ip.IsLoopback() {
					return fields[1]
				}
			}
		}
	}
	return "10.0.0.10"
}

func waitRuntime(endpoint string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		// Why a plain connection first: the CRI client logs every refused dial.
		var rs interface {
			Version(context.Context, string) (*runtimeapi.VersionResponse, error)
		}
		conn, err := net.Dial("unix", strings.TrimPrefix(endpoint, "unix://"))
		if err == nil {
			conn.Close()
			rs, err = remote.NewRemoteRuntimeService(endpoint, 2*time.Second, nil, nil)
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = rs.Version(ctx, "v1")
			cancel()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer on %s: %w", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// waitNodeReady waits until the Node reports Ready.
func waitNodeReady(ctx context.Context, client kubernetes.Interface, name string) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s: %s: %s", name, c.Reason, c.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}

// stopSandboxes stops and removes every pod sandbox through the CRI, as the kubelet would, so
// that their containers, network namespaces and addresses go too.
func stopSandboxes(endpoint string) {
	rs, err := remote.NewRemoteRuntimeService(endpoint, 5*time.Second, nil, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		return
	}
	for _, s := range sandboxes {
		_ = rs.StopPodSandbox(ctx, s.Id)
		_ = rs.RemovePodSandbox(ctx, s.Id)
	}
}

// cleanHost removes what a node of this slot made outside its directory: the nat chain, the
// bridge, and the cgroups with whatever still runs in them.
func cleanHost(n *node) {
	_ = iptables("-t", "nat", "-D", "PREROUTING", "-s", n.subnet(), "-j", n.chain())
	_ = iptables("-t", "nat", "-F", n.chain())
	_ = iptables("-t", "nat", "-X", n.chain())
	_ = exec.Command("ip", "link", "delete", n.bridge()).Run()
	controllers, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, controller := range controllers {
		root := filepath.Join(controller, n.cgroup())
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		// Deepest first: a cgroup can only be removed once it has no children.
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			killCgroup(d)
			_ = os.Remove(d)
		}
	}
}

func killCgroup(dir string) {
	for range 50 {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			return
		}
		for _, field := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(field); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopShims kills the containerd shims of this node (they outlive containerd by design),
// removes its log links and unmounts what is still mounted under dir.
func stopShims(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, cmdline := range procs {
		data, err := os.ReadFile(cmdline)
		if err != nil || !strings.Contains(string(data), "containerd-shim") || !strings.Contains(string(data), dir+"/") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(cmdline))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// The kubelet links each container's log into /var/log/containers, whatever its
	// podLogsDir; the links into this node's directory go with it.
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, link := range links {
		if target, err := os.Readlink(link); err == nil && strings.HasPrefix(target, dir+"/") {
			_ = os.Remove(link)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var under []string
	for _, line := range strings.Split(string(mounts), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			under = append(under, fields[1])
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	for _, m := range under {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// cleanNode tears a node down after its kubelet stopped: the sandboxes through containerd
// (started for the purpose when it no longer runs), then containerd, the shims, the mounts and
// what it made on the host.
func cleanNode(n *node, containerd *child) {
	if containerd == nil {
		config := filepath.Join(n.dir, "containerd.toml")
		if _, err := os.Stat(config); err == nil {
			cmd := exec.Command("/usr/bin/containerd", "--config", config)
			if err := cmd.Start(); err == nil {
				if waitRuntime(n.endpoint(), 15*time.Second) == nil {
					stopSandboxes(n.endpoint())
				}
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			}
		}
	} else {
		stopSandboxes(n.endpoint())
		stopAll([]*child{containerd})
	}
	stopShims(n.dir)
	cleanHost(n)
}

// runNodeClean is `kube node-clean --dir <cluster dir>`: removes what a node left behind when its
// cluster did not stop cleanly.
func runNodeClean(args []string) int {
	flags := flag.NewFlagSet("node-clean", flag.ContinueOnError)
	dir := flags.String("dir", "", "the cluster's directory")
	if err := flags.Parse(args); err != nil || *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: kube node-clean --dir <cluster dir>")
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return 1
	}
	n := &node{dir: filepath.Join(abs, "node")}
	data, err := os.ReadFile(filepath.Join(n.dir, "slot"))
	if err != nil {
		return 0 // no node was started
	}
	if n.slot, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		return 1
	}
	n.socket = filepath.Join(n.dir, "containerd", "containerd.sock")
	// Why the lock: once its cluster died, the slot may have gone to another node, whose
	// chain, bridge and cgroups these would then be.
	lock, err := os.OpenFile(fmt.Sprintf("/run/test-cluster/slot-%d.lock", n.slot), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return 1
	}
	defer lock.Close()
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		stopShims(n.dir)
		return 0
	}
	cleanNode(n, nil)
	return 0
}

// archiveLogs keeps every container log the kubelet writes under podLogs, also after the
// kubelet removes it with its pod: each new log file gets a hard link under archive, which
// keeps the file (and what containerd still appends to it) when the kubelet unlinks its own
// name. Tests read the archive to check what every container ever printed, as a node's log
// shipper would let them.
func archiveLogs(podLogs, archive string, stop <-chan struct{}) {
	linked := map[string]bool{}
	for {
		files, _ := filepath.Glob(filepath.Join(podLogs, "*", "*", "*.log"))
		for _, file := range files {
			if linked[file] {
				continue
			}
			rel, err := filepath.Rel(podLogs, file)
			if err != nil {
				continue
			}
			target := filepath.Join(archive, rel)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				continue
			}
			if err := os.Link(file, target); err == nil || errors.Is(err, os.ErrExist) {
				linked[file] = true
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
