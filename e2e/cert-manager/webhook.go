package main

import (
	"context"
	"flag"

	"github.com/cert-manager/cert-manager/internal/apis/config/shared"
	config "github.com/cert-manager/cert-manager/internal/apis/config/webhook"
	"github.com/cert-manager/cert-manager/internal/webhook"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

// runWebhook serves cert-manager's admission webhook (defaulting,
// validation, CertificateRequest identity and approval checks) with the
// serving certificate from files, until ctx ends.
func runWebhook(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("webhook", flag.ExitOnError)
	port := flags.Int("secure-port", 10250, "HTTPS port of the admission webhook")
	healthz := flags.Int("healthz-port", 6080, "HTTP port of /livez and /healthz")
	certFile := flags.String("tls-cert-file", "/tls/tls.crt", "serving certificate")
	keyFile := flags.String("tls-private-key-file", "/tls/tls.key", "its private key")
	kubeconfig := kubeconfigFlag(flags)
	_ = flags.Parse(args)

	server, err := webhook.NewCertManagerWebhookServer(logf.FromContext(ctx), config.WebhookConfiguration{
		SecurePort:  int32(*port),
		HealthzPort: int32(*healthz),
		KubeConfig:  *kubeconfig,
		TLSConfig: shared.TLSConfig{
			Filesystem: shared.FilesystemServingConfig{CertFile: *certFile, KeyFile: *keyFile},
		},
		MetricsListenAddress: "0", // no metrics server
	})
	if err != nil {
		return err
	}
	return server.Run(ctx)
}
