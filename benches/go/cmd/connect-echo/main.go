// Command connect-echo serves bench.v1.EchoService with connectrpc.com/connect:
// the Connect, gRPC and gRPC-Web protocols over HTTP/1.1 and cleartext HTTP/2 (h2c)
// on one port, straight from net/http.
//
//	connect-echo --addr 127.0.0.1:PORT
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"connectrpc.com/connect"

	"switchboard.bench/echo/gen/benchv1/benchv1connect"
	"switchboard.bench/echo/internal/echo"
	"switchboard.bench/echo/internal/lifecycle"
)

func main() {
	listener, signals := lifecycle.Start()

	mux := http.NewServeMux()
	// connect-go registers gzip by default and would compress any response whose
	// client merely advertises gzip (Go's HTTP client does so on its own). The
	// benchmark contract is uncompressed responses, so take gzip out of the list.
	mux.Handle(benchv1connect.NewEchoServiceHandler(echo.Service{},
		connect.WithCompression("gzip", nil, nil)))

	// One port for HTTP/1.1 and HTTP/2 with prior knowledge; net/http does h2c itself
	// since Go 1.24, so golang.org/x/net/h2c is not needed.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	server := &http.Server{Handler: mux, Protocols: &protocols}

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	case <-signals:
	}
	ctx, cancel := context.WithTimeout(context.Background(), lifecycle.DrainTimeout)
	defer cancel()
	// Shutdown stops accepting and waits for active requests; whatever outlives the
	// drain timeout (say, a long-lived stream) is cut off by Close.
	if err := server.Shutdown(ctx); err != nil {
		_ = server.Close()
	}
}
