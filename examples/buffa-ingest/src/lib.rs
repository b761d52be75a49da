//! A log-ingest service on switchboard's buffa message backend (`switchboard::buffa`).
//!
//! The generated handlers receive `Request<View<IngestRequest>>`: the records' strings are
//! `&str` slices of the request body, checked as UTF-8 but never copied. Responses are
//! owned buffa messages. Every protocol and both codecs work as with prost messages.
//! The binary (`src/main.rs`) serves this and calls it; the guide's buffa page
//! (`docs/guide/buffa.md`) is compiled and run as this crate's doctests.

use std::collections::BTreeSet;

use switchboard::buffa::View;
use switchboard::server::Router;
use switchboard::{Code, Error, Request, Response, Streaming};

/// `acme.logs.v1`: buffa messages and views, the `LogService` trait, server and client.
#[allow(missing_docs)]
pub mod proto {
    switchboard::include_proto!("acme.logs.v1");
}

use proto::{IngestRequest, IngestRequestView, IngestResponse, LogService, LogServiceServer};

/// The service: counts what it is sent, keeping only the names of the services seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ingest;

impl LogService for Ingest {
    async fn ingest(
        &self,
        request: Request<View<IngestRequest>>,
    ) -> Result<Response<IngestResponse>, Error> {
        let mut tally = Tally::default();
        tally.add(request.message().view())?;
        Ok(Response::new(tally.into_response()))
    }

    async fn ingest_stream(
        &self,
        request: Request<Streaming<View<IngestRequest>>>,
    ) -> Result<Response<IngestResponse>, Error> {
        let mut batches = request.into_message();
        let mut tally = Tally::default();
        while let Some(batch) = batches.message().await? {
            tally.add(batch.view())?;
        }
        Ok(Response::new(tally.into_response()))
    }
}

/// What the records of one call add up to.
#[derive(Default)]
struct Tally {
    accepted: u32,
    message_bytes: u64,
    services: BTreeSet<String>,
}

impl Tally {
    /// Reads a batch through its view: `record.service` and `record.message` borrow from the
    /// request body; only a service name not seen before is copied.
    fn add(&mut self, batch: &IngestRequestView<'_>) -> Result<(), Error> {
        for record in batch.records.iter() {
            if record.service.is_empty() {
                return Err(Error::new(
                    Code::InvalidArgument,
                    "every record names its service",
                ));
            }
            self.accepted += 1;
            self.message_bytes += record.message.len() as u64;
            if !self.services.contains(record.service) {
                self.services.insert(record.service.to_owned());
            }
        }
        Ok(())
    }

    fn into_response(self) -> IngestResponse {
        IngestResponse {
            accepted: self.accepted,
            message_bytes: self.message_bytes,
            services: self.services.into_iter().collect(),
            ..Default::default()
        }
    }
}

/// The router: the service and server reflection.
pub fn router() -> Router {
    let router = Router::new().add_service(LogServiceServer::new(Ingest));
    switchboard_reflection::Reflection::from_router(&router)
        .expect("generated descriptor sets are valid")
        .mount(router)
}

/// The guide's buffa page, compiled and run as doctests against this crate's generated code.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../../docs/guide/buffa.md")]
    pub struct Buffa;
}
