"""grpcio (the gRPC C-core Python client) against the Eliza demo.

Run by `cargo xtask peers`, which generates the stubs with `python -m grpc_tools.protoc` into
a cache directory and runs:

    python grpcio_eliza.py --stubs DIR --h2c 127.0.0.1:PORT --tls localhost:PORT --ca ca.pem

Calls unary Say, server-streaming Introduce and bidirectional Converse over an insecure
channel (h2c) and over a TLS channel that trusts only the generated CA, plus an unknown method
that must fail with UNIMPLEMENTED, and an empty Say that must fail with INVALID_ARGUMENT and a
google.rpc.BadRequest detail, decoded with grpcio-status and googleapis-common-protos. Prints one `PASS <check>` or `FAIL <check>: <why>` line per
check and exits 1 on any failure.
"""

import argparse
import sys
import traceback

TIMEOUT_S = 10

SAY = ("I feel happy.", "When do you usually feel happy?")
NAME = "Ada"
INTRODUCTION = [
    "Hi Ada. I'm Eliza.",
    "Before we begin, let me tell you something about myself.",
    "I was created by Joseph Weizenbaum at MIT in the 1960s.",
    "I listen, and I ask questions. How are you feeling today?",
]
CONVERSATION = [
    ("Hello", "Hi there... how are you today?"),
    ("I feel happy.", "When do you usually feel happy?"),
    ("Goodbye", "Goodbye. It was nice talking to you."),
]


def assert_equal(what, actual, expected):
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, want {expected!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--h2c", required=True, help="HOST:PORT of the cleartext server")
    parser.add_argument("--tls", required=True, help="HOST:PORT of the TLS server")
    parser.add_argument("--ca", required=True, help="PEM CA that signed the TLS server")
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from connectrpc.eliza.v1 import eliza_pb2, eliza_pb2_grpc

    def say(channel):
        stub = eliza_pb2_grpc.ElizaServiceStub(channel)
        response, call = stub.Say.with_call(
            eliza_pb2.SayRequest(sentence=SAY[0]), timeout=TIMEOUT_S
        )
        assert_equal("Say status", call.code(), grpc.StatusCode.OK)
        assert_equal("Say sentence", response.sentence, SAY[1])

    def introduce(channel):
        stub = eliza_pb2_grpc.ElizaServiceStub(channel)
        call = stub.Introduce(eliza_pb2.IntroduceRequest(name=NAME), timeout=TIMEOUT_S)
        sentences = [response.sentence for response in call]
        assert_equal("Introduce status", call.code(), grpc.StatusCode.OK)
        assert_equal("Introduce sentences", sentences, INTRODUCTION)

    def converse(channel):
        stub = eliza_pb2_grpc.ElizaServiceStub(channel)
        requests = (eliza_pb2.ConverseRequest(sentence=s) for s, _ in CONVERSATION)
        call = stub.Converse(requests, timeout=TIMEOUT_S)
        replies = [response.sentence for response in call]
        assert_equal("Converse status", call.code(), grpc.StatusCode.OK)
        assert_equal("Converse replies", replies, [reply for _, reply in CONVERSATION])

    def unimplemented(channel):
        method = channel.unary_unary(
            "/connectrpc.eliza.v1.ElizaService/Nope",
            request_serializer=eliza_pb2.SayRequest.SerializeToString,
            response_deserializer=eliza_pb2.SayResponse.FromString,
        )
        try:
            method(eliza_pb2.SayRequest(sentence="hi"), timeout=TIMEOUT_S)
        except grpc.RpcError as error:
            assert_equal("unknown method status", error.code(), grpc.StatusCode.UNIMPLEMENTED)
            return
        raise AssertionError("unknown method succeeded")

    def error_details(channel):
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status

        stub = eliza_pb2_grpc.ElizaServiceStub(channel)
        try:
            stub.Say(eliza_pb2.SayRequest(sentence=""), timeout=TIMEOUT_S)
        except grpc.RpcError as error:
            assert_equal("empty Say status", error.code(), grpc.StatusCode.INVALID_ARGUMENT)
            status = rpc_status.from_call(error)
            if status is None:
                raise AssertionError("no grpc-status-details-bin trailer")
            assert_equal("details", len(status.details), 1)
            bad_request = error_details_pb2.BadRequest()
            if not status.details[0].Unpack(bad_request):
                raise AssertionError(f"detail is {status.details[0].type_url}, not BadRequest")
            violations = [(v.field, v.description) for v in bad_request.field_violations]
            assert_equal("field violations", violations, [("sentence", "must not be empty")])
            return
        raise AssertionError("an empty Say succeeded")

    with open(args.ca, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    channels = [
        ("h2c", lambda: grpc.insecure_channel(args.h2c)),
        ("TLS", lambda: grpc.secure_channel(args.tls, credentials)),
    ]
    failed = 0
    for label, open_channel in channels:
        with open_channel() as channel:
            for rpc in (say, introduce, converse, unimplemented, error_details):
                check = f"grpcio {label} {rpc.__name__.capitalize()}"
                try:
                    rpc(channel)
                    print(f"PASS {check}", flush=True)
                except Exception as error:  # noqa: BLE001 - report every failure the same way
                    failed += 1
                    why = "".join(traceback.format_exception_only(error)).strip()
                    print(f"FAIL {check}: {' | '.join(why.splitlines())}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
