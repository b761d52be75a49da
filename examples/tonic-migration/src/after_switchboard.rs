//! After: the same service on switchboard. What changed, line for line: no
//! `#[tonic::async_trait]`; `into_inner` is `into_message`; `Status` is `switchboard::Error`;
//! the associated stream types are `ResponseStream<T>`. The logic (`atlas`) is untouched, and
//! the message types are the very ones tonic's code uses.

use futures_util::StreamExt as _;
use switchboard::{Error, Request, Response, ResponseStream, Streaming};

use crate::atlas;
use crate::proto::{Feature, Point, Rectangle, RouteNote, RouteSummary};
use crate::sb::RouteGuide;

/// The switchboard implementation.
#[derive(Debug, Default)]
pub struct SwitchboardRouteGuide;

impl RouteGuide for SwitchboardRouteGuide {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Error> {
        Ok(Response::new(atlas::feature_at(request.into_message())))
    }

    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<ResponseStream<Feature>>, Error> {
        let features = atlas::features_in(request.into_message());
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            features.into_iter().map(Ok),
        ))))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Error> {
        let mut points = Vec::new();
        let mut stream = request.into_message();
        while let Some(point) = stream.message().await? {
            points.push(point);
        }
        Ok(Response::new(atlas::summarise(&points)))
    }

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<ResponseStream<RouteNote>>, Error> {
        let mut notes = Vec::new();
        let replies = request.into_message().flat_map(move |note| {
            let answer: Vec<Result<RouteNote, Error>> = match note {
                Ok(note) => atlas::chat(&mut notes, note).into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            };
            futures_util::stream::iter(answer)
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
