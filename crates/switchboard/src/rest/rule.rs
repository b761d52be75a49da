//! A method's `google.api.http` rules, read from its descriptor's options.

use prost_reflect::{DynamicMessage, MethodDescriptor, Value};

use super::template::PathTemplate;

/// The field number of the `google.api.http` method option.
const HTTP_OPTION: u32 = 72_295_728;

/// What fills the request message from the HTTP body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BodyRule {
    /// No body (`body` empty): everything comes from the path and the query.
    None,
    /// The whole request (`body: "*"`).
    Whole,
    /// One top-level field of the request (`body: "book"`).
    Field(String),
}

/// One way to call a method over REST.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    /// The HTTP method (`*` for any, from a custom rule).
    pub(crate) method: String,
    pub(crate) template: PathTemplate,
    pub(crate) body: BodyRule,
    /// The response field that is the body; `None` for the whole response.
    pub(crate) response_body: Option<String>,
}

/// Why a method's rules are unusable.
#[derive(Clone, Debug)]
pub(crate) struct RuleError(pub(crate) String);

/// The bindings of `method`: its rule and the rule's `additional_bindings`; empty when it has
/// no `google.api.http` option.
pub(crate) fn bindings(method: &MethodDescriptor) -> Result<Vec<Binding>, RuleError> {
    let options = method.options();
    let Some(rule) = options.extensions().find_map(|(extension, value)| {
        (extension.number() == HTTP_OPTION).then(|| match value {
            Value::Message(rule) => Some(rule.clone()),
            _ => None,
        })
    }) else {
        return Ok(Vec::new());
    };
    let Some(rule) = rule else {
        return Ok(Vec::new());
    };
    let mut bindings = vec![binding(method, &rule)?];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
        for extra in more {
            if let Value::Message(extra) = extra {
                if matches!(
                    extra.get_field_by_name("additional_bindings").as_deref(),
                    Some(Value::List(nested)) if !nested.is_empty()
                ) {
                    return Err(RuleError(format!(
                        "{}: additional_bindings may not nest",
                        method.full_name()
                    )));
                }
                bindings.push(binding(method, extra)?);
            }
        }
    }
    Ok(bindings)
}

fn text(rule: &DynamicMessage, name: &str) -> String {
    match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    }
}

fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, RuleError> {
    let fail = |why: String| RuleError(format!("{}: {why}", method.full_name()));
    let mut pattern = None;
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            pattern = Some((verb.to_ascii_uppercase(), text(rule, verb)));
        }
    }
    if rule.has_field_by_name("custom") {
        if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref() {
            pattern = Some((text(custom, "kind"), text(custom, "path")));
        }
    }
    let Some((http_method, path)) = pattern else {
        return Err(fail("the rule names no HTTP method and path".to_owned()));
    };
    if http_method.is_empty() {
        return Err(fail("a custom rule needs a kind".to_owned()));
    }
    let template = PathTemplate::parse(&path).map_err(|e| fail(e.to_string()))?;
    let input = method.input();
    for variable in &template.variables {
        check_field_path(&input, variable).map_err(fail)?;
    }
    let body = match text(rule, "body").as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        field => {
            if input.get_field_by_name(field).is_none() {
                return Err(fail(format!(
                    "body field {field:?} is not a field of {}",
                    input.full_name()
                )));
            }
            BodyRule::Field(field.to_owned())
        }
    };
    let response_body = match text(rule, "response_body").as_str() {
        "" | "*" => None,
        field => {
            if method.output().get_field_by_name(field).is_none() {
                return Err(fail(format!(
                    "response_body field {field:?} is not a field of {}",
                    method.output().full_name()
                )));
            }
            Some(field.to_owned())
        }
    };
    Ok(Binding {
        method: http_method,
        template,
        body,
        response_body,
    })
}

/// Checks that a path variable names a singular, non-message field (through singular message
/// fields).
fn check_field_path(
    message: &prost_reflect::MessageDescriptor,
    path: &[String],
) -> Result<(), String> {
    let mut current = message.clone();
    for (i, name) in path.iter().enumerate() {
        let Some(field) = current.get_field_by_name(name) else {
            return Err(format!(
                "path variable {} names no field of {}",
                path.join("."),
                current.full_name()
            ));
        };
        if field.is_list() || field.is_map() {
            return Err(format!(
                "path variable {} is a repeated field",
                path.join(".")
            ));
        }
        let last = i + 1 == path.len();
        match field.kind() {
            prost_reflect::Kind::Message(inner) if !last => current = inner,
            _ if !last => {
                return Err(format!(
                    "path variable {} goes through a field that is not a message",
                    path.join(".")
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
