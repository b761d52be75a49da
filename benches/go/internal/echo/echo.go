// Package echo is bench.v1.EchoService as the Go servers serve it: every method does the
// least work its contract allows.
package echo

import (
	"context"
	"errors"
	"io"

	"connectrpc.com/connect"

	benchv1 "switchboard.bench/echo/gen/benchv1"
)

// Service implements the benchmark semantics; it keeps no state.
type Service struct{}

func (Service) Echo(
	_ context.Context, req *connect.Request[benchv1.EchoRequest],
) (*connect.Response[benchv1.EchoResponse], error) {
	return connect.NewResponse(&benchv1.EchoResponse{Payload: req.Msg.GetPayload()}), nil
}

func (Service) Ingest(
	_ context.Context, req *connect.Request[benchv1.LogBatch],
) (*connect.Response[benchv1.IngestAck], error) {
	ack := &benchv1.IngestAck{}
	for _, record := range req.Msg.GetRecords() {
		ack.Records++
		ack.MessageBytes += uint64(len(record.GetMessage()))
	}
	return connect.NewResponse(ack), nil
}

func (Service) ServerStream(
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

func (Service) ClientStream(
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

func (Service) Bidi(
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
