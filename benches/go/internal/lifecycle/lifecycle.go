// Package lifecycle holds the start-up and shutdown contract that the benchmark
// harness expects of every server: an --addr flag, one "listening on <addr>" line
// on stdout once the socket is bound, and a prompt, graceful exit with status 0 on
// SIGTERM or SIGINT.
package lifecycle

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// DrainTimeout bounds how long a server waits for in-flight calls after a signal
// before closing what is left. The harness (and valgrind writing its output) wants
// the process gone within a second, so this leaves margin for closing and exiting.
const DrainTimeout = 500 * time.Millisecond

// Start parses the command line, installs the signal handler, binds a TCP listener
// on --addr and announces it. The returned channel receives SIGTERM or SIGINT.
//
// Signals are caught before the announcement so that a harness stopping the server
// right after reading the line still gets a graceful exit, and the socket is bound
// before it so that the harness may connect as soon as it reads the line.
func Start() (net.Listener, <-chan os.Signal) {
	addr := flag.String("addr", "127.0.0.1:8080", "TCP address to serve on")
	flag.Parse()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	// os.Stdout is unbuffered, so the line is out as soon as Println returns.
	fmt.Println("listening on", listener.Addr())
	return listener, signals
}
