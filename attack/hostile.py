"""Hostile clients against a running switchboard server (the Eliza demo).

Run by `cargo xtask attack`, which starts the demo and passes its address and process id:

    python hostile.py --addr 127.0.0.1:PORT --pid PID

Each scenario plays one abuse with Python's `h2` package (raw frames with `hyperframe` where
`h2` refuses to misbehave), then asserts its bound: the abuse is refused (a stream reset, a
GOAWAY, a closed connection or an error status) within a time limit, the server's resident
memory grew by less than a stated amount, and a normal call still succeeds. Loopback only;
the traffic of each scenario is bounded. Prints one line per scenario and exits non-zero if
any failed.
"""

import argparse
import gzip
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame, SettingsFrame

SAY = "/connectrpc.eliza.v1.ElizaService/Say"
CONVERSE = "/connectrpc.eliza.v1.ElizaService/Converse"
CHECK = "/grpc.health.v1.Health/Check"


class Failed(Exception):
    pass


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failed("no VmRSS")


def proto_string(field, text):
    data = text.encode() if isinstance(text, str) else text
    out = bytearray([field << 3 | 2])
    n = len(data)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


def envelope(payload, compressed=False, declared=None):
    length = len(payload) if declared is None else declared
    return struct.pack(">BI", 1 if compressed else 0, length) + payload


class Conn:
    """One HTTP/2 connection driven by hand."""

    def __init__(self, addr, window=None, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.closed = False
        self.goaway = None
        self.responses = {}

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def headers(self, path, content_type="application/grpc", extra=()):
        host = "localhost"
        return [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", host),
            (":path", path),
            ("content-type", content_type),
            ("te", "trailers"),
            *extra,
        ]

    def start(self, path, body=None, end=True, content_type="application/grpc", extra=()):
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream, self.headers(path, content_type, extra), end_stream=body is None and end)
        self.responses[stream] = {"headers": None, "data": b"", "trailers": None, "reset": None, "ended": False}
        self.flush()
        if body is not None:
            self.send_body(stream, body, end)
        return stream

    def send_body(self, stream, body, end):
        """Sends `body` in frames the peer allows, waiting for flow-control credit."""
        view = memoryview(body)
        deadline = time.monotonic() + 20
        while True:
            if self.closed or self.responses[stream]["ended"]:
                return
            room = min(self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size)
            if view and room == 0:
                credit = self.h2.local_flow_control_window(stream)
                self.pump(lambda: self.closed or self.responses[stream]["ended"]
                          or self.h2.local_flow_control_window(stream) > credit, deadline)
                continue
            piece, view = view[:room], view[room:]
            self.h2.send_data(stream, bytes(piece), end_stream=end and not view)
            self.flush()
            if not view:
                return

    def pump(self, until, deadline):
        """Reads and handles frames until `until()` holds, the connection closes, or the
        deadline passes (then raises)."""
        while not until():
            if self.closed:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failed("timed out waiting for the server")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Failed("timed out waiting for the server")
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                return
            if not data:
                self.closed = True
                return
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.closed = True
                return
            for event in events:
                self.handle(event)
            try:
                self.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True

    def handle(self, event):
        r = self.responses.get(getattr(event, "stream_id", None))
        if isinstance(event, h2.events.ResponseReceived) and r is not None:
            r["headers"] = dict(event.headers)
            if event.stream_ended:
                r["ended"] = True
        elif isinstance(event, h2.events.DataReceived) and r is not None:
            r["data"] += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_ended:
                r["ended"] = True
        elif isinstance(event, h2.events.TrailersReceived) and r is not None:
            r["trailers"] = dict(event.headers)
            r["ended"] = True
        elif isinstance(event, h2.events.StreamEnded) and r is not None:
            r["ended"] = True
        elif isinstance(event, h2.events.StreamReset) and r is not None:
            r["reset"] = event.error_code
            r["ended"] = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event.error_code
            self.closed = True

    def status(self, stream):
        r = self.responses[stream]
        for block in (r["trailers"], r["headers"]):
            if block and "grpc-status" in block:
                return int(block["grpc-status"]), block.get("grpc-message", "")
        return None, None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def healthy(addr):
    """A normal unary call on a fresh connection succeeds."""
    conn = Conn(addr)
    try:
        stream = conn.start(SAY, envelope(proto_string(1, "I feel happy.")))
        conn.pump(lambda: conn.responses[stream]["ended"], time.monotonic() + 10)
        code, message = conn.status(stream)
        if code != 0:
            raise Failed(f"a normal call failed afterwards: {code} {message}")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------
# Scenarios: each returns a short description of what happened; raises Failed otherwise.


def rapid_reset(addr):
    """2,000 streams opened and reset at once (CVE-2023-44487)."""
    conn = Conn(addr)
    sent = 0
    try:
        for _ in range(2000):
            if conn.closed:
                break
            stream = conn.h2.get_next_available_stream_id()
            conn.h2.send_headers(stream, conn.headers(SAY), end_stream=False)
            conn.h2.reset_stream(stream)
            sent += 1
            if sent % 100 == 0:
                conn.flush()
        conn.flush()
    except (BrokenPipeError, ConnectionResetError, h2.exceptions.ProtocolError):
        conn.closed = True
    try:
        conn.pump(lambda: False, time.monotonic() + 1.0)
    except Failed:
        pass  # still open after a second: the server shrugged the resets off
    conn.close()
    return f"{sent} streams reset; connection {'closed' if conn.closed else 'kept'}"


def continuation_flood(addr):
    """A header block that never ends: CONTINUATION frames without END_HEADERS."""
    conn = Conn(addr)
    encoder = hpack.Encoder()
    block = encoder.encode(conn.headers(SAY))
    headers = HeadersFrame(1)
    headers.data = block
    sent = 0
    chunk = ContinuationFrame(1)
    chunk.data = b"\x00" * 16000  # literal, never-indexed fragments; never END_HEADERS
    frame = chunk.serialize()
    try:
        conn.sock.sendall(headers.serialize())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sent < 64 * 1024 * 1024:
            conn.sock.sendall(frame)
            sent += len(frame)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        conn.closed = True
    conn.close()
    if not conn.closed:
        raise Failed(f"the server took {sent} bytes of CONTINUATION without closing")
    return f"closed after {sent // 1024} KiB of CONTINUATION"


def hpack_bomb(addr):
    """One 4 KiB header value in the dynamic table, then referenced 4,000 times (16 MiB
    decoded from ~4 KiB on the wire)."""
    conn = Conn(addr)
    stream = conn.h2.get_next_available_stream_id()
    encoder = hpack.Encoder()
    first = encoder.encode(conn.headers(SAY) + [("x-bomb", "b" * 4000)])
    index = 62  # the newest dynamic entry (after the 61 static ones)
    refs = bytes([0x80 | index]) * 4000  # an indexed header field, one byte each
    frame = HeadersFrame(stream)
    frame.data = first + refs
    frame.flags.add("END_HEADERS")
    frame.flags.add("END_STREAM")
    conn.responses[stream] = {"headers": None, "data": b"", "trailers": None, "reset": None, "ended": False}
    try:
        conn.sock.sendall(frame.serialize())
        conn.pump(lambda: conn.responses[stream]["ended"], time.monotonic() + 10)
    except (BrokenPipeError, ConnectionResetError):
        conn.closed = True
    r = conn.responses[stream]
    conn.close()
    if conn.closed or r["reset"] is not None:
        return "refused (stream reset or connection closed)"
    status = (r["headers"] or {}).get(":status")
    if status in ("400", "431"):
        return f"refused with HTTP {status}"
    raise Failed(f"the bomb was accepted: {r['headers']}")


def ping_flood(addr):
    """50,000 PINGs written without reading the answers."""
    conn = Conn(addr)
    sent = 0
    try:
        for i in range(50000):
            conn.h2.ping(struct.pack(">Q", i))
            if i % 1000 == 999:
                conn.flush()
            sent += 1
        conn.flush()
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        conn.closed = True
    conn.close()
    return f"{sent} pings; connection {'closed' if conn.closed else 'kept'}"


def settings_flood(addr):
    """20,000 SETTINGS frames written without reading the acknowledgements."""
    conn = Conn(addr)
    sent = 0
    try:
        for i in range(20000):
            conn.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100 + i % 7})
            if i % 500 == 499:
                conn.flush()
            sent += 1
        conn.flush()
    except (BrokenPipeError, ConnectionResetError, socket.timeout, h2.exceptions.ProtocolError):
        conn.closed = True
    conn.close()
    return f"{sent} SETTINGS; connection {'closed' if conn.closed else 'kept'}"


def zero_window_readers(addr):
    """50 server streams on connections that never open their flow-control window: the
    server holds what it cannot send, no more."""
    conns = []
    for _ in range(50):
        conn = Conn(addr, window=0)
        conn.start("/connectrpc.eliza.v1.ElizaService/Introduce", envelope(proto_string(1, "Ada")))
        conns.append(conn)
    time.sleep(1.0)
    healthy(addr)
    for conn in conns:
        conn.close()
    return "50 stalled server streams held; others served"


def huge_length_prefix(addr):
    """A gRPC envelope declaring 4 GiB."""
    conn = Conn(addr)
    stream = conn.start(SAY, envelope(b"\x0a\x01x", declared=0xFFFFFFFF))
    conn.pump(lambda: conn.responses[stream]["ended"], time.monotonic() + 10)
    code, message = conn.status(stream)
    conn.close()
    if code != 8:
        raise Failed(f"want resource_exhausted (8), got {code} {message!r}")
    return "resource_exhausted"


def compression_bomb(addr):
    """64 MiB of zeros gzipped to ~64 KiB."""
    bomb = gzip.compress(proto_string(1, b"\x00" * (64 * 1024 * 1024)), compresslevel=9)
    conn = Conn(addr)
    stream = conn.start(SAY, envelope(bomb, compressed=True), extra=[("grpc-encoding", "gzip")])
    conn.pump(lambda: conn.responses[stream]["ended"], time.monotonic() + 20)
    code, message = conn.status(stream)
    conn.close()
    if code != 8:
        raise Failed(f"want resource_exhausted (8), got {code} {message!r}")
    return f"{len(bomb) // 1024} KiB on the wire: resource_exhausted"


def deep_json(addr):
    """Connect JSON nested 100,000 levels deep."""
    depth = 100000
    body = ('{"sentence":' + "[" * depth + "]" * depth + "}").encode()
    conn = Conn(addr)
    stream = conn.start(SAY, body, content_type="application/json", extra=[("connect-protocol-version", "1")])
    conn.pump(lambda: conn.responses[stream]["ended"], time.monotonic() + 10)
    r = conn.responses[stream]
    conn.close()
    status = (r["headers"] or {}).get(":status")
    if status != "400":
        raise Failed(f"want HTTP 400 invalid_argument, got {status} {r['data'][:200]!r}")
    return "invalid_argument"


def stream_burst(addr):
    """150 bidi streams opened together with a small first message each: all answered."""
    conn = Conn(addr)
    streams = [
        conn.start(CONVERSE, envelope(proto_string(1, f"Hello {i}")), end=True) for i in range(150)
    ]
    conn.pump(lambda: all(conn.responses[s]["ended"] for s in streams), time.monotonic() + 20)
    if conn.closed:
        raise Failed(f"the connection was closed (GOAWAY {conn.goaway})")
    bad = [s for s in streams if conn.status(s)[0] != 0]
    conn.close()
    if bad:
        raise Failed(f"{len(bad)} of 150 streams failed")
    return "150 of 150 answered"


def long_error_message(addr):
    """A health check for a 1 MiB service name: the error quoting it stays small."""
    conn = Conn(addr)
    stream = conn.start(CHECK, envelope(proto_string(1, "s" * (1024 * 1024))))
    conn.pump(lambda: conn.responses[stream]["ended"], time.monotonic() + 10)
    code, message = conn.status(stream)
    conn.close()
    if code != 5:
        raise Failed(f"want not_found (5), got {code}")
    if len(message) > 8 * 1024:
        raise Failed(f"grpc-message is {len(message)} bytes")
    return f"not_found, grpc-message {len(message)} bytes"


def silent_connections(addr):
    """200 connections that send nothing, and one trickling a body a byte per second: all
    closed once the demo's limits (10 s) pass."""
    socks = []
    host, port = addr.rsplit(":", 1)
    for index in range(200):
        # A generous connect timeout: on a loaded machine (or a sandboxed network stack)
        # a SYN may wait for the server's accept queue; what this scenario measures is how
        # the server closes connections, not how fast it accepts them.
        try:
            socks.append(socket.create_connection((host, int(port)), timeout=15))
        except OSError as error:
            for s in socks:
                s.close()
            raise Failed(f"connection {index + 1} of 200 could not be opened: {error}")
    trickle = Conn(addr)
    stream = trickle.start(SAY, None, end=False)
    trickle.h2.send_data(stream, envelope(b"\x0a\x10" + b"x" * 16)[:3], end_stream=False)
    trickle.flush()
    deadline = time.monotonic() + 30
    open_socks = list(socks)
    while open_socks and time.monotonic() < deadline:
        still = []
        for s in open_socks:
            s.settimeout(0.01)
            try:
                if s.recv(1024) == b"":
                    s.close()
                    continue
            except socket.timeout:
                pass
            except (ConnectionResetError, OSError):
                s.close()
                continue
            still.append(s)
        open_socks = still
        # one byte a second to the trickling stream
        try:
            trickle.h2.send_data(stream, b"x", end_stream=False)
            trickle.flush()
        except Exception:
            pass
        time.sleep(1)
    try:
        trickle.pump(lambda: trickle.responses[stream]["ended"], time.monotonic() + 5)
    except Failed:
        pass
    code, message = trickle.status(stream)
    trickle.close()
    for s in open_socks:
        s.close()
    if open_socks:
        raise Failed(f"{len(open_socks)} of 200 silent connections still open after 30 s")
    if code != 4:
        raise Failed(f"the trickled call was not cut with deadline_exceeded: {code} {message!r}")
    return "200 silent closed; trickled body cut (deadline_exceeded)"


def stream_flood(addr):
    """1,500 streams opened on one connection with raw HEADERS frames, ignoring the server's
    advertised limit of 1,000: the streams beyond it are refused (REFUSED_STREAM), or the
    connection is closed."""
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
    encoder = hpack.Encoder()
    fields = Conn.headers(None, SAY)
    opened = 0
    closed = False
    try:
        for n in range(1500):
            frame = HeadersFrame(2 * n + 1)
            frame.data = encoder.encode(fields)
            frame.flags.add("END_HEADERS")  # no END_STREAM: each stream stays open
            sock.sendall(frame.serialize())
            opened += 1
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    refused = 0
    buffer = b""
    deadline = time.monotonic() + 10
    while not closed and refused < 500 and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not data:
            closed = True
            break
        buffer += data
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[0:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, payload = buffer[3], buffer[9 : 9 + length]
            buffer = buffer[9 + length :]
            if kind == 0x3 and int.from_bytes(payload[0:4], "big") == 0x7:  # RST_STREAM REFUSED
                refused += 1
            elif kind == 0x7:  # GOAWAY
                closed = True
    sock.close()
    if refused >= 500:
        return f"{opened} streams opened: {refused} refused (REFUSED_STREAM)"
    if closed:
        return f"{opened} streams opened: connection closed after {refused} refused"
    raise Failed(f"{opened} streams opened and only {refused} refused; the connection stayed open")


def gzip_amplification(addr):
    """40 unary calls whose 4 KiB gzip request decompresses to 4 MiB, on connections that
    never read a reply (zero window): memory stays bounded while they are handled (held,
    they would take 320 MiB; the demo is a debug build in CI, where each call costs about
    0.2 s of CPU, so the count is kept small)."""
    payload = gzip.compress(proto_string(1, b"a" * (4 * 1024 * 1024 - 64)), compresslevel=9)
    conns = [Conn(addr, window=0) for _ in range(2)]
    streams = []
    for conn in conns:
        for _ in range(20):
            stream = conn.start(SAY, envelope(payload, compressed=True), extra=[("grpc-encoding", "gzip")])
            streams.append((conn, stream))
    deadline = time.monotonic() + 60
    for conn in conns:
        conn.pump(lambda: all(conn.responses[s]["headers"] is not None for c, s in streams if c is conn),
                  deadline)
    answered = sum(1 for conn, s in streams if conn.responses[s]["headers"] is not None)
    for conn in conns:
        conn.close()
    if answered != len(streams):
        raise Failed(f"only {answered} of {len(streams)} calls answered")
    return f"{len(streams)} calls of {len(payload)} bytes on the wire, 4 MiB each decompressed, replies unread"


SCENARIOS = [
    # (function, allowed RSS growth in MiB)
    (rapid_reset, 64),
    (continuation_flood, 64),
    (hpack_bomb, 64),
    (ping_flood, 64),
    (settings_flood, 64),
    (zero_window_readers, 64),
    (huge_length_prefix, 16),
    (compression_bomb, 64),
    (deep_json, 64),
    (stream_burst, 64),
    (stream_flood, 64),
    (gzip_amplification, 64),
    (long_error_message, 64),
    (silent_connections, 64),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    failed = 0
    healthy(args.addr)
    for scenario, growth_mib in SCENARIOS:
        name = scenario.__name__
        if args.only and name not in args.only.split(","):
            continue
        before = rss_kib(args.pid)
        started = time.monotonic()
        try:
            outcome = scenario(args.addr)
            healthy(args.addr)
            grew = (rss_kib(args.pid) - before) / 1024
            if grew > growth_mib:
                raise Failed(f"RSS grew {grew:.1f} MiB (limit {growth_mib})")
            verdict = "pass"
        except Failed as error:
            outcome = str(error)
            grew = (rss_kib(args.pid) - before) / 1024
            verdict = "FAIL"
            failed += 1
        except Exception as error:  # noqa: BLE001 - report, do not crash the suite
            outcome = f"{type(error).__name__}: {error}"
            grew = (rss_kib(args.pid) - before) / 1024
            verdict = "FAIL"
            failed += 1
        took = time.monotonic() - started
        print(f"{name:<20} {verdict:<4} {took:6.1f}s  RSS {grew:+7.1f} MiB  {outcome}", flush=True)
    print(f"attack: {len(SCENARIOS) - failed if not args.only else '-'} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
