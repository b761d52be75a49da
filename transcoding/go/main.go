// Command vanguard-library serves transcoding/proto's LibraryService with connect-go behind
// connectrpc.com/vanguard's transcoder: the reference side of `cargo xtask transcoding`.
//
// The handlers follow transcoding/README.md exactly (each answer is a function of the request
// alone); the switchboard side implements the same rules in Rust. The transcoder serves REST
// from the google.api.http annotations, and Connect, gRPC and gRPC-Web as vanguard does by
// default, over HTTP/1.1 on 127.0.0.1.
//
// The code it imports from switchboard.test/library/v1 is generated into a build directory
// (protoc-gen-go and protoc-gen-connect-go, pinned by this module's tool directives), never
// committed. It prints "vanguard-library listening on http://ADDR" once it accepts connections.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	libraryv1 "switchboard.test/library/v1"
	"switchboard.test/library/v1/libraryv1connect"
)

func main() {
	port := flag.Int("port", 0, "loopback port to listen on (0 picks a free one)")
	flag.Parse()

	handlerPath, handler := libraryv1connect.NewLibraryServiceHandler(library{})
	transcoder, err := vanguard.NewTranscoder([]*vanguard.Service{
		vanguard.NewService(handlerPath, handler),
	})
	if err != nil {
		log.Fatalf("vanguard.NewTranscoder: %v", err)
	}
	listener, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := &http.Server{
		Handler:           transcoder,
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Printf("vanguard-library listening on http://%s (REST through vanguard, Connect, gRPC-Web)\n", listener.Addr())
	if err := server.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		os.Exit(1)
	}
}

// library implements transcoding/README.md's rules.
type library struct {
	libraryv1connect.UnimplementedLibraryServiceHandler
}

// notFound is the README's not_found error: "<name> not found".
func notFound(name string) error {
	return connect.NewError(connect.CodeNotFound, errors.New(name+" not found"))
}

func (library) GetShelf(_ context.Context, req *connect.Request[libraryv1.GetShelfRequest]) (*connect.Response[libraryv1.Shelf], error) {
	name := req.Msg.GetName()
	if name == "shelves/missing" {
		return nil, notFound(name)
	}
	return connect.NewResponse(&libraryv1.Shelf{Name: name, Theme: "theme of " + name}), nil
}

func (library) ListShelves(_ context.Context, req *connect.Request[libraryv1.ListShelvesRequest]) (*connect.Response[libraryv1.ListShelvesResponse], error) {
	size := req.Msg.GetPageSize()
	token := req.Msg.GetPageToken()
	res := &libraryv1.ListShelvesResponse{}
	for i := int32(1); i <= min(size, 3); i++ {
		res.Shelves = append(res.Shelves, &libraryv1.Shelf{Name: fmt.Sprintf("shelves/%d", i), Theme: token})
	}
	if size > 3 {
		res.NextPageToken = token + "+"
	}
	return connect.NewResponse(res), nil
}

func (library) CreateShelf(_ context.Context, req *connect.Request[libraryv1.CreateShelfRequest]) (*connect.Response[libraryv1.Shelf], error) {
	id := req.Msg.GetShelfId()
	if id == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("shelf_id is required"))
	}
	return connect.NewResponse(&libraryv1.Shelf{Name: "shelves/" + id, Theme: req.Msg.GetShelf().GetTheme()}), nil
}

func (library) DeleteShelf(_ context.Context, req *connect.Request[libraryv1.DeleteShelfRequest]) (*connect.Response[emptypb.Empty], error) {
	name := req.Msg.GetName()
	if name == "shelves/missing" {
		return nil, notFound(name)
	}
	return connect.NewResponse(&emptypb.Empty{}), nil
}

func (library) GetBook(_ context.Context, req *connect.Request[libraryv1.GetBookRequest]) (*connect.Response[libraryv1.Book], error) {
	name := req.Msg.GetName()
	if strings.HasSuffix(name, "missing") {
		return nil, notFound(name)
	}
	return connect.NewResponse(&libraryv1.Book{Name: name, Title: "Title of " + name}), nil
}

// books is ListBooks's answer, which ListBookTitles, CountBooks and StreamBooks share.
func books(req *libraryv1.ListBooksRequest) *libraryv1.ListBooksResponse {
	size := req.GetPageSize()
	res := &libraryv1.ListBooksResponse{TotalSize: int64(size)}
	for i := int32(1); i <= min(size, 3); i++ {
		res.Books = append(res.Books, &libraryv1.Book{
			Name:  fmt.Sprintf("%s/books/%d", req.GetParent(), i),
			Title: req.GetFilter(),
		})
		res.Titles = append(res.Titles, fmt.Sprintf("title %d", i))
	}
	return res
}

func (library) ListBooks(_ context.Context, req *connect.Request[libraryv1.ListBooksRequest]) (*connect.Response[libraryv1.ListBooksResponse], error) {
	return connect.NewResponse(books(req.Msg)), nil
}

func (library) ListBookTitles(_ context.Context, req *connect.Request[libraryv1.ListBooksRequest]) (*connect.Response[libraryv1.ListBooksResponse], error) {
	return connect.NewResponse(books(req.Msg)), nil
}

func (library) CountBooks(_ context.Context, req *connect.Request[libraryv1.ListBooksRequest]) (*connect.Response[libraryv1.ListBooksResponse], error) {
	return connect.NewResponse(books(req.Msg)), nil
}

func (library) CreateBook(_ context.Context, req *connect.Request[libraryv1.CreateBookRequest]) (*connect.Response[libraryv1.Book], error) {
	book := &libraryv1.Book{}
	if req.Msg.GetBook() != nil {
		book = proto.CloneOf(req.Msg.GetBook())
	}
	book.Name = req.Msg.GetParent() + "/books/" + req.Msg.GetBookId()
	return connect.NewResponse(book), nil
}

func (library) UpdateBook(_ context.Context, req *connect.Request[libraryv1.UpdateBookRequest]) (*connect.Response[libraryv1.Book], error) {
	book := &libraryv1.Book{}
	if req.Msg.GetBook() != nil {
		book = proto.CloneOf(req.Msg.GetBook())
	}
	book.Title = book.GetTitle() + " [" + strings.Join(req.Msg.GetUpdateMask().GetPaths(), ",") + "]"
	return connect.NewResponse(book), nil
}

func (library) MoveBook(_ context.Context, req *connect.Request[libraryv1.MoveBookRequest]) (*connect.Response[libraryv1.Book], error) {
	name := req.Msg.GetName()
	last := name[strings.LastIndex(name, "/")+1:]
	return connect.NewResponse(&libraryv1.Book{Name: req.Msg.GetOtherShelfName() + "/books/" + last}), nil
}

func (library) CheckoutBook(_ context.Context, req *connect.Request[libraryv1.CheckoutBookRequest]) (*connect.Response[libraryv1.Book], error) {
	return connect.NewResponse(&libraryv1.Book{Name: req.Msg.GetName(), Title: "checked out by " + req.Msg.GetReader()}), nil
}

func (library) Search(_ context.Context, req *connect.Request[libraryv1.SearchRequest]) (*connect.Response[libraryv1.SearchRequest], error) {
	return connect.NewResponse(req.Msg), nil
}

func (library) UploadCover(_ context.Context, req *connect.Request[libraryv1.UploadCoverRequest]) (*connect.Response[libraryv1.Book], error) {
	cover := req.Msg.GetCover()
	return connect.NewResponse(&libraryv1.Book{
		Name:       req.Msg.GetName(),
		CoverType:  cover.GetContentType(),
		CoverBytes: int32(len(cover.GetData())),
	}), nil
}

func (library) DownloadCover(_ context.Context, req *connect.Request[libraryv1.DownloadCoverRequest]) (*connect.Response[httpbody.HttpBody], error) {
	name := req.Msg.GetName()
	if strings.HasSuffix(name, "nocover") {
		return connect.NewResponse(&httpbody.HttpBody{}), nil
	}
	return connect.NewResponse(&httpbody.HttpBody{ContentType: "image/x-test", Data: []byte("cover of " + name)}), nil
}

func (library) StreamPages(_ context.Context, req *connect.Request[libraryv1.StreamPagesRequest], stream *connect.ServerStream[httpbody.HttpBody]) error {
	count := req.Msg.GetCount()
	if count > 5 {
		if err := stream.Send(page(req.Msg.GetName(), 1)); err != nil {
			return err
		}
		return connect.NewError(connect.CodeOutOfRange, errors.New("no page 6"))
	}
	for i := int32(1); i <= count; i++ {
		if err := stream.Send(page(req.Msg.GetName(), i)); err != nil {
			return err
		}
	}
	return nil
}

func page(name string, i int32) *httpbody.HttpBody {
	return &httpbody.HttpBody{ContentType: "text/plain", Data: fmt.Appendf(nil, "page %d of %s\n", i, name)}
}

func (library) StreamBooks(_ context.Context, req *connect.Request[libraryv1.ListBooksRequest], stream *connect.ServerStream[libraryv1.Book]) error {
	for _, book := range books(req.Msg).GetBooks() {
		if err := stream.Send(book); err != nil {
			return err
		}
	}
	if req.Msg.GetFilter() == "fail" {
		return connect.NewError(connect.CodeAborted, errors.New("stopped"))
	}
	return nil
}

func (library) Fail(_ context.Context, req *connect.Request[libraryv1.FailRequest]) (*connect.Response[emptypb.Empty], error) {
	code := req.Msg.GetCode()
	if code < 1 || code > 16 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("no such code"))
	}
	err := connect.NewError(connect.Code(code), errors.New(req.Msg.GetMessage()))
	if req.Msg.GetWithDetail() {
		detail, detailErr := connect.NewErrorDetail(&errdetails.ErrorInfo{
			Reason:   "FAILED",
			Domain:   "library.example",
			Metadata: map[string]string{"code": strconv.Itoa(int(code))},
		})
		if detailErr != nil {
			return nil, detailErr
		}
		err.AddDetail(detail)
	}
	return nil, err
}
