//! Command-line flags as Go's `flag` package reads them, which is what gRPC's interop
//! harnesses pass: `-name`, `--name`, `--name=value`, `--name value`; boolean flags take no
//! separate value (`--use_tls` or `--use_tls=false`).

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{Context as _, Result, bail};

/// Parsed flags.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `args` (without the program name). `known` lists the flags that take a value,
    /// `bools` the boolean ones; anything else is an error.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
        bools: &[&str],
    ) -> Result<Flags> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-'))
                .filter(|f| !f.is_empty())
            else {
                bail!("unexpected argument {arg:?}");
            };
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag, None),
            };
            let value = if bools.contains(&name) {
                let value = inline.unwrap_or_else(|| "true".to_owned());
                parse_bool(&value).with_context(|| format!("flag -{name}"))?;
                value
            } else if known.contains(&name) {
                match inline {
                    Some(value) => value,
                    None => args
                        .next()
                        .with_context(|| format!("flag -{name} needs a value"))?,
                }
            } else {
                bail!("unknown flag -{name}");
            };
            values.insert(name.to_owned(), value);
        }
        Ok(Flags { values })
    }

    /// The value of a flag that takes one, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of a flag parsed as `T`, or `default`.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .with_context(|| format!("flag -{name}: invalid value {value:?}")),
        }
    }

    /// A boolean flag (false unless given).
    pub fn bool(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| parse_bool(v).unwrap_or(false))
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Result<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => bail!("invalid boolean {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags> {
        Flags::parse(
            args.iter().map(|a| a.to_string()),
            &["port", "test_case"],
            &["use_tls"],
        )
    }

    #[test]
    fn reads_go_style_flags() {
        let flags = parse(&["--port=8080", "-test_case", "empty_unary", "--use_tls"]).unwrap();
        assert_eq!(flags.get_or("port", 0u16).unwrap(), 8080);
        assert_eq!(flags.get("test_case"), Some("empty_unary"));
        assert!(flags.bool("use_tls"));
        let flags = parse(&["-use_tls=false"]).unwrap();
        assert!(!flags.bool("use_tls"));
        assert_eq!(flags.get_or("port", 10000u16).unwrap(), 10000);
        assert!(parse(&["--nope"]).is_err());
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--use_tls=maybe"]).is_err());
        assert!(parse(&["stray"]).is_err());
    }
}
