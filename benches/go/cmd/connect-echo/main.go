// Command connect-echo serves bench.v1.EchoService with connectrpc.com/connect:
// the Connect, gRPC and gRPC-Web protocols over HTTP/1.1 and cleartext HTTP/2 (h2c)
// on one port, straight from net/http.
//
//	connect-echo --addr 127.0.0.1:PORT
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"connectrpc.com/connect"

	benchv1 "switchboard.bench/echo/gen/benchv1"
	"switchboard.bench/echo/gen/benchv1/benchv1connect"
	"switchboard.bench/echo/internal/lifecycle"
)

func main() {
	listener, signals := lifecycle.Start()

	mux := http.NewServeMux()
	// connect-go registers gzip by default and would compress any response whose
	// client merely advertises gzip (Go's HTTP client does so on its own). The
	// benchmark contract is uncompressed responses, so take gzip out of the list.
	mux.Handle(benchv1connect.NewEchoServiceHandler(echoService{},
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

// echoService implements the benchmark semantics; it keeps no state.
type echoService struct{}

func (echoService) Echo(
	_ context.Context, req *connect.Request[benchv1.EchoRequest],
) (*connect.Response[benchv1.EchoResponse], error) {
	return connect.NewResponse(&benchv1.EchoResponse{Payload: req.Msg.GetPayload()}), nil
}

func (echoService) Ingest(
	_ context.Context, req *connect.Request[benchv1.LogBatch],
) (*connect.Response[benchv1.IngestAck], error) {
	ack := &benchv1.IngestAck{}
	for _, record := range req.Msg.GetRecords() {
		ack.Records++
		ack.MessageBytes += uint64(len(record.GetMessage()))
	}
	return connect.NewResponse(ack), nil
}

func (echoService) ServerStream(
	_ context.Context, req *connect.Request[benchv1.StreamRequest], stream *connect.ServerStream[benchv1.EchoResponse],
) error {
	// Send marshals before returning, so one message can be sent many times.
	response := &benchv1.EchoResponse{Payload: req.Msg.GetPayload()}
	for range req.Msg.GetCount() {
		if err := stream.Send(response); err != nil {
			return err
		}
	}
	return nil
}

func (echoService) ClientStream(
	_ context.Context, stream *connect.ClientStream[benchv1.EchoRequest],
) (*connect.Response[benchv1.StreamSummary], error) {
	summary := &benchv1.StreamSummary{}
	for stream.Receive() {
		summary.Messages++
		summary.Bytes += uint64(len(stream.Msg().GetPayload()))
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(summary), nil
}

func (echoService) Bidi(
	_ context.Context, stream *connect.BidiStream[benchv1.EchoRequest, benchv1.EchoResponse],
) error {
	for {
		req, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&benchv1.EchoResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}
