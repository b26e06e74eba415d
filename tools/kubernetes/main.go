// Command kube is the test cluster's Kubernetes (scripts/test-cluster.sh): the real
// kube-apiserver, kube-controller-manager, kube-scheduler and kubelet of the release in go.mod,
// and etcd's own server, in one binary whose first argument names the component. `kube cluster`
// (cluster.go) makes the certificates and runs the control plane on 127.0.0.1.
//
// Why one binary: the components share most of their code, so one link on the CI machine's two
// cores costs far less than four. The lines below are the components' own main functions
// (k8s.io/kubernetes/cmd/*/*.go); nothing else of Kubernetes is copied here.
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // CronJob time zones, as cmd/kube-apiserver and cmd/kube-controller-manager

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

const usage = "usage: kube cluster|node-clean|etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet [flags]"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	var command *cobra.Command
	switch name {
	case "cluster":
		os.Exit(runCluster(args))
	case "node-clean":
		os.Exit(runNodeClean(args))
	case "etcd":
		os.Exit(runEtcd(args))
	case "kube-apiserver":
		command = apiserver.NewAPIServerCommand()
	case "kube-controller-manager":
		command = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler":
		command = scheduler.NewSchedulerCommand()
	case "kubelet":
		command = kubelet.NewKubeletCommand(context.Background())
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	command.SetArgs(args)
	os.Exit(cli.Run(command))
}
