// `kube cluster`: the test cluster's control plane on 127.0.0.1, in the foreground until SIGTERM
// or SIGINT. It makes the certificates (pki.go), starts etcd in this process and the API
// server, controller manager and scheduler as child processes of this binary, waits until they
// serve and the controllers have set up the default namespace, and then writes `ready` (the
// admin kubeconfig's path) and `cluster.env` (ports and paths, for the node) in its directory.
// If a component exits, the whole control plane stops: a half-dead test cluster would only make
// tests fail in confusing ways.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The audit policy of the issue: whole objects for what a run creates and reads (so a test can
// check that no secret reached a Job, pod, ConfigMap or Event), metadata only for Secrets, and
// metadata for everything else (so the requests and watches of a run can be counted). Token
// requests stay at Metadata: their responses are tokens.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources:
  - {group: "", resources: [secrets, serviceaccounts/token]}
- level: RequestResponse
  resources:
  - {group: batch, resources: [jobs, jobs/status]}
  - {group: "", resources: [pods, pods/status, pods/binding, pods/ephemeralcontainers, configmaps, events]}
  - {group: events.k8s.io, resources: [events]}
- level: Metadata
`

// child is a component running as a child process.
type child struct {
	name string
	cmd  *exec.Cmd
	// done is closed once the process has exited; err then says how.
	done chan struct{}
	err  error
}

func runCluster(args []string) int {
	flags := flag.NewFlagSet("cluster", flag.ContinueOnError)
	dir := flags.String("dir", "", "the cluster's directory: certificates, kubeconfigs, etcd data, logs, audit log")
	nodeName := flags.String("node-name", "local-node", "the node's name")
	withNode := flags.Bool("node", true, "run a node: containerd and the kubelet (node.go)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "kube cluster: --dir is required")
		return 2
	}
	if err := serveCluster(*dir, *nodeName, *withNode); err != nil {
		fmt.Fprintln(os.Stderr, "kube cluster:", err)
		return 1
	}
	return 0
}

func serveCluster(dir, nodeName string, withNode bool) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedulerPort, kubeletPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	ip, err := hostIP()
	if err != nil {
		return err
	}
	p, err := makePKI(dir, server, nodeName, ip)
	if err != nil {
		return fmt.Errorf("making the certificates: %w", err)
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := write(policy, []byte(auditPolicy)); err != nil {
		return err
	}
	audit := filepath.Join(dir, "audit.log")

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	etcd, err := startEtcd(filepath.Join(dir, "etcd"), etcdURL,
		fmt.Sprintf("http://127.0.0.1:%d", peerPort), filepath.Join(logs, "etcd.log"))
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer etcd.Close()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	var children []*child
	defer func() { stopAll(children) }()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(name string, args ...string) error {
		c, err := startChild(logs, name, self, append([]string{name}, args...))
		if err == nil {
			children = append(children, c)
		}
		return err
	}

	if err := start("kube-apiserver",
		"--etcd-servers="+etcdURL,
		// Why every address: the node's pods reach the API server at this machine's
		// address (as the `kubernetes` Service), which is also what it advertises.
		"--bind-address=0.0.0.0",
		"--advertise-address="+ip,
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file="+p.serving,
		"--tls-private-key-file="+p.servingKey,
		"--client-ca-file="+p.caCert,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saPub,
		"--service-account-signing-key-file="+p.saKey,
		// Why Node as well as RBAC: the node's own identity is then limited as on a real
		// cluster (its pods, their Secrets and ConfigMaps), with NodeRestriction admission.
		"--authorization-mode=Node,RBAC",
		// ServiceAccount and PodSecurity admission are on by default; kept on.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--kubelet-client-certificate="+p.kubeletClient,
		"--kubelet-client-key="+p.kubeletClientKey,
		"--kubelet-certificate-authority="+p.caCert,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--requestheader-client-ca-file="+p.frontProxyCA,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p.frontProxyClient,
		"--proxy-client-key-file="+p.frontProxyClientKey,
		"--audit-policy-file="+policy,
		"--audit-log-path="+audit,
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--profiling=false",
	); err != nil {
		return err
	}
	admin, err := clientcmd.BuildConfigFromFlags("", p.admin)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	var extra []string
	if err := waitFor("the API server", deadline, children, signals, func(ctx context.Context) error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}

	componentFlags := func(kubeconfig string, port int) []string {
		return []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", port),
			// Why no leader election: one instance of each, and it starts without waiting
			// for a Lease.
			"--leader-elect=false",
			"--profiling=false",
		}
	}
	if err := start("kube-controller-manager", append(componentFlags(p.controllerManager, kcmPort),
		// Each controller with its own service account, as kubeadm sets it up, so the
		// controllers are held to their own RBAC roles.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p.saKey,
		"--root-ca-file="+p.caCert,
		"--cluster-signing-cert-file="+p.caCert,
		"--cluster-signing-key-file="+p.caKey,
	)...); err != nil {
		return err
	}
	if err := start("kube-scheduler", componentFlags(p.scheduler, schedulerPort)...); err != nil {
		return err
	}
	for _, component := range []struct {
		name string
		port int
	}{{"the controller manager", kcmPort}, {"the scheduler", schedulerPort}} {
		url := fmt.Sprintf("https://127.0.0.1:%d/healthz", component.port)
		if err := waitFor(component.name, deadline, children, signals, func(ctx context.Context) error {
			return healthz(ctx, url)
		}); err != nil {
			return err
		}
	}
	if withNode {
		// Why the node's children apart: at the end its kubelet stops first, then its pods
		// go through containerd, then containerd.
		var nodeChildren []*child
		startNodeChild := func(name, path string, args ...string) (*child, error) {
			c, err := startChild(logs, name, path, args)
			if err == nil {
				nodeChildren = append(nodeChildren, c)
				children = append(children, c)
			}
			return c, err
		}
		n, containerd, err := startNode(dir, nodeName, ip, kubeletPort, p, apiPort, startNodeChild)
		defer func() {
			if n == nil {
				return
			}
			if len(nodeChildren) > 1 {
				stopAll(nodeChildren[1:])
			}
			cleanNode(n, containerd)
			// Nothing is left for `kube node-clean` to do.
			_ = os.Remove(filepath.Join(n.dir, "slot"))
			n.lock.Close()
		}()
		if err != nil {
			return fmt.Errorf("starting the node: %w", err)
		}
		if err := waitFor("the node", deadline, children, signals, func(ctx context.Context) error {
			return waitNodeReady(ctx, client, nodeName)
		}); err != nil {
			return err
		}
		archive := filepath.Join(dir, "container-logs")
		stopArchive := make(chan struct{})
		defer close(stopArchive)
		go archiveLogs(filepath.Join(n.dir, "pod-logs"), archive, stopArchive)
		extra = append(extra,
			"CONTAINER_LOGS="+archive,
			"NODE_IP="+ip,
			"CONTAINERD_SOCKET="+n.socket,
			"POD_SUBNET="+n.subnet(),
			"POD_LOGS="+filepath.Join(n.dir, "pod-logs"))
	}
	// The service-account and root-CA publisher controllers have run once the default
	// namespace has both: from then on a new namespace gets them within moments.
	if err := waitFor("the controllers", deadline, children, signals, func(ctx context.Context) error {
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err
		}
		_, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}

	env := strings.Join([]string{
		"API_SERVER=" + server,
		fmt.Sprintf("API_PORT=%d", apiPort),
		"ADMIN_KUBECONFIG=" + p.admin,
		"NODE_NAME=" + nodeName,
		"NODE_KUBECONFIG=" + p.node,
		"NODE_SERVING_CERT=" + p.nodeServing,
		"NODE_SERVING_KEY=" + p.nodeServingKey,
		"CA_CERT=" + p.caCert,
		"AUDIT_LOG=" + audit,
	}, "\n") + "\n" + strings.Join(extra, "\n") + "\n"
	if err := write(filepath.Join(dir, "cluster.env"), []byte(env)); err != nil {
		return err
	}
	if err := write(filepath.Join(dir, "ready"), []byte(p.admin+"\n")); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "kube cluster: ready; admin kubeconfig", p.admin)

	select {
	case s := <-signals:
		fmt.Fprintln(os.Stderr, "kube cluster: stopping on", s)
		return nil
	case err := <-exited(children):
		return err
	case err := <-etcd.Err():
		return fmt.Errorf("etcd stopped: %w", err)
	}
}

// freePorts finds n free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startChild runs a component, logging to logs/<name>.log.
func startChild(logs, name, path string, args []string) (*child, error) {
	log, err := os.Create(filepath.Join(logs, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Why: if this process is killed outright, its components go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		log.Close()
		if err == nil {
			err = errors.New("exited")
		}
		c.err = fmt.Errorf("%s stopped (%v); see %s", name, err, log.Name())
		close(c.done)
	}()
	return c, nil
}

// exited gives the first child's exit.
func exited(children []*child) <-chan error {
	out := make(chan error, len(children))
	for _, c := range children {
		go func() {
			<-c.done
			out <- c.err
		}()
	}
	return out
}

// stopAll stops the children, the last started first, each with SIGTERM and then, after ten
// seconds, SIGKILL.
func stopAll(children []*child) {
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		select {
		case <-c.done:
			continue
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// waitFor polls check until it succeeds, a child exits, a signal comes or the deadline passes.
func waitFor(what string, deadline time.Time, children []*child, signals <-chan os.Signal, check func(context.Context) error) error {
	died := exited(children)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = check(ctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case err := <-died:
			return err
		case s := <-signals:
			return fmt.Errorf("stopped on %s while waiting for %s", s, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready in time: %v", what, last)
}

// healthz asks a component's /healthz, which it serves without credentials on a self-signed
// certificate.
func healthz(ctx context.Context, url string) error {
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, 127.0.0.1
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
