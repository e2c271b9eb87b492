//! Label selectors as the API server reads them: `a=b`, `a==b`, `a!=b`, `a`, `!a`,
//! `a in (x,y)`, `a notin (x)`, comma-separated requirements that must all hold.

use serde_json::Value;

/// A parsed selector; `None` from [`parse`] means it is malformed.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// Splits at commas outside parentheses.
fn split(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

pub fn parse(text: &str) -> Option<Selector> {
    let mut requirements = Vec::new();
    for part in split(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let requirement = if let Some((key, value)) = part.split_once("!=") {
            Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = part.split_once("==") {
            Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = part.split_once('=') {
            Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, values)) = part.split_once(" notin ") {
            Requirement::NotIn(key.trim().to_owned(), set(values)?)
        } else if let Some((key, values)) = part.split_once(" in ") {
            Requirement::In(key.trim().to_owned(), set(values)?)
        } else if let Some(key) = part.strip_prefix('!') {
            Requirement::NotExists(key.trim().to_owned())
        } else {
            Requirement::Exists(part.to_owned())
        };
        if !requirement.is_valid() {
            return None;
        }
        requirements.push(requirement);
    }
    Some(Selector { requirements })
}

/// A set of values: the API server refuses an empty one.
fn set(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
    (values != [""]).then_some(values)
}

/// A label name or value: at most 63 characters, alphanumerics at both ends, `-`, `_` and `.`
/// between.
fn is_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    bytes.len() <= 63
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A label key: a name, optionally after a DNS subdomain prefix and `/`.
fn is_key(text: &str) -> bool {
    match text.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253
                && prefix.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                && is_name(name)
        }
        None => is_name(text),
    }
}

fn is_value(text: &str) -> bool {
    text.is_empty() || is_name(text)
}

impl Requirement {
    /// Whether the API server would accept it: a selector with a malformed key or value is a
    /// 400, not a selector that matches nothing.
    fn is_valid(&self) -> bool {
        match self {
            Requirement::Equals(key, value) | Requirement::NotEquals(key, value) => {
                is_key(key) && is_value(value)
            }
            Requirement::Exists(key) | Requirement::NotExists(key) => is_key(key),
            Requirement::In(key, values) | Requirement::NotIn(key, values) => {
                is_key(key) && values.iter().all(|v| is_value(v))
            }
        }
    }
}

impl Selector {
    /// Whether `object`'s `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
                Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
                Requirement::Exists(key) => label(key).is_some(),
                Requirement::NotExists(key) => label(key).is_none(),
                Requirement::In(key, values) => {
                    label(key).is_some_and(|v| values.iter().any(|x| x == v))
                }
                Requirement::NotIn(key, values) => {
                    !label(key).is_some_and(|v| values.iter().any(|x| x == v))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_all_hold() {
        let pod = serde_json::json!({"metadata": {"labels": {"app": "x", "tier": "db"}}});
        let yes = [
            "app=x",
            "app==x,tier",
            "app!=y",
            "!missing",
            "tier in (db,web)",
            "tier notin (web)",
            "",
        ];
        for text in yes {
            assert!(parse(text).unwrap().matches(&pod), "{text}");
        }
        let no = [
            "app=y",
            "missing",
            "!app",
            "tier in (web)",
            "app=x,tier=web",
        ];
        for text in no {
            assert!(!parse(text).unwrap().matches(&pod), "{text}");
        }
        for malformed in [
            "a b", "=x", "a=b=c", "a in x", "a in ()", "-a", "a=-b", "Ex/a",
        ] {
            assert!(parse(malformed).is_none(), "{malformed}");
        }
        let prefixed = serde_json::json!({"metadata": {"labels": {"example.com/app": "x"}}});
        assert!(parse("example.com/app in (x,)").unwrap().matches(&prefixed));
    }
}
