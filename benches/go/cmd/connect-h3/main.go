// Command connect-h3 is connect-go over quic-go's HTTP/3, the peer switchboard's HTTP/3 is
// checked and measured against. Three modes:
//
//	connect-h3 serve --addr 127.0.0.1:0 --cert cert.pem --key key.pem
//	    serves bench.v1.EchoService over HTTP/3 (UDP) and, on the same port number,
//	    HTTP/2 over TLS (TCP); prints "listening on ADDR"; exits 0 on SIGTERM or SIGINT.
//	connect-h3 check --url https://127.0.0.1:PORT --ca ca.pem
//	    calls a (switchboard) server over HTTP/3 with the Connect, gRPC-Web and gRPC
//	    protocols, each with unary, server-stream, client-stream and full-duplex bidi
//	    calls; prints "PASS <check>" or "FAIL <check>: <why>" per check and exits 1 if
//	    any failed.
//	connect-h3 load --url URL --ca ca.pem --protocol connect --shape unary
//	    --concurrency 16 --duration 5s --payload 64 --count 100 [--http2]
//	    keeps CONCURRENCY calls in flight for DURATION over one HTTP/3 connection (with
//	    --http2, one HTTP/2 connection over TLS) and
//	    prints {"calls":N,"seconds":S,"errors":E,"first_error":"..."} as JSON.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/quic-go/quic-go/http3"

	benchv1 "switchboard.bench/echo/gen/benchv1"
	"switchboard.bench/echo/gen/benchv1/benchv1connect"
	"switchboard.bench/echo/internal/echo"
	"switchboard.bench/echo/internal/lifecycle"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: connect-h3 serve|check|load [flags]")
	}
	mode, args := os.Args[1], os.Args[2:]
	switch mode {
	case "serve":
		serve(args)
	case "check":
		check(args)
	case "load":
		load(args)
	default:
		fail("unknown mode " + mode + "; use serve, check or load")
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(2)
}

func serve(args []string) {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:0", "UDP address to serve on")
	certFile := flags.String("cert", "", "PEM certificate chain")
	keyFile := flags.String("key", "", "PEM private key")
	_ = flags.Parse(args)
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("loading the certificate: " + err.Error())
	}
	mux := http.NewServeMux()
	// As connect-echo: responses are never compressed.
	mux.Handle(benchv1connect.NewEchoServiceHandler(echo.Service{},
		connect.WithCompression("gzip", nil, nil)))
	conn, err := net.ListenPacket("udp", *addr)
	if err != nil {
		fail("listen: " + err.Error())
	}
	server := &http3.Server{
		Handler:   mux,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
	}
	// HTTP/2 (and HTTP/1.1) over TLS on the same port number, for the benchmark's HTTP/2
	// column: net/http's own server, as connect-go's users run it.
	tcp, err := net.Listen("tcp", conn.LocalAddr().String())
	if err != nil {
		fail("listen on TCP: " + err.Error())
	}
	tcpServer := &http.Server{
		Handler:   mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	served := make(chan error, 2)
	go func() { served <- server.Serve(conn) }()
	go func() { served <- tcpServer.ServeTLS(tcp, "", "") }()
	fmt.Println("listening on", conn.LocalAddr())
	select {
	case err := <-served:
		fail("serve: " + err.Error())
	case <-signals:
	}
	ctx, cancel := context.WithTimeout(context.Background(), lifecycle.DrainTimeout)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		_ = server.Close()
	}
	if err := tcpServer.Shutdown(ctx); err != nil {
		_ = tcpServer.Close()
	}
}

// client is an EchoService client over HTTP/3 (or, with http2, HTTP/2 over TLS) trusting
// the CA in caFile; close is its transport's.
func client(url, caFile, protocol string, http2 bool) (benchv1connect.EchoServiceClient, func()) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fail("reading the CA: " + err.Error())
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail("no certificate in " + caFile)
	}
	var transport http.RoundTripper
	var closeTransport func()
	if http2 {
		var protocols http.Protocols
		protocols.SetHTTP2(true)
		tcp := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			Protocols:         &protocols,
			ForceAttemptHTTP2: true,
		}
		transport, closeTransport = tcp, tcp.CloseIdleConnections
	} else {
		quic := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		transport, closeTransport = quic, func() { _ = quic.Close() }
	}
	var options []connect.ClientOption
	switch protocol {
	case "connect":
	case "grpc":
		options = append(options, connect.WithGRPC())
	case "grpc-web":
		options = append(options, connect.WithGRPCWeb())
	default:
		fail("unknown protocol " + protocol)
	}
	return benchv1connect.NewEchoServiceClient(&http.Client{Transport: transport}, url, options...), closeTransport
}

// checkLabel names the direction of the checks in the lines check prints.
const checkLabel = "connect-go → switchboard, HTTP/3,"

func check(args []string) {
	flags := flag.NewFlagSet("check", flag.ExitOnError)
	url := flags.String("url", "", "the server's https:// URL")
	caFile := flags.String("ca", "", "PEM CA certificate the server's chain is verified against")
	_ = flags.Parse(args)
	failed := 0
	for _, protocol := range []string{"connect", "grpc-web", "grpc"} {
		echoClient, closeTransport := client(*url, *caFile, protocol, false)
		for _, shape := range []struct {
			name string
			run  func(context.Context, benchv1connect.EchoServiceClient) error
		}{
			{"unary", checkUnary},
			{"server-stream", checkServerStream},
			{"client-stream", checkClientStream},
			{"bidi", checkBidi},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := shape.run(ctx, echoClient)
			cancel()
			if err != nil {
				failed++
				fmt.Printf("FAIL %s %s %s: %v\n", checkLabel, protocol, shape.name, err)
			} else {
				fmt.Printf("PASS %s %s %s\n", checkLabel, protocol, shape.name)
			}
		}
		closeTransport()
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func checkUnary(ctx context.Context, c benchv1connect.EchoServiceClient) error {
	response, err := c.Echo(ctx, connect.NewRequest(&benchv1.EchoRequest{Payload: []byte("hello")}))
	if err != nil {
		return err
	}
	if string(response.Msg.GetPayload()) != "hello" {
		return fmt.Errorf("echoed %q", response.Msg.GetPayload())
	}
	return nil
}

func checkServerStream(ctx context.Context, c benchv1connect.EchoServiceClient) error {
	stream, err := c.ServerStream(ctx, connect.NewRequest(&benchv1.StreamRequest{Count: 3, Payload: []byte("s")}))
	if err != nil {
		return err
	}
	received := 0
	for stream.Receive() {
		if string(stream.Msg().GetPayload()) != "s" {
			return fmt.Errorf("message %d is %q", received, stream.Msg().GetPayload())
		}
		received++
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if received != 3 {
		return fmt.Errorf("%d messages, want 3", received)
	}
	return nil
}

func checkClientStream(ctx context.Context, c benchv1connect.EchoServiceClient) error {
	stream := c.ClientStream(ctx)
	for _, payload := range []string{"a", "bb", "ccc"} {
		if err := stream.Send(&benchv1.EchoRequest{Payload: []byte(payload)}); err != nil {
			return err
		}
	}
	response, err := stream.CloseAndReceive()
	if err != nil {
		return err
	}
	if response.Msg.GetMessages() != 3 || response.Msg.GetBytes() != 6 {
		return fmt.Errorf("summary %v, want 3 messages of 6 bytes", response.Msg)
	}
	return nil
}

// checkBidi checks full duplex: each reply arrives before the next request is sent.
func checkBidi(ctx context.Context, c benchv1connect.EchoServiceClient) error {
	stream := c.Bidi(ctx)
	for _, payload := range []string{"ping 1", "ping 2", "ping 3"} {
		if err := stream.Send(&benchv1.EchoRequest{Payload: []byte(payload)}); err != nil {
			return err
		}
		reply, err := stream.Receive()
		if err != nil {
			return err
		}
		if string(reply.GetPayload()) != payload {
			return fmt.Errorf("echoed %q, want %q", reply.GetPayload(), payload)
		}
	}
	if err := stream.CloseRequest(); err != nil {
		return err
	}
	if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the last reply: %v, want the end", err)
	}
	return stream.CloseResponse()
}

func load(args []string) {
	flags := flag.NewFlagSet("load", flag.ExitOnError)
	url := flags.String("url", "", "the server's https:// URL")
	caFile := flags.String("ca", "", "PEM CA certificate")
	protocol := flags.String("protocol", "connect", "connect, grpc-web or grpc")
	shape := flags.String("shape", "unary", "unary or server-stream")
	concurrency := flags.Int("concurrency", 16, "calls in flight")
	duration := flags.Duration("duration", 5*time.Second, "how long to keep the load")
	payloadSize := flags.Int("payload", 64, "payload bytes")
	count := flags.Uint("count", 100, "messages per server stream")
	http2 := flags.Bool("http2", false, "HTTP/2 over TLS instead of HTTP/3")
	_ = flags.Parse(args)
	echoClient, closeTransport := client(*url, *caFile, *protocol, *http2)
	defer closeTransport()
	payload := bytes.Repeat([]byte{'x'}, *payloadSize)
	call := func(ctx context.Context) error {
		switch *shape {
		case "unary":
			_, err := echoClient.Echo(ctx, connect.NewRequest(&benchv1.EchoRequest{Payload: payload}))
			return err
		case "server-stream":
			stream, err := echoClient.ServerStream(ctx,
				connect.NewRequest(&benchv1.StreamRequest{Count: uint32(*count), Payload: payload}))
			if err != nil {
				return err
			}
			for stream.Receive() {
			}
			return stream.Err()
		default:
			fail("unknown shape " + *shape)
			return nil
		}
	}
	// One call first: the connection is up before the clock starts.
	if err := call(context.Background()); err != nil {
		fail("first call: " + err.Error())
	}
	var calls, errorsSeen atomic.Int64
	var firstError atomic.Value
	deadline := time.Now().Add(*duration)
	started := time.Now()
	var workers sync.WaitGroup
	for range *concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for time.Now().Before(deadline) {
				if err := call(context.Background()); err != nil {
					errorsSeen.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
					continue
				}
				calls.Add(1)
			}
		}()
	}
	workers.Wait()
	report := map[string]any{
		"calls":   calls.Load(),
		"seconds": time.Since(started).Seconds(),
		"errors":  errorsSeen.Load(),
	}
	if first, ok := firstError.Load().(string); ok {
		report["first_error"] = first
	}
	_ = json.NewEncoder(os.Stdout).Encode(report)
}
