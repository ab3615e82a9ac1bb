//! [`OrderedJson`](crate::engine::ordered_json::OrderedJson): the engine's one JSON value that keeps the order of object keys, and its
//! msgpack encoding.
//!
//! Why order matters: BullMQ stores a job's `opts` as `cjson.encode` of the table
//! `cmsgpack.unpack` built from the producer's msgpack map. cjson writes the keys in the Lua
//! table's internal hash order, which depends on the keys *and on the order they were
//! inserted*. Sending the same map, with the same keys in the same order, through the same two
//! Lua calls is what makes our stored `opts` text byte-identical to BullMQ's (for `Queue.add`
//! and for a job scheduler's next iteration alike). serde_json's own map sorts its keys, so it
//! cannot be used for this.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects remember the order of their keys, as `JSON.parse` does.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderedJson {
    /// `null`, and JavaScript `undefined` inside objects (msgpack nil either way).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, kept as parsed (integers stay integers for the msgpack encoding).
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<OrderedJson>),
    /// An object: its entries in insertion order, each key once.
    Object(Vec<(String, OrderedJson)>),
}

impl OrderedJson {
    /// Parse JSON text; a repeated key keeps its first position and its last value.
    pub fn parse(text: &str) -> std::result::Result<OrderedJson, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A number from a double: an integer when it is one (and exactly representable), so
    /// that it is encoded as msgpackr encodes the same JavaScript number.
    pub fn number(f: f64) -> OrderedJson {
        if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            OrderedJson::Number((f as i64).into())
        } else {
            serde_json::Number::from_f64(f).map_or(OrderedJson::Null, OrderedJson::Number)
        }
    }

    /// The value of `key` of an object (None for a missing key or a non-object).
    pub fn get(&self, key: &str) -> Option<&OrderedJson> {
        match self {
            OrderedJson::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Present and not `null`.
    pub fn field(&self, key: &str) -> Option<&OrderedJson> {
        self.get(key).filter(|v| !matches!(v, OrderedJson::Null))
    }

    /// The number as a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            OrderedJson::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            OrderedJson::String(s) => Some(s),
            _ => None,
        }
    }

    /// JavaScript truthiness, for the options BullMQ tests with `if (opts.x)`.
    pub fn truthy(&self) -> bool {
        match self {
            OrderedJson::Null => false,
            OrderedJson::Bool(b) => *b,
            OrderedJson::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
            OrderedJson::String(s) => !s.is_empty(),
            OrderedJson::Array(_) | OrderedJson::Object(_) => true,
        }
    }

    /// `obj[key] = value` in JavaScript: in place when the key exists, else appended. A
    /// no-op on a non-object.
    pub fn set(&mut self, key: &str, value: OrderedJson) {
        if let OrderedJson::Object(entries) = self {
            set_entry(entries, key, value);
        }
    }

    /// `delete obj[key]`: the removed value, if there was one.
    pub fn remove(&mut self, key: &str) -> Option<OrderedJson> {
        match self {
            OrderedJson::Object(entries) => remove_entry(entries, key),
            _ => None,
        }
    }

    /// Compact JSON, keys in their order (what `JSON.stringify` would print).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            OrderedJson::Null => out.push_str("null"),
            OrderedJson::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            OrderedJson::Number(n) => out.push_str(&n.to_string()),
            OrderedJson::String(s) => {
                out.push_str(&serde_json::Value::String(s.clone()).to_string())
            }
            OrderedJson::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            OrderedJson::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// msgpack, as msgpackr (BullMQ's encoder) would write the same value: maps keep their
    /// key order, `null` is nil, integers use the smallest integer type, other numbers are
    /// float64. (Lua's cmsgpack reads every number as a double, so only the values matter.)
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_msgpack(&mut out);
        out
    }

    fn write_msgpack(&self, out: &mut Vec<u8>) {
        match self {
            OrderedJson::Null => out.push(0xc0),
            OrderedJson::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            OrderedJson::Number(n) => {
                if let Some(i) = n.as_i64() {
                    write_int(out, i);
                } else if let Some(u) = n.as_u64() {
                    out.push(0xcf);
                    out.extend_from_slice(&u.to_be_bytes());
                } else {
                    out.push(0xcb);
                    out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
                }
            }
            OrderedJson::String(s) => write_str(out, s),
            OrderedJson::Array(items) => {
                write_len(out, items.len(), 0x90, 0xdc, 0xdd);
                for v in items {
                    v.write_msgpack(out);
                }
            }
            OrderedJson::Object(entries) => {
                write_len(out, entries.len(), 0x80, 0xde, 0xdf);
                for (k, v) in entries {
                    write_str(out, k);
                    v.write_msgpack(out);
                }
            }
        }
    }
}

/// `obj[key] = value` on an entry list: in place when the key exists, else appended.
pub fn set_entry(entries: &mut Vec<(String, OrderedJson)>, key: &str, value: OrderedJson) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

/// Remove `key` from an entry list, returning its value.
pub fn remove_entry(entries: &mut Vec<(String, OrderedJson)>, key: &str) -> Option<OrderedJson> {
    let at = entries.iter().position(|(k, _)| k == key)?;
    Some(entries.remove(at).1)
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_len(out: &mut Vec<u8>, len: usize, fix: u8, b16: u8, b32: u8) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if (0..=0x7f).contains(&i) {
        out.push(i as u8);
    } else if (-32..0).contains(&i) {
        out.push(i as i8 as u8);
    } else if i >= 0 {
        if i <= 0xff {
            out.push(0xcc);
            out.push(i as u8);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -0x80 {
        out.push(0xd0);
        out.push(i as i8 as u8);
    } else if i >= -0x8000 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -0x8000_0000 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<OrderedJson, E> {
                serde_json::Number::from_f64(n)
                    .map(OrderedJson::Number)
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<OrderedJson, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(OrderedJson::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OrderedJson, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, OrderedJson>()? {
                    set_entry(&mut entries, &k, v);
                }
                Ok(OrderedJson::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Test-only msgpack reader for what [`OrderedJson::to_msgpack`] writes (shared by the unit
/// tests of the modules that encode options).
#[cfg(test)]
pub(crate) fn unpack(b: &[u8], at: &mut usize) -> OrderedJson {
    let tag = b[*at];
    *at += 1;
    let mut take = |n: usize| {
        let s = b[*at..*at + n].to_vec();
        *at += n;
        s
    };
    let be = |s: Vec<u8>| s.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let int = |i: i64| OrderedJson::Number(i.into());
    match tag {
        0xc0 => OrderedJson::Null,
        0xc2 => OrderedJson::Bool(false),
        0xc3 => OrderedJson::Bool(true),
        t if t <= 0x7f => int(i64::from(t)),
        t if t >= 0xe0 => int(i64::from(t as i8)),
        0xcc..=0xce => {
            let n = 1 << (tag - 0xcc);
            int(be(take(n)) as i64)
        }
        0xcf => OrderedJson::Number(be(take(8)).into()),
        0xd0 => int(i64::from(take(1)[0] as i8)),
        0xd1 => int(i64::from(be(take(2)) as u16 as i16)),
        0xd2 => int(i64::from(be(take(4)) as u32 as i32)),
        0xd3 => int(be(take(8)) as i64),
        0xcb => OrderedJson::number(f64::from_be_bytes(take(8).try_into().unwrap())),
        t if t & 0xe0 == 0xa0 || t == 0xd9 || t == 0xda => {
            let n = match t {
                0xd9 => be(take(1)) as usize,
                0xda => be(take(2)) as usize,
                _ => (t & 0x1f) as usize,
            };
            OrderedJson::String(String::from_utf8(take(n)).unwrap())
        }
        t if t & 0xf0 == 0x90 || t == 0xdc => {
            let n = if t == 0xdc {
                be(take(2)) as usize
            } else {
                (t & 0x0f) as usize
            };
            OrderedJson::Array((0..n).map(|_| unpack(b, at)).collect())
        }
        t if t & 0xf0 == 0x80 || t == 0xde => {
            let n = if t == 0xde {
                be(take(2)) as usize
            } else {
                (t & 0x0f) as usize
            };
            OrderedJson::Object(
                (0..n)
                    .map(|_| {
                        let OrderedJson::String(k) = unpack(b, at) else {
                            panic!("key")
                        };
                        (k, unpack(b, at))
                    })
                    .collect(),
            )
        }
        t => panic!("tag {t:#x}"),
    }
}

/// Test-only: the keys of an object, in order.
#[cfg(test)]
pub(crate) fn keys(v: &OrderedJson) -> Vec<&str> {
    match v {
        OrderedJson::Object(e) => e.iter().map(|(k, _)| k.as_str()).collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_keeping_key_order() {
        let text = r#"{"z":1,"a":[true,null,"x\/y"],"m":{"b":2.5,"a":-3}}"#;
        let v = OrderedJson::parse(text).unwrap();
        assert_eq!(keys(&v), ["z", "a", "m"]);
        assert_eq!(
            v.to_json(),
            r#"{"z":1,"a":[true,null,"x/y"],"m":{"b":2.5,"a":-3}}"#
        );
        assert_eq!(unpack(&v.to_msgpack(), &mut 0), v);
    }

    #[test]
    fn msgpack_matches_msgpackr_for_the_usual_shapes() {
        let v = OrderedJson::parse(
            r#"{"attempts":0,"delay":1000,"lifo":true,"n":-1,"big":1700000000000,"f":0.5,"s":null}"#,
        )
        .unwrap();
        let mut expected = vec![0x87];
        expected.extend(b"\xa8attempts\x00");
        expected.extend(b"\xa5delay\xcd\x03\xe8");
        expected.extend(b"\xa4lifo\xc3");
        expected.extend(b"\xa1n\xff");
        expected.extend(b"\xa3big\xcf");
        expected.extend(1_700_000_000_000u64.to_be_bytes());
        expected.extend(b"\xa1f\xcb");
        expected.extend(0.5f64.to_be_bytes());
        expected.extend(b"\xa1s\xc0");
        assert_eq!(v.to_msgpack(), expected);
        let long = "x".repeat(40);
        assert_eq!(&OrderedJson::String(long).to_msgpack()[..2], &[0xd9, 40]);
        let mut out = Vec::new();
        write_len(&mut out, 20, 0x90, 0xdc, 0xdd);
        assert_eq!(out, vec![0xdc, 0, 20]);
    }

    #[test]
    fn numbers_from_doubles_are_integers_when_whole() {
        assert_eq!(OrderedJson::number(2.0).to_msgpack(), vec![2]);
        assert_eq!(OrderedJson::number(0.5).as_f64(), Some(0.5));
        let mut o = OrderedJson::Object(vec![]);
        o.set("a", OrderedJson::Bool(true));
        o.set("b", OrderedJson::Null);
        o.set("a", OrderedJson::Bool(false));
        assert_eq!(o.to_json(), r#"{"a":false,"b":null}"#);
        assert_eq!(o.remove("a"), Some(OrderedJson::Bool(false)));
        assert!(o.field("b").is_none() && o.get("b").is_some());
    }
}
