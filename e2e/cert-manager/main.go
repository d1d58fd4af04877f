// Command cert-manager runs cert-manager's own controllers and admission
// webhook, built from the github.com/cert-manager/cert-manager module as
// the Go module proxy serves it, for the end-to-end test of the operator's
// spec.tls mode CertManager (e2e/cert-manager.sh):
//
//	cert-manager controller   Certificates (trigger, key manager, request
//	                          manager, issuing, readiness, revisions),
//	                          CertificateRequests (approver, CA and
//	                          SelfSigned signers), Issuers, ClusterIssuers
//	cert-manager webhook      defaulting and validation of cert-manager.io
//
// Upstream builds these binaries from separate Go modules (cmd/controller,
// cmd/webhook) that the module proxy does not serve; this is the part of
// them that starts the components, for the CA and SelfSigned issuers only
// (no ACME, Vault, Venafi, ingress or Gateway shims, no cainjector: the
// test script writes the webhook's CA bundle itself). The module path sits
// under cert-manager's so that, like upstream's cmd modules, it may use the
// webhook's constructor from cert-manager's internal packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cert-manager controller|webhook [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log.WithName("cert-manager-"+os.Args[1]))
	var err error
	switch os.Args[1] {
	case "controller":
		err = runController(ctx, stop, os.Args[2:])
	case "webhook":
		err = runWebhook(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown component %q: controller or webhook", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// kubeconfigFlag: outside a pod, a kubeconfig; in a pod, empty (the
// service account).
func kubeconfigFlag(flags *flag.FlagSet) *string {
	return flags.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig to use outside a pod")
}
