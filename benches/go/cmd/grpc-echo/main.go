// Command grpc-echo serves bench.v1.EchoService with google.golang.org/grpc: gRPC over
// cleartext HTTP/2 with prior knowledge (h2c) on a plain TCP listener, grpc-go's own
// transport, default server options.
//
//	grpc-echo --addr 127.0.0.1:PORT
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	benchv1 "switchboard.bench/echo/gen/benchv1"
	"switchboard.bench/echo/internal/lifecycle"
)

func main() {
	listener, signals := lifecycle.Start()

	server := grpc.NewServer()
	benchv1.RegisterEchoServiceServer(server, echoService{})

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	case <-signals:
	}
	// GracefulStop stops accepting and waits for every call to finish; a stream that
	// outlives the drain timeout is cut off by Stop.
	drained := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(lifecycle.DrainTimeout):
		server.Stop()
	}
}

// echoService implements the benchmark semantics; it keeps no state.
type echoService struct {
	benchv1.UnimplementedEchoServiceServer
}

func (echoService) Echo(_ context.Context, req *benchv1.EchoRequest) (*benchv1.EchoResponse, error) {
	return &benchv1.EchoResponse{Payload: req.GetPayload()}, nil
}

func (echoService) Ingest(_ context.Context, batch *benchv1.LogBatch) (*benchv1.IngestAck, error) {
	ack := &benchv1.IngestAck{}
	for _, record := range batch.GetRecords() {
		ack.Records++
		ack.MessageBytes += uint64(len(record.GetMessage()))
	}
	return ack, nil
}

func (echoService) ServerStream(
	req *benchv1.StreamRequest, stream grpc.ServerStreamingServer[benchv1.EchoResponse],
) error {
	// Send marshals before returning, so one message can be sent many times.
	response := &benchv1.EchoResponse{Payload: req.GetPayload()}
	for range req.GetCount() {
		if err := stream.Send(response); err != nil {
			return err
		}
	}
	return nil
}

func (echoService) ClientStream(
	stream grpc.ClientStreamingServer[benchv1.EchoRequest, benchv1.StreamSummary],
) error {
	summary := &benchv1.StreamSummary{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(summary)
		}
		if err != nil {
			return err
		}
		summary.Messages++
		summary.Bytes += uint64(len(req.GetPayload()))
	}
}

func (echoService) Bidi(stream grpc.BidiStreamingServer[benchv1.EchoRequest, benchv1.EchoResponse]) error {
	for {
		req, err := stream.Recv()
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
