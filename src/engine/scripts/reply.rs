//! Decoding of script and command replies (RESP2 and RESP3 shapes alike).

use redis::Value;

/// An integer reply (a double is truncated).
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// A string reply (numbers and OK as their text).
pub(crate) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Okay => Some("OK".to_string()),
        _ => None,
    }
}

/// A non-negative integer, from a number or its text.
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => Some((*n).max(0) as u64),
        Value::Double(d) => Some(d.max(0.0) as u64),
        other => as_text(other)?.parse().ok(),
    }
}

/// An array of strings (nil = empty).
pub(crate) fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(as_text).collect(),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// A flat `[field, value, ...]` array (HGETALL inside Lua) into a map.
pub(crate) fn field_map(v: &Value) -> Option<super::fetch::JobHash> {
    match v {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return None;
            }
            items
                .chunks(2)
                .map(|pair| Some((as_text(&pair[0])?, as_text(&pair[1])?)))
                .collect()
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(f, val)| Some((as_text(f)?, as_text(val)?)))
            .collect(),
        _ => None,
    }
}

/// Test-only: a bulk string reply.
#[cfg(test)]
pub(crate) fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_lists_accept_empty_replies() {
        assert_eq!(string_list(&Value::Array(vec![])), Some(vec![]));
        assert_eq!(
            string_list(&Value::Array(vec![bulk("4"), bulk("5")])),
            Some(vec!["4".to_string(), "5".to_string()])
        );
        assert_eq!(string_list(&Value::Int(1)), None);
    }

    #[test]
    fn flat_hashes_parse() {
        let m = field_map(&Value::Array(vec![
            bulk("name"),
            bulk("x"),
            bulk("data"),
            bulk("{}"),
        ]))
        .unwrap();
        assert_eq!(m["name"], "x");
        assert_eq!(m["data"], "{}");
        assert!(field_map(&Value::Array(vec![bulk("odd")])).is_none());
    }
}
