#!/usr/bin/env bash
# Builds the Go benchmark servers: cmd/connect-echo (connectrpc.com/connect) and
# cmd/grpc-echo (google.golang.org/grpc); and cmd/connect-h3 (connect-go over quic-go's
# HTTP/3: a server, a checker and a load generator).
#
#   benches/go/build.sh TOOLS_DIR OUT_DIR
#
# TOOLS_DIR caches the protoc plugins and the protogen driver (e.g.
#   ~/.cache/switchboard/tools/bench-go); OUT_DIR receives the three binaries.
# Both may also be given as environment variables of the same names.
#
# Needs only the Go toolchain. The code for ../proto/bench/v1/echo.proto is generated
# into gen/ (git-ignored) on every run: tools/protogen compiles the schema with the
# pure-Go protocompile and runs the plugins, so no system protoc is needed. Plugin
# versions: protoc-gen-go and protoc-gen-connect-go follow the runtime versions in
# go.mod, so generated code always matches its runtime; protoc-gen-go-grpc is its own
# module and is pinned below. Re-running is cheap: installed plugins are kept when
# their recorded module version matches, and go's build cache does the rest.
set -euo pipefail

TOOLS_DIR=${1:-${TOOLS_DIR:?usage: build.sh TOOLS_DIR OUT_DIR}}
OUT_DIR=${2:-${OUT_DIR:?usage: build.sh TOOLS_DIR OUT_DIR}}
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

# Resolve both directories against the caller's working directory before moving.
mkdir -p "$TOOLS_DIR/bin" "$OUT_DIR"
bin=$(cd "$TOOLS_DIR/bin" && pwd)
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")"

# The version of a module as this module's go.mod requires it.
required() { go list -m -f '{{.Version}}' "$1"; }

# install PACKAGE MODULE VERSION: `go install PACKAGE@VERSION` into $bin unless the
# binary there was already built from MODULE at VERSION.
install() {
	local pkg=$1 module=$2 version=$3 exe
	exe="$bin/$(basename "$pkg")"
	if [[ -x $exe ]] && go version -m "$exe" | grep -qE "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
		return
	fi
	echo "installing $pkg@$version" >&2
	GOBIN=$bin go install "$pkg@$version"
}

install google.golang.org/protobuf/cmd/protoc-gen-go \
	google.golang.org/protobuf "$(required google.golang.org/protobuf)"
install connectrpc.com/connect/cmd/protoc-gen-connect-go \
	connectrpc.com/connect "$(required connectrpc.com/connect)"
install google.golang.org/grpc/cmd/protoc-gen-go-grpc \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

# The driver lives in this module, so go.sum pins its compiler.
go build -o "$bin/protogen" ./tools/protogen

# Regenerate from scratch so that nothing stale survives a schema change.
rm -rf gen
"$bin/protogen" -I ../proto -out . \
	-plugin "$bin/protoc-gen-go:module=switchboard.bench/echo" \
	-plugin "$bin/protoc-gen-go-grpc:module=switchboard.bench/echo" \
	-plugin "$bin/protoc-gen-connect-go:module=switchboard.bench/echo" \
	bench/v1/echo.proto

go build -o "$OUT_DIR/connect-echo" ./cmd/connect-echo
go build -o "$OUT_DIR/grpc-echo" ./cmd/grpc-echo
go build -o "$OUT_DIR/connect-h3" ./cmd/connect-h3
