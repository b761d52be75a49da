// Command protogen is a minimal stand-in for protoc: it compiles .proto files with
// the pure-Go compiler github.com/bufbuild/protocompile and feeds the result to
// ordinary protoc plugins (protoc-gen-go, protoc-gen-go-grpc, protoc-gen-connect-go).
//
// It exists so that building the Go benchmark servers needs nothing but the Go
// toolchain: no system protoc, no root, and every version pinned in go.sum.
//
// Usage:
//
//	protogen -I DIR -out DIR -plugin PATH[:PARAM] [-plugin ...] FILE.proto...
//
// FILE names are relative to the -I directory, as they would be for protoc.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// stringList collects a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var importPaths, plugins stringList
	flag.Var(&importPaths, "I", "import path to search for .proto files (repeatable)")
	flag.Var(&plugins, "plugin", "plugin executable, optionally followed by :PARAMETER (repeatable)")
	out := flag.String("out", ".", "directory that plugin output file names are relative to")
	flag.Parse()
	if err := run(importPaths, plugins, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
}

func run(importPaths, plugins []string, outDir string, files []string) error {
	if len(files) == 0 || len(plugins) == 0 {
		return errors.New("need at least one -plugin and one .proto file")
	}
	compiler := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: importPaths}),
		// Plugins copy comments from source info into the generated code.
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := compiler.Compile(context.Background(), files...)
	if err != nil {
		return err
	}
	roots := make([]protoreflect.FileDescriptor, len(compiled))
	for i, f := range compiled {
		roots[i] = f
	}
	request := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: files,
		ProtoFile:      dependencyOrder(roots),
	}
	for _, spec := range plugins {
		path, param, _ := strings.Cut(spec, ":")
		request.Parameter = nil
		if param != "" {
			request.Parameter = proto.String(param)
		}
		if err := runPlugin(path, request, outDir); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

// dependencyOrder lists every file reachable from roots with each file after all of
// its imports, which is the order a CodeGeneratorRequest requires.
func dependencyOrder(roots []protoreflect.FileDescriptor) []*descriptorpb.FileDescriptorProto {
	var ordered []*descriptorpb.FileDescriptorProto
	seen := map[string]bool{}
	var visit func(protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
		ordered = append(ordered, protodesc.ToFileDescriptorProto(fd))
	}
	for _, fd := range roots {
		visit(fd)
	}
	return ordered
}

// runPlugin speaks the protoc plugin protocol: the request on stdin, the response on
// stdout. It then writes the files the plugin produced under outDir.
func runPlugin(path string, request *pluginpb.CodeGeneratorRequest, outDir string) error {
	input, err := proto.Marshal(request)
	if err != nil {
		return err
	}
	var stdout bytes.Buffer
	cmd := exec.Command(path)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	var response pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(stdout.Bytes(), &response); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	if response.Error != nil {
		return errors.New(response.GetError())
	}
	for _, file := range response.GetFile() {
		// Insertion points are a protoc feature none of our plugins use.
		if file.GetInsertionPoint() != "" || file.GetName() == "" {
			return fmt.Errorf("unsupported output entry for %q (insertion point or unnamed file)", file.GetName())
		}
		target := filepath.Join(outDir, filepath.FromSlash(file.GetName()))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, []byte(file.GetContent()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
