//! The route guide's data, shared by both implementations: a few named places, and the
//! arithmetic both answer with.

use crate::proto::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// The named places.
pub fn features() -> Vec<Feature> {
    [
        ("Stonehenge", 511788, -18262),
        ("Mont Saint-Michel", 486361, -15115),
        ("Delphi", 384824, 224991),
    ]
    .into_iter()
    .map(|(name, latitude, longitude)| Feature {
        name: name.into(),
        location: Some(Point {
            latitude,
            longitude,
        }),
    })
    .collect()
}

/// The feature at `point`: a named one, or one with an empty name (as tonic's example does).
pub fn feature_at(point: Point) -> Feature {
    features()
        .into_iter()
        .find(|f| f.location == Some(point))
        .unwrap_or(Feature {
            name: String::new(),
            location: Some(point),
        })
}

/// The features inside `rectangle`.
pub fn features_in(rectangle: Rectangle) -> Vec<Feature> {
    let (lo, hi) = (
        rectangle.lo.unwrap_or_default(),
        rectangle.hi.unwrap_or_default(),
    );
    let inside = |p: &Point| {
        (lo.latitude.min(hi.latitude)..=lo.latitude.max(hi.latitude)).contains(&p.latitude)
            && (lo.longitude.min(hi.longitude)..=lo.longitude.max(hi.longitude))
                .contains(&p.longitude)
    };
    features()
        .into_iter()
        .filter(|f| f.location.as_ref().is_some_and(inside))
        .collect()
}

/// A route's summary: its points, and how many of them are named places.
pub fn summarise(points: &[Point]) -> RouteSummary {
    RouteSummary {
        point_count: points.len() as i32,
        feature_count: points
            .iter()
            .filter(|p| !feature_at(**p).name.is_empty())
            .count() as i32,
    }
}

/// The notes to answer `note` with: every note left earlier at its location, then the note.
pub fn chat(notes: &mut Vec<RouteNote>, note: RouteNote) -> Vec<RouteNote> {
    let mut answer: Vec<RouteNote> = notes
        .iter()
        .filter(|n| n.location == note.location)
        .cloned()
        .collect();
    notes.push(note.clone());
    answer.push(note);
    answer
}
