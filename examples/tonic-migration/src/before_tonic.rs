//! Before: the route guide as a tonic service.

use std::pin::Pin;

use futures_util::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::atlas;
use crate::proto::route_guide_server::RouteGuide;
use crate::proto::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// The tonic implementation.
#[derive(Debug, Default)]
pub struct TonicRouteGuide;

#[tonic::async_trait]
impl RouteGuide for TonicRouteGuide {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        Ok(Response::new(atlas::feature_at(request.into_inner())))
    }

    type ListFeaturesStream = Pin<Box<dyn Stream<Item = Result<Feature, Status>> + Send>>;

    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<Self::ListFeaturesStream>, Status> {
        let features = atlas::features_in(request.into_inner());
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            features.into_iter().map(Ok),
        ))))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        let mut points = Vec::new();
        let mut stream = request.into_inner();
        while let Some(point) = stream.message().await? {
            points.push(point);
        }
        Ok(Response::new(atlas::summarise(&points)))
    }

    type RouteChatStream = Pin<Box<dyn Stream<Item = Result<RouteNote, Status>> + Send>>;

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<Self::RouteChatStream>, Status> {
        let mut notes = Vec::new();
        let replies = request.into_inner().flat_map(move |note| {
            let answer: Vec<Result<RouteNote, Status>> = match note {
                Ok(note) => atlas::chat(&mut notes, note).into_iter().map(Ok).collect(),
                Err(status) => vec![Err(status)],
            };
            futures_util::stream::iter(answer)
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
