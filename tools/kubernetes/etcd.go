// etcd for the test cluster: etcd's own server (go.etcd.io/etcd/server/v3/embed), one member on
// 127.0.0.1, kept in a directory of its own.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd starts one etcd member serving clients on clientURL and returns once it is ready.
func startEtcd(dir, clientURL, peerURL, logFile string) (*embed.Etcd, error) {
	client, err := url.Parse(clientURL)
	if err != nil {
		return nil, err
	}
	peer, err := url.Parse(peerURL)
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "test-cluster"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogOutputs = []string{logFile}
	cfg.LogLevel = "warn"
	// Why no fsync: a test cluster's data does not outlive a power cut, and fsync on a shared
	// disk is most of etcd's write latency.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd stopped while starting: %w", err)
	}
}

// runEtcd is `kube etcd`: etcd alone, in the foreground, until SIGINT or SIGTERM.
func runEtcd(args []string) int {
	flags := flag.NewFlagSet("etcd", flag.ContinueOnError)
	dir := flags.String("data-dir", "etcd-data", "the member's directory")
	client := flags.String("listen-client-url", "http://127.0.0.1:2379", "where clients connect")
	peer := flags.String("listen-peer-url", "http://127.0.0.1:2380", "the member's peer address")
	logFile := flags.String("log-file", "stderr", "where etcd logs")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	e, err := startEtcd(*dir, *client, *peer, *logFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	}
	defer e.Close()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-stop:
		return 0
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	}
}
