//! The library handlers over RPC (Connect, with JSON and with binary protobuf): each rule of
//! the README, checked apart from REST, so a difference `cargo xtask transcoding` finds is
//! the transcoding's, not the handlers'.
//!
//! The tests serve [`switchboard_transcoding::router`] in process, or call the server at
//! `$LIBRARY_URL` when it is set: `cargo xtask transcoding` runs them against the Go handlers
//! behind vanguard that way, so both implementations are held to the same rules.

use switchboard::client::{Client, ClientConfig};
use switchboard::codec::Codec;
use switchboard::error_details::ErrorInfo;
use switchboard::{Code, Error};
use switchboard_transcoding::proto::switchboard::library::v1::*;

/// `$LIBRARY_URL`, else the URL of [`switchboard_transcoding::router`] served on a free
/// loopback port.
async fn serve() -> String {
    if let Ok(url) = std::env::var("LIBRARY_URL") {
        return url;
    }
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    tokio::spawn(async move {
        switchboard::server::Server::new(switchboard_transcoding::router())
            .serve_with_shutdown(listener, std::future::pending::<()>())
            .await
            .expect("serve");
    });
    format!("http://{addr}")
}

/// A Connect client of the library at `url` with `codec`.
fn client(url: &str, codec: Codec) -> LibraryServiceClient {
    LibraryServiceClient::new(
        Client::http1(url)
            .unwrap()
            .with_config(ClientConfig::default().codec(codec)),
    )
}

/// A client per codec: every check runs with JSON and with binary protobuf.
async fn clients() -> Vec<(Codec, LibraryServiceClient)> {
    let url = serve().await;
    vec![
        (Codec::Json, client(&url, Codec::Json)),
        (Codec::Proto, client(&url, Codec::Proto)),
    ]
}

fn assert_error(error: &Error, code: Code, message: &str) {
    assert_eq!(error.code(), code, "{error:?}");
    assert_eq!(error.message(), message, "{error:?}");
}

#[tokio::test]
async fn shelves() {
    for (codec, library) in clients().await {
        let what = format!("{codec:?}");
        let shelf = library
            .get_shelf(GetShelfRequest {
                name: "shelves/s1".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(shelf.name, "shelves/s1");
        assert_eq!(shelf.theme, "theme of shelves/s1");

        let error = library
            .get_shelf(GetShelfRequest {
                name: "shelves/missing".into(),
            })
            .await
            .expect_err(&what);
        assert_error(&error, Code::NotFound, "shelves/missing not found");

        let page = library
            .list_shelves(ListShelvesRequest {
                page_size: 5,
                page_token: "tok".into(),
            })
            .await
            .expect(&what)
            .into_message();
        let names: Vec<_> = page.shelves.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shelves/1", "shelves/2", "shelves/3"], "{what}");
        assert!(page.shelves.iter().all(|s| s.theme == "tok"), "{what}");
        assert_eq!(page.next_page_token, "tok+", "{what}");

        let page = library
            .list_shelves(ListShelvesRequest {
                page_size: 2,
                page_token: String::new(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(page.shelves.len(), 2, "{what}");
        assert_eq!(page.next_page_token, "", "{what}");
        // Exactly 3: a full page, but no next one.
        let page = library
            .list_shelves(ListShelvesRequest {
                page_size: 3,
                page_token: "t".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!((page.shelves.len(), page.next_page_token.as_str()), (3, ""));
        let page = library
            .list_shelves(ListShelvesRequest {
                page_size: -1,
                page_token: "t".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert!(page.shelves.is_empty(), "{what}");

        let shelf = library
            .create_shelf(CreateShelfRequest {
                shelf: Some(Shelf {
                    name: "ignored".into(),
                    theme: "poetry".into(),
                }),
                shelf_id: "s9".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            (shelf.name.as_str(), shelf.theme.as_str()),
            ("shelves/s9", "poetry")
        );
        let shelf = library
            .create_shelf(CreateShelfRequest {
                shelf: None,
                shelf_id: "s8".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            (shelf.name.as_str(), shelf.theme.as_str()),
            ("shelves/s8", "")
        );
        let error = library
            .create_shelf(CreateShelfRequest::default())
            .await
            .expect_err(&what);
        assert_error(&error, Code::InvalidArgument, "shelf_id is required");

        library
            .delete_shelf(DeleteShelfRequest {
                name: "shelves/s1".into(),
            })
            .await
            .expect(&what);
        let error = library
            .delete_shelf(DeleteShelfRequest {
                name: "shelves/missing".into(),
            })
            .await
            .expect_err(&what);
        assert_error(&error, Code::NotFound, "shelves/missing not found");
    }
}

#[tokio::test]
async fn books() {
    for (codec, library) in clients().await {
        let what = format!("{codec:?}");
        let book = library
            .get_book(GetBookRequest {
                name: "shelves/s1/books/b1".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            book,
            Book {
                name: "shelves/s1/books/b1".into(),
                title: "Title of shelves/s1/books/b1".into(),
                ..Default::default()
            }
        );
        for missing in ["shelves/s1/books/missing", "a/b/notmissing"] {
            let error = library
                .get_book(GetBookRequest {
                    name: missing.into(),
                })
                .await
                .expect_err(&what);
            assert_error(&error, Code::NotFound, &format!("{missing} not found"));
        }

        let request = ListBooksRequest {
            parent: "shelves/s1".into(),
            page_size: 7,
            filter: "f".into(),
        };
        let want = ListBooksResponse {
            books: (1..=3)
                .map(|i| Book {
                    name: format!("shelves/s1/books/{i}"),
                    title: "f".into(),
                    ..Default::default()
                })
                .collect(),
            titles: vec!["title 1".into(), "title 2".into(), "title 3".into()],
            total_size: 7,
        };
        let list = library.list_books(request.clone()).await.expect(&what);
        assert_eq!(list.into_message(), want, "{what}");
        let titles = library
            .list_book_titles(request.clone())
            .await
            .expect(&what);
        assert_eq!(titles.into_message(), want, "{what}");
        let count = library.count_books(request.clone()).await.expect(&what);
        assert_eq!(count.into_message(), want, "{what}");
        let one = library
            .list_books(ListBooksRequest {
                page_size: 1,
                ..request.clone()
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(one.titles, ["title 1"], "{what}");
        assert_eq!(one.total_size, 1, "{what}");

        let mut stream = library
            .stream_books(request.clone())
            .await
            .expect(&what)
            .into_message();
        let mut streamed = Vec::new();
        while let Some(book) = stream.message().await.expect(&what) {
            streamed.push(book);
        }
        assert_eq!(streamed, want.books, "{what}");

        // `fail` ends the stream with aborted after its books.
        let mut failing = request.clone();
        failing.filter = "fail".into();
        let mut stream = library
            .stream_books(failing)
            .await
            .expect(&what)
            .into_message();
        let mut before = 0;
        let error = loop {
            match stream.message().await {
                Ok(Some(_)) => before += 1,
                Ok(None) => panic!("{what}: the stream ended without failing"),
                Err(error) => break error,
            }
        };
        assert_eq!(before, want.books.len(), "{what}");
        assert_eq!(error.code(), Code::Aborted, "{what}");
        assert_eq!(error.message(), "stopped", "{what}");
    }
}

#[tokio::test]
async fn changing_books() {
    for (codec, library) in clients().await {
        let what = format!("{codec:?}");
        let book = Book {
            name: "ignored".into(),
            title: "T".into(),
            author: "A".into(),
            genre: Genre::Poetry as i32,
            published: Some(prost_types::Timestamp {
                seconds: 1_600_000_000,
                nanos: 0,
            }),
            pages: 12,
            size_bytes: 1 << 40,
            labels: [("k".to_owned(), "v".to_owned())].into(),
            keywords: vec!["x".into(), "y".into()],
            ..Default::default()
        };
        let created = library
            .create_book(CreateBookRequest {
                parent: "shelves/s1".into(),
                book_id: "b2".into(),
                book: Some(book.clone()),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            created,
            Book {
                name: "shelves/s1/books/b2".into(),
                ..book.clone()
            },
            "{what}"
        );
        let created = library
            .create_book(CreateBookRequest {
                parent: "shelves/s1".into(),
                book_id: "b3".into(),
                book: None,
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(created.name, "shelves/s1/books/b3", "{what}");

        let updated = library
            .update_book(UpdateBookRequest {
                book: Some(book.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into(), "author".into()],
                }),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            updated,
            Book {
                title: "T [title,author]".into(),
                ..book.clone()
            },
            "{what}"
        );
        let updated = library
            .update_book(UpdateBookRequest::default())
            .await
            .expect(&what)
            .into_message();
        assert_eq!(updated.title, " []", "{what}");

        let moved = library
            .move_book(MoveBookRequest {
                name: "shelves/s1/books/b1".into(),
                other_shelf_name: "shelves/s2".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            moved,
            Book {
                name: "shelves/s2/books/b1".into(),
                ..Default::default()
            }
        );
        let moved = library
            .move_book(MoveBookRequest {
                name: "plain".into(),
                other_shelf_name: String::new(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(moved.name, "/books/plain", "{what}");

        let out = library
            .checkout_book(CheckoutBookRequest {
                name: "shelves/s1/books/b1".into(),
                reader: "ada".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(out.name, "shelves/s1/books/b1");
        assert_eq!(out.title, "checked out by ada");
    }
}

#[tokio::test]
async fn search_answers_its_request() {
    for (codec, library) in clients().await {
        let what = format!("{codec:?}");
        let request = SearchRequest {
            query: "q".into(),
            i32: -5,
            i64: i64::MIN,
            u32: u32::MAX,
            u64: u64::MAX,
            s32: -7,
            f64: 9,
            ratio: 0.5,
            score: 2.25,
            available: true,
            token: vec![0, 1, 254, 255],
            genre: Genre::History as i32,
            tags: vec!["a".into(), "b".into()],
            years: vec![1999, 2001],
            genres: vec![1, 3],
            filter: Some(Filter {
                author: "au".into(),
                min_year: 1900,
                genre: 2,
                nested: Some(Box::new(Filter {
                    author: "deep".into(),
                    ..Default::default()
                })),
            }),
            published_after: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 500,
            }),
            max_age: Some(prost_types::Duration {
                seconds: 3,
                nanos: 0,
            }),
            fields: Some(prost_types::FieldMask {
                paths: vec!["a.b".into()],
            }),
            limit: Some(0),
            cursor: Some(String::new()),
            in_print: Some(false),
            edition: Some(String::new()),
            labels: [("k".to_owned(), "v".to_owned())].into(),
            extra: Some(prost_types::Struct {
                fields: [(
                    "n".to_owned(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::NumberValue(1.5)),
                    },
                )]
                .into(),
            }),
            custom_name: "c".into(),
            filters: vec![Filter::default(), Filter::default()],
        };
        let echoed = library
            .search(request.clone())
            .await
            .expect(&what)
            .into_message();
        assert_eq!(echoed, request, "{what}");
        let empty = library
            .search(SearchRequest::default())
            .await
            .expect(&what)
            .into_message();
        assert_eq!(empty, SearchRequest::default(), "{what}");
    }
}

#[tokio::test]
async fn covers() {
    use switchboard_transcoding::proto::google::api::HttpBody;
    for (codec, library) in clients().await {
        let what = format!("{codec:?}");
        let book = library
            .upload_cover(UploadCoverRequest {
                name: "shelves/s1/books/b1".into(),
                cover: Some(HttpBody {
                    content_type: "image/png; q=1".into(),
                    data: vec![0; 10],
                    extensions: Vec::new(),
                }),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(
            book,
            Book {
                name: "shelves/s1/books/b1".into(),
                cover_type: "image/png; q=1".into(),
                cover_bytes: 10,
                ..Default::default()
            },
            "{what}"
        );
        let bare = library
            .upload_cover(UploadCoverRequest {
                name: "n".into(),
                cover: None,
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!((bare.cover_type.as_str(), bare.cover_bytes), ("", 0));

        let cover = library
            .download_cover(DownloadCoverRequest {
                name: "shelves/s1/books/b1".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(cover.content_type, "image/x-test", "{what}");
        assert_eq!(cover.data, b"cover of shelves/s1/books/b1", "{what}");
        let none = library
            .download_cover(DownloadCoverRequest {
                name: "shelves/s1/books/nocover".into(),
            })
            .await
            .expect(&what)
            .into_message();
        assert_eq!(none, HttpBody::default(), "{what}");
    }
}

#[tokio::test]
async fn pages_stream_and_fail_after_the_first_above_five() {
    for (codec, library) in clients().await {
        let what = format!("{codec:?}");
        for count in [0, 1, 5] {
            let mut stream = library
                .stream_pages(StreamPagesRequest {
                    name: "b".into(),
                    count,
                })
                .await
                .expect(&what)
                .into_message();
            let mut pages = Vec::new();
            while let Some(page) = stream.message().await.expect(&what) {
                assert_eq!(page.content_type, "text/plain", "{what}");
                pages.push(String::from_utf8(page.data).unwrap());
            }
            let want: Vec<String> = (1..=count).map(|i| format!("page {i} of b\n")).collect();
            assert_eq!(pages, want, "{what} count {count}");
        }
        let mut stream = library
            .stream_pages(StreamPagesRequest {
                name: "b".into(),
                count: 6,
            })
            .await
            .expect(&what)
            .into_message();
        let first = stream.message().await.expect(&what).expect("a first page");
        assert_eq!(first.data, b"page 1 of b\n", "{what}");
        let error = stream.message().await.expect_err(&what);
        assert_error(&error, Code::OutOfRange, "no page 6");
    }
}

#[tokio::test]
async fn fail_answers_every_code_with_and_without_its_detail() {
    for (codec, library) in clients().await {
        for code in 1..=16 {
            for with_detail in [false, true] {
                let what = format!("{codec:?} code {code} detail {with_detail}");
                let error = library
                    .fail(FailRequest {
                        code,
                        message: format!("m{code}"),
                        with_detail,
                    })
                    .await
                    .expect_err(&what);
                assert_eq!(error.code().as_i32(), code, "{what}");
                assert_eq!(error.message(), format!("m{code}"), "{what}");
                let info = error.detail::<ErrorInfo>();
                if with_detail {
                    let info = info.expect(&what);
                    assert_eq!(info.reason, "FAILED", "{what}");
                    assert_eq!(info.domain, "library.example", "{what}");
                    assert_eq!(
                        info.metadata,
                        [("code".to_owned(), code.to_string())].into(),
                        "{what}"
                    );
                    assert_eq!(error.details_of::<ErrorInfo>().count(), 1, "{what}");
                } else {
                    assert!(info.is_none(), "{what}");
                }
            }
        }
        for code in [0, 17, -1] {
            let error = library
                .fail(FailRequest {
                    code,
                    message: "ignored".into(),
                    with_detail: true,
                })
                .await
                .expect_err("no such code");
            assert_error(&error, Code::InvalidArgument, "no such code");
            assert!(error.detail::<ErrorInfo>().is_none());
        }
        let error = library
            .fail(FailRequest {
                code: 5,
                message: String::new(),
                with_detail: false,
            })
            .await
            .expect_err("not found");
        assert_error(&error, Code::NotFound, "");
    }
}
