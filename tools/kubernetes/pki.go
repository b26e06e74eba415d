// The test cluster's certificates and kubeconfigs: a tiny CA made afresh for each start, the API
// server's serving certificate, a client certificate for each identity (the admin in
// system:masters, the controller manager, the scheduler, the node, the API server towards the
// node), the node's serving certificate, and the service-account signing key.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ca is the cluster's certificate authority.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// Why ECDSA P-256: a key takes microseconds, where RSA 2048 takes tens of milliseconds each, and
// every client here (client-go, kube-rs with rustls, kubectl, terraform) accepts it; the API
// server signs service-account tokens with it as ES256.
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n
}

func newCA() (*ca, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "test-cluster-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key}, nil
}

// issue signs a certificate for a subject: a client certificate without hosts, a serving one
// with them.
func (c *ca) issue(subject pkix.Name, hosts []string, client bool) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if client {
		template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func (c *ca) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
}

func (c *ca) keyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// pki is where the files of makePKI are.
type pki struct {
	dir                                   string
	caCert, caKey                         string
	serving, servingKey                   string
	kubeletClient, kubeletClientKey       string
	nodeServing, nodeServingKey           string
	saKey, saPub                          string
	frontProxyCA                          string
	frontProxyClient, frontProxyClientKey string
	admin, controllerManager, scheduler   string // kubeconfigs
	node                                  string // the node's kubeconfig
}

// makePKI writes the certificates, keys and kubeconfigs of a cluster whose API server is at
// server, with one node called nodeName.
func makePKI(dir, server, nodeName, nodeIP string) (*pki, error) {
	p := &pki{dir: dir}
	certs := filepath.Join(dir, "pki")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return nil, err
	}
	path := func(name string) string { return filepath.Join(certs, name) }
	authority, err := newCA()
	if err != nil {
		return nil, err
	}
	p.caCert, p.caKey = path("ca.crt"), path("ca.key")
	if err := write(p.caCert, authority.certPEM()); err != nil {
		return nil, err
	}
	if err := write(p.caKey, authority.keyPEM()); err != nil {
		return nil, err
	}
	pair := func(name string, subject pkix.Name, hosts []string, client bool) (string, string, error) {
		cert, key, err := authority.issue(subject, hosts, client)
		if err != nil {
			return "", "", err
		}
		c, k := path(name+".crt"), path(name+".key")
		if err := write(c, cert); err != nil {
			return "", "", err
		}
		return c, k, write(k, key)
	}
	// Why these names: pods reach the API server as the `kubernetes` Service (10.0.0.1, the
	// first address of --service-cluster-ip-range) or its DNS names, tests as 127.0.0.1.
	if p.serving, p.servingKey, err = pair("apiserver", pkix.Name{CommonName: "kube-apiserver"},
		[]string{"127.0.0.1", "10.0.0.1", nodeIP, "localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, false); err != nil {
		return nil, err
	}
	if p.kubeletClient, p.kubeletClientKey, err = pair("apiserver-kubelet-client",
		pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		nil, true); err != nil {
		return nil, err
	}
	if p.nodeServing, p.nodeServingKey, err = pair("node-serving",
		pkix.Name{CommonName: nodeName}, []string{nodeIP, "127.0.0.1", "localhost", nodeName}, false); err != nil {
		return nil, err
	}
	// The front proxy's own CA, as kubeadm makes it: the API server proxies to aggregated API
	// servers with this client certificate, and the controller manager and scheduler expect
	// its CA in the extension-apiserver-authentication ConfigMap.
	frontProxy, err := newCA()
	if err != nil {
		return nil, err
	}
	p.frontProxyCA = path("front-proxy-ca.crt")
	if err := write(p.frontProxyCA, frontProxy.certPEM()); err != nil {
		return nil, err
	}
	cert, key, err := frontProxy.issue(pkix.Name{CommonName: "front-proxy-client"}, nil, true)
	if err != nil {
		return nil, err
	}
	p.frontProxyClient, p.frontProxyClientKey = path("front-proxy-client.crt"), path("front-proxy-client.key")
	if err := write(p.frontProxyClient, cert); err != nil {
		return nil, err
	}
	if err := write(p.frontProxyClientKey, key); err != nil {
		return nil, err
	}
	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	p.saKey, p.saPub = path("sa.key"), path("sa.pub")
	if err := write(p.saKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER})); err != nil {
		return nil, err
	}
	if err := write(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})); err != nil {
		return nil, err
	}
	kubeconfig := func(file, user string, groups ...string) (string, error) {
		cert, key, err := authority.issue(pkix.Name{CommonName: user, Organization: groups}, nil, true)
		if err != nil {
			return "", err
		}
		config := clientcmdapi.NewConfig()
		config.Clusters["test-cluster"] = &clientcmdapi.Cluster{
			Server:                   server,
			CertificateAuthorityData: authority.certPEM(),
		}
		config.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
		config.Contexts["test-cluster"] = &clientcmdapi.Context{Cluster: "test-cluster", AuthInfo: user}
		config.CurrentContext = "test-cluster"
		target := filepath.Join(dir, file)
		return target, clientcmd.WriteToFile(*config, target)
	}
	if p.admin, err = kubeconfig("admin.kubeconfig", "test-cluster-admin", "system:masters"); err != nil {
		return nil, err
	}
	if p.controllerManager, err = kubeconfig("controller-manager.kubeconfig", "system:kube-controller-manager"); err != nil {
		return nil, err
	}
	if p.scheduler, err = kubeconfig("scheduler.kubeconfig", "system:kube-scheduler"); err != nil {
		return nil, err
	}
	if p.node, err = kubeconfig("node.kubeconfig", "system:node:"+nodeName, "system:nodes"); err != nil {
		return nil, err
	}
	return p, nil
}

func write(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
