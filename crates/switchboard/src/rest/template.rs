//! Path templates of `google.api.http` rules: parsing, and matching a request path.
//!
//! The grammar (from `google/api/http.proto`):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! A template is flattened into a list of [`Part`]s, one per path segment, each remembering
//! the variable it belongs to, so matching is a walk over the request's segments.

use std::fmt;

/// One segment of a flattened template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// Exactly this text (already percent-decoded).
    Literal(String),
    /// Any one segment.
    One,
    /// One or more segments; only last.
    Rest,
}

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    /// The segments.
    pub(crate) parts: Vec<Part>,
    /// Which variable (index into `variables`) each part belongs to, if any.
    pub(crate) owners: Vec<Option<usize>>,
    /// The variables' field paths (proto field names), in order of appearance.
    pub(crate) variables: Vec<Vec<String>>,
    /// The verb after the last `:`, if any.
    pub(crate) verb: Option<String>,
    /// The template as written, for messages.
    pub(crate) text: String,
}

/// Why a template does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) template: String,
    pub(crate) why: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid path template {:?}: {}", self.template, self.why)
    }
}

struct Parser<'t> {
    text: &'t str,
    at: usize,
    template: PathTemplate,
}

impl PathTemplate {
    /// Parses `text`.
    pub(crate) fn parse(text: &str) -> Result<PathTemplate, TemplateError> {
        let mut parser = Parser {
            text,
            at: 0,
            template: PathTemplate {
                parts: Vec::new(),
                owners: Vec::new(),
                variables: Vec::new(),
                verb: None,
                text: text.to_owned(),
            },
        };
        parser.template_()?;
        Ok(parser.template)
    }

    /// The shape of the template, for conflicts: literals, `*` for any one-segment part and
    /// `**` for the rest, with the verb. Two templates with one shape match the same paths.
    pub(crate) fn shape(&self) -> String {
        let mut shape = String::new();
        for part in &self.parts {
            shape.push('/');
            match part {
                Part::Literal(text) => shape.push_str(text),
                Part::One => shape.push('*'),
                Part::Rest => shape.push_str("**"),
            }
        }
        if let Some(verb) = &self.verb {
            shape.push(':');
            shape.push_str(verb);
        }
        shape
    }

    /// Matches a request path, already split into raw (still percent-encoded) segments and
    /// its verb. Returns each variable's value: a single-segment variable fully
    /// percent-decoded; a multi-segment one with its segments joined by `/` and every escape
    /// decoded except `%2F` (as `http.proto` asks). `None` when the path does not match.
    pub(crate) fn matches(&self, segments: &[&str], verb: Option<&str>) -> Option<Vec<String>> {
        if self.verb.as_deref() != verb {
            return None;
        }
        let fixed = self.parts.len() - usize::from(self.parts.last() == Some(&Part::Rest));
        let ends_with_rest = fixed < self.parts.len();
        if segments.len() < self.parts.len()
            || (!ends_with_rest && segments.len() != self.parts.len())
        {
            return None;
        }
        // The segments each part consumed.
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(self.parts.len());
        for (index, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(text) => {
                    if decode_segment(segments[index])? != *text {
                        return None;
                    }
                    spans.push((index, index + 1));
                }
                Part::One => spans.push((index, index + 1)),
                Part::Rest => spans.push((index, segments.len())),
            }
        }
        let mut values = vec![(usize::MAX, 0usize); self.variables.len()];
        for (part, owner) in self.owners.iter().enumerate() {
            if let Some(variable) = owner {
                let (start, end) = spans[part];
                let value = &mut values[*variable];
                value.0 = value.0.min(start);
                value.1 = value.1.max(end);
            }
        }
        let mut decoded = Vec::with_capacity(values.len());
        for (start, end) in values {
            let raw = &segments[start..end];
            if raw.len() == 1 && !self.is_multi_segment(start) {
                decoded.push(decode_segment(raw[0])?);
            } else {
                let mut joined = String::new();
                for (i, segment) in raw.iter().enumerate() {
                    if i > 0 {
                        joined.push('/');
                    }
                    joined.push_str(&decode_keeping_slash(segment)?);
                }
                decoded.push(joined);
            }
        }
        Some(decoded)
    }

    /// Whether the variable owning part `index` spans several parts or a `**`.
    fn is_multi_segment(&self, index: usize) -> bool {
        let Some(owner) = self.owners.get(index).copied().flatten() else {
            return false;
        };
        let parts: Vec<usize> = (0..self.parts.len())
            .filter(|&i| self.owners[i] == Some(owner))
            .collect();
        parts.len() > 1 || parts.iter().any(|&i| self.parts[i] == Part::Rest)
    }
}

impl Parser<'_> {
    fn error(&self, why: impl Into<String>) -> TemplateError {
        TemplateError {
            template: self.text.to_owned(),
            why: why.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn template_(&mut self) -> Result<(), TemplateError> {
        if !self.eat(b'/') {
            return Err(self.error("must start with '/'"));
        }
        self.segments(None)?;
        if self.eat(b':') {
            let verb = self.literal()?;
            if verb.is_empty() {
                return Err(self.error("empty verb"));
            }
            self.template.verb = Some(verb);
        }
        if self.at != self.text.len() {
            return Err(self.error(format!("unexpected {:?}", &self.text[self.at..])));
        }
        if let Some(rest) = self.template.parts.iter().position(|p| *p == Part::Rest) {
            if rest + 1 != self.template.parts.len() {
                return Err(self.error("'**' must be the last segment"));
            }
        }
        Ok(())
    }

    fn segments(&mut self, owner: Option<usize>) -> Result<(), TemplateError> {
        loop {
            self.segment(owner)?;
            if !self.eat(b'/') {
                return Ok(());
            }
        }
    }

    fn push(&mut self, part: Part, owner: Option<usize>) {
        self.template.parts.push(part);
        self.template.owners.push(owner);
    }

    fn segment(&mut self, owner: Option<usize>) -> Result<(), TemplateError> {
        match self.peek() {
            Some(b'*') => {
                self.at += 1;
                if self.eat(b'*') {
                    self.push(Part::Rest, owner);
                } else {
                    self.push(Part::One, owner);
                }
                Ok(())
            }
            Some(b'{') => {
                if owner.is_some() {
                    return Err(self.error("variables cannot nest"));
                }
                self.at += 1;
                let path = self.field_path()?;
                if self.template.variables.contains(&path) {
                    return Err(self.error(format!("variable {} appears twice", path.join("."))));
                }
                let index = self.template.variables.len();
                self.template.variables.push(path);
                if self.eat(b'=') {
                    self.segments(Some(index))?;
                } else {
                    self.push(Part::One, Some(index));
                }
                if !self.eat(b'}') {
                    return Err(self.error("expected '}'"));
                }
                Ok(())
            }
            _ => {
                let literal = self.literal()?;
                if literal.is_empty() {
                    return Err(self.error("empty segment"));
                }
                self.push(Part::Literal(literal), owner);
                Ok(())
            }
        }
    }

    /// A literal: unreserved characters and percent escapes, decoded.
    fn literal(&mut self) -> Result<String, TemplateError> {
        let start = self.at;
        while let Some(byte) = self.peek() {
            if byte.is_ascii_alphanumeric() || b"-_.~%".contains(&byte) {
                self.at += 1;
            } else {
                break;
            }
        }
        decode_segment(&self.text[start..self.at])
            .ok_or_else(|| self.error("invalid percent escape"))
    }

    fn field_path(&mut self) -> Result<Vec<String>, TemplateError> {
        let mut path = Vec::new();
        loop {
            let start = self.at;
            while let Some(byte) = self.peek() {
                if byte.is_ascii_alphanumeric() || byte == b'_' {
                    self.at += 1;
                } else {
                    break;
                }
            }
            if start == self.at {
                return Err(self.error("expected a field name"));
            }
            path.push(self.text[start..self.at].to_owned());
            if !self.eat(b'.') {
                return Ok(path);
            }
        }
    }
}

/// Splits a raw request path (percent-encoded, starting with `/`) into its segments and its
/// verb: the text after the first `:` of the last segment (an escaped `%3A` is data, not a
/// verb separator). `None` for a path not starting with `/`.
pub(crate) fn split_path(path: &str) -> Option<(Vec<&str>, Option<&str>)> {
    let rest = path.strip_prefix('/')?;
    let mut segments: Vec<&str> = rest.split('/').collect();
    let mut verb = None;
    if let Some(last) = segments.last_mut() {
        if let Some((before, after)) = last.split_once(':') {
            *last = before;
            verb = Some(after);
        }
    }
    Some((segments, verb))
}

/// Percent-decodes one segment (every escape, `%2F` included); `None` for a bad escape or
/// text that is not UTF-8.
pub(crate) fn decode_segment(raw: &str) -> Option<String> {
    decode(raw, false)
}

/// Percent-decodes a segment of a multi-segment variable: every escape except `%2F`.
fn decode_keeping_slash(raw: &str) -> Option<String> {
    decode(raw, true)
}

fn decode(raw: &str, keep_slash: bool) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if keep_slash && value == b'/' {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(value);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(template: &str, path: &str) -> Option<Vec<String>> {
        let template = PathTemplate::parse(template).unwrap();
        let (segments, verb) = split_path(path).unwrap();
        template.matches(&segments, verb)
    }

    #[test]
    fn parses_literals_wildcards_variables_and_verbs() {
        let t = PathTemplate::parse("/v1/{name=shelves/*/books/*}:move").unwrap();
        assert_eq!(
            t.parts,
            [
                Part::Literal("v1".into()),
                Part::Literal("shelves".into()),
                Part::One,
                Part::Literal("books".into()),
                Part::One
            ]
        );
        assert_eq!(t.owners, [None, Some(0), Some(0), Some(0), Some(0)]);
        assert_eq!(t.variables, [vec!["name".to_owned()]]);
        assert_eq!(t.verb.as_deref(), Some("move"));
        assert_eq!(t.shape(), "/v1/shelves/*/books/*:move");
        let t = PathTemplate::parse("/v1/{book.name}/x/**").unwrap();
        assert_eq!(t.variables, [vec!["book".to_owned(), "name".to_owned()]]);
        assert_eq!(t.shape(), "/v1/*/x/**");
    }

    #[test]
    fn rejects_malformed_templates() {
        for bad in [
            "v1/x",
            "/v1/",
            "/v1//x",
            "/v1/{name",
            "/v1/{}",
            "/v1/**/x",
            "/v1/{a}/{a}",
            "/v1/{a={b}}",
            "/v1/x:",
            "/v1/x y",
            "/v1/%zz",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn matches_segments_and_captures_variables() {
        assert_eq!(
            matches("/v1/{name=shelves/*}", "/v1/shelves/1"),
            Some(vec!["shelves/1".into()])
        );
        assert_eq!(matches("/v1/{name=shelves/*}", "/v1/shelves"), None);
        assert_eq!(matches("/v1/{name=shelves/*}", "/v1/shelves/1/x"), None);
        assert_eq!(matches("/v1/{name=shelves/*}", "/v1/books/1"), None);
        assert_eq!(
            matches("/v1/{parent=shelves/*}/books", "/v1/shelves/s/books"),
            Some(vec!["shelves/s".into()])
        );
        // `**` takes one or more segments.
        assert_eq!(
            matches("/v1/books/{name=**}", "/v1/books/a/b/c"),
            Some(vec!["a/b/c".into()])
        );
        assert_eq!(
            matches("/v1/books/{name=**}", "/v1/books/a"),
            Some(vec!["a".into()])
        );
        assert_eq!(matches("/v1/books/{name=**}", "/v1/books"), None);
        // An empty segment is a segment.
        assert_eq!(matches("/v1/echo/{v}", "/v1/echo/"), Some(vec!["".into()]));
        // Two variables.
        assert_eq!(
            matches("/v1/search/{query}/{filter.author}", "/v1/search/q/a"),
            Some(vec!["q".into(), "a".into()])
        );
    }

    #[test]
    fn verbs_must_match() {
        let t = "/v1/{name=shelves/*/books/*}:move";
        assert_eq!(
            matches(t, "/v1/shelves/1/books/2:move"),
            Some(vec!["shelves/1/books/2".into()])
        );
        assert_eq!(matches(t, "/v1/shelves/1/books/2"), None);
        assert_eq!(matches(t, "/v1/shelves/1/books/2:copy"), None);
        assert_eq!(matches("/v1/{name}", "/v1/a:b"), None);
        // An escaped colon is data.
        assert_eq!(matches("/v1/{name}", "/v1/a%3Ab"), Some(vec!["a:b".into()]));
    }

    #[test]
    fn single_segment_values_decode_every_escape_and_multi_segment_ones_keep_slashes() {
        assert_eq!(
            matches("/v1/{name}", "/v1/a%20b%E2%82%AC+"),
            Some(vec!["a b€+".into()])
        );
        assert_eq!(matches("/v1/{name}", "/v1/a%2Fb"), Some(vec!["a/b".into()]));
        assert_eq!(
            matches("/v1/files/{name=**}", "/v1/files/a%2Fb/c%20d"),
            Some(vec!["a%2Fb/c d".into()])
        );
        assert_eq!(
            matches("/v1/{name=a/*}", "/v1/a/x%2Fy"),
            Some(vec!["a/x%2Fy".into()])
        );
        // Decoded once only.
        assert_eq!(
            matches("/v1/{name}", "/v1/a%2541"),
            Some(vec!["a%41".into()])
        );
        // A bad escape matches nothing.
        assert_eq!(matches("/v1/{name}", "/v1/a%2"), None);
        assert_eq!(matches("/v1/{name}", "/v1/a%ff"), None);
        // Literals compare decoded.
        assert_eq!(matches("/v1/shelves", "/v1/%73helves"), Some(vec![]));
    }
}
