//! The switchboard side of the REST transcoding differential test: `proto/`'s
//! `LibraryService`, implemented by [`Library`] after the rules of this crate's README (each
//! answer a function of the request alone), and the [`router`] that serves it.
//!
//! `cargo xtask transcoding` runs the `library-server` binary beside connect-go behind
//! vanguard (`go/`), which implements the same rules, and compares their answers to the REST
//! requests of `corpus.json`. This crate's tests call the handlers over RPC (Connect), so
//! the rules are checked apart from REST.

use futures_util::StreamExt as _;
use switchboard::error_details::ErrorInfo;
use switchboard::{Code, Error, ErrorDetail, Request, Response, ResponseStream};

/// Code generated from `proto/` (the library service and the `google.api` types it uses).
#[allow(missing_docs)]
pub mod proto {
    /// `switchboard.*` packages.
    pub mod switchboard {
        /// `switchboard.library.*` packages.
        pub mod library {
            /// `switchboard.library.v1`: the library service.
            pub mod v1 {
                switchboard::include_proto!("switchboard.library.v1");
            }
        }
    }
    /// `google.*` packages.
    pub mod google {
        /// `google.api`: the HTTP rule annotations and `HttpBody`.
        pub mod api {
            switchboard::include_proto!("google.api");
        }
    }
}

use proto::google::api::HttpBody;
use proto::switchboard::library::v1::*;

/// Shelf and book listings never have more than this many entries.
const MAX_PAGE: i32 = 3;
/// StreamPages sends at most this many pages; asking for more fails after the first.
const MAX_PAGES: i32 = 5;

/// The README's handlers. Stateless: the same request always gets the same answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Library;

/// The router serving [`Library`]: REST from the `google.api.http` annotations, beside
/// Connect, gRPC and gRPC-Web.
pub fn router() -> switchboard::server::Router {
    switchboard::server::Router::new()
        .rest(switchboard::server::Rest::default())
        .add_service(LibraryServiceServer::new(Library))
}

/// The README's `not_found`: `<name> not found`.
fn not_found(name: &str) -> Error {
    Error::new(Code::NotFound, format!("{name} not found"))
}

/// ListBooks's answer, which ListBookTitles, CountBooks and StreamBooks share.
fn books(request: &ListBooksRequest) -> ListBooksResponse {
    let count = request.page_size.clamp(0, MAX_PAGE);
    let books = (1..=count)
        .map(|i| Book {
            name: format!("{}/books/{i}", request.parent),
            title: request.filter.clone(),
            ..Default::default()
        })
        .collect();
    ListBooksResponse {
        books,
        titles: (1..=count).map(|i| format!("title {i}")).collect(),
        total_size: i64::from(request.page_size),
    }
}

/// StreamPages's page `i` of `name`.
fn page(name: &str, i: i32) -> HttpBody {
    HttpBody {
        content_type: "text/plain".to_owned(),
        data: format!("page {i} of {name}\n").into_bytes(),
        extensions: Vec::new(),
    }
}

impl LibraryService for Library {
    async fn get_shelf(&self, request: Request<GetShelfRequest>) -> Result<Response<Shelf>, Error> {
        let name = request.into_message().name;
        if name == "shelves/missing" {
            return Err(not_found(&name));
        }
        Ok(Response::new(Shelf {
            theme: format!("theme of {name}"),
            name,
        }))
    }

    async fn list_shelves(
        &self,
        request: Request<ListShelvesRequest>,
    ) -> Result<Response<ListShelvesResponse>, Error> {
        let request = request.into_message();
        let count = request.page_size.clamp(0, MAX_PAGE);
        let shelves = (1..=count)
            .map(|i| Shelf {
                name: format!("shelves/{i}"),
                theme: request.page_token.clone(),
            })
            .collect();
        let next_page_token = if request.page_size > MAX_PAGE {
            format!("{}+", request.page_token)
        } else {
            String::new()
        };
        Ok(Response::new(ListShelvesResponse {
            shelves,
            next_page_token,
        }))
    }

    async fn create_shelf(
        &self,
        request: Request<CreateShelfRequest>,
    ) -> Result<Response<Shelf>, Error> {
        let request = request.into_message();
        if request.shelf_id.is_empty() {
            return Err(Error::new(Code::InvalidArgument, "shelf_id is required"));
        }
        Ok(Response::new(Shelf {
            name: format!("shelves/{}", request.shelf_id),
            theme: request.shelf.unwrap_or_default().theme,
        }))
    }

    async fn delete_shelf(
        &self,
        request: Request<DeleteShelfRequest>,
    ) -> Result<Response<()>, Error> {
        let name = &request.message().name;
        if name == "shelves/missing" {
            return Err(not_found(name));
        }
        Ok(Response::new(()))
    }

    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Error> {
        let name = request.into_message().name;
        if name.ends_with("missing") {
            return Err(not_found(&name));
        }
        Ok(Response::new(Book {
            title: format!("Title of {name}"),
            name,
            ..Default::default()
        }))
    }

    async fn list_books(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksResponse>, Error> {
        Ok(Response::new(books(request.message())))
    }

    async fn list_book_titles(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksResponse>, Error> {
        Ok(Response::new(books(request.message())))
    }

    async fn count_books(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksResponse>, Error> {
        Ok(Response::new(books(request.message())))
    }

    async fn create_book(
        &self,
        request: Request<CreateBookRequest>,
    ) -> Result<Response<Book>, Error> {
        let request = request.into_message();
        Ok(Response::new(Book {
            name: format!("{}/books/{}", request.parent, request.book_id),
            ..request.book.unwrap_or_default()
        }))
    }

    async fn update_book(
        &self,
        request: Request<UpdateBookRequest>,
    ) -> Result<Response<Book>, Error> {
        let request = request.into_message();
        let mut book = request.book.unwrap_or_default();
        let paths = request.update_mask.unwrap_or_default().paths.join(",");
        book.title = format!("{} [{paths}]", book.title);
        Ok(Response::new(book))
    }

    async fn move_book(&self, request: Request<MoveBookRequest>) -> Result<Response<Book>, Error> {
        let request = request.into_message();
        let last = request.name.rsplit('/').next().unwrap_or_default();
        Ok(Response::new(Book {
            name: format!("{}/books/{last}", request.other_shelf_name),
            ..Default::default()
        }))
    }

    async fn checkout_book(
        &self,
        request: Request<CheckoutBookRequest>,
    ) -> Result<Response<Book>, Error> {
        let request = request.into_message();
        Ok(Response::new(Book {
            name: request.name,
            title: format!("checked out by {}", request.reader),
            ..Default::default()
        }))
    }

    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchRequest>, Error> {
        Ok(Response::new(request.into_message()))
    }

    async fn upload_cover(
        &self,
        request: Request<UploadCoverRequest>,
    ) -> Result<Response<Book>, Error> {
        let request = request.into_message();
        let cover = request.cover.unwrap_or_default();
        Ok(Response::new(Book {
            name: request.name,
            cover_type: cover.content_type,
            cover_bytes: i32::try_from(cover.data.len()).unwrap_or(i32::MAX),
            ..Default::default()
        }))
    }

    async fn download_cover(
        &self,
        request: Request<DownloadCoverRequest>,
    ) -> Result<Response<HttpBody>, Error> {
        let name = &request.message().name;
        if name.ends_with("nocover") {
            return Ok(Response::new(HttpBody::default()));
        }
        Ok(Response::new(HttpBody {
            content_type: "image/x-test".to_owned(),
            data: format!("cover of {name}").into_bytes(),
            extensions: Vec::new(),
        }))
    }

    async fn stream_pages(
        &self,
        request: Request<StreamPagesRequest>,
    ) -> Result<Response<ResponseStream<HttpBody>>, Error> {
        let request = request.into_message();
        let pages: Vec<Result<HttpBody, Error>> = if request.count > MAX_PAGES {
            vec![
                Ok(page(&request.name, 1)),
                Err(Error::new(
                    Code::OutOfRange,
                    format!("no page {}", MAX_PAGES + 1),
                )),
            ]
        } else {
            (1..=request.count)
                .map(|i| Ok(page(&request.name, i)))
                .collect()
        };
        Ok(Response::new(
            futures_util::stream::iter(pages).boxed() as ResponseStream<HttpBody>
        ))
    }

    async fn stream_books(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ResponseStream<Book>>, Error> {
        let books = books(request.message()).books;
        let mut items: Vec<Result<Book, Error>> = books.into_iter().map(Ok).collect();
        if request.message().filter == "fail" {
            items.push(Err(Error::new(Code::Aborted, "stopped")));
        }
        Ok(Response::new(
            futures_util::stream::iter(items).boxed() as ResponseStream<Book>
        ))
    }

    async fn fail(&self, request: Request<FailRequest>) -> Result<Response<()>, Error> {
        let request = request.into_message();
        let Some(code) = Code::from_i32(request.code).filter(|_| (1..=16).contains(&request.code))
        else {
            return Err(Error::new(Code::InvalidArgument, "no such code"));
        };
        let mut error = Error::new(code, request.message);
        if request.with_detail {
            error.add_detail(ErrorDetail::new(&ErrorInfo {
                reason: "FAILED".to_owned(),
                domain: "library.example".to_owned(),
                metadata: [("code".to_owned(), request.code.to_string())].into(),
            }));
        }
        Err(error)
    }
}
