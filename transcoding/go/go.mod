// The reference server of `cargo xtask transcoding`: connect-go behind vanguard, pinned
// exactly as vanguard v0.4.0's own go.mod requires its dependencies (see
// docs/design/transcoding.md §6), and the two code generators at the versions of the
// runtime libraries they generate for (`go install tool`).
module switchboard.test/library

go 1.25.0

tool (
	connectrpc.com/connect/cmd/protoc-gen-connect-go
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	connectrpc.com/connect v1.19.1
	connectrpc.com/vanguard v0.4.0
	google.golang.org/genproto/googleapis/api v0.0.0-20260223185530-2f722ef697dc
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260223185530-2f722ef697dc
	google.golang.org/protobuf v1.36.11
)
