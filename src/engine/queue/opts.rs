//! Job options for `Queue.add`: validation, BullMQ's normalisation, and the msgpack bag the
//! add script re-encodes into the stored `opts` field.
//!
//! Why msgpack and why order matters: BullMQ stores `opts` as `cjson.encode` of the table
//! `cmsgpack.unpack` built from the producer's msgpack map. cjson writes the keys in the
//! table's internal hash order, which depends on the keys *and on the order they were
//! inserted*. Sending the same map, with the same keys in the same order, through the same
//! two Lua calls is what makes our `opts` text byte-identical to BullMQ's. So options are
//! parsed into [`OVal`], a JSON value that keeps object key order (serde_json's own map
//! sorts keys), normalised the way BullMQ's `Job` constructor and `optsAsJSON` do, and
//! encoded by [`OVal::to_msgpack`].

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::engine::error::{Error, Result};

/// Highest priority BullMQ accepts (2^21 - 1): keeps `priority * 2^32 + counter` exact.
pub const MAX_PRIORITY: u64 = 2_097_151;

/// A JSON value that remembers the order of object keys.
#[derive(Clone, Debug, PartialEq)]
pub enum OVal {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<OVal>),
    Obj(Vec<(String, OVal)>),
}

impl OVal {
    pub fn parse(text: &str) -> std::result::Result<OVal, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn get(&self, key: &str) -> Option<&OVal> {
        match self {
            OVal::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Present and not `null`.
    pub fn field(&self, key: &str) -> Option<&OVal> {
        self.get(key).filter(|v| !matches!(v, OVal::Null))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            OVal::Num(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            OVal::Str(s) => Some(s),
            _ => None,
        }
    }

    /// JavaScript truthiness, for the options BullMQ tests with `if (opts.x)`.
    pub fn truthy(&self) -> bool {
        match self {
            OVal::Null => false,
            OVal::Bool(b) => *b,
            OVal::Num(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
            OVal::Str(s) => !s.is_empty(),
            OVal::Arr(_) | OVal::Obj(_) => true,
        }
    }

    /// Set `key`, keeping its position when it exists (as a JavaScript assignment does).
    pub fn set(&mut self, key: &str, value: OVal) {
        if let OVal::Obj(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let OVal::Obj(entries) = self {
            entries.retain(|(k, _)| k != key);
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
            OVal::Null => out.push_str("null"),
            OVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            OVal::Num(n) => out.push_str(&n.to_string()),
            OVal::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            OVal::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            OVal::Obj(entries) => {
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
    /// float64. (Lua reads every number as a double, so only the values matter.)
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_msgpack(&mut out);
        out
    }

    fn write_msgpack(&self, out: &mut Vec<u8>) {
        match self {
            OVal::Null => out.push(0xc0),
            OVal::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            OVal::Num(n) => {
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
            OVal::Str(s) => {
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
            OVal::Arr(items) => {
                write_len(out, items.len(), 0x90, 0xdc, 0xdd);
                for v in items {
                    v.write_msgpack(out);
                }
            }
            OVal::Obj(entries) => {
                write_len(out, entries.len(), 0x80, 0xde, 0xdf);
                for (k, v) in entries {
                    OVal::Str(k.clone()).write_msgpack(out);
                    v.write_msgpack(out);
                }
            }
        }
    }
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

impl<'de> Deserialize<'de> for OVal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OVal;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> std::result::Result<OVal, E> {
                Ok(OVal::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<OVal, E> {
                Ok(OVal::Null)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<OVal, E> {
                Ok(OVal::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<OVal, E> {
                Ok(OVal::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<OVal, E> {
                Ok(OVal::Num(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<OVal, E> {
                serde_json::Number::from_f64(n)
                    .map(OVal::Num)
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<OVal, E> {
                Ok(OVal::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<OVal, E> {
                Ok(OVal::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<OVal, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element()? {
                    items.push(v);
                }
                Ok(OVal::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OVal, A::Error> {
                let mut obj = OVal::Obj(Vec::new());
                while let Some((k, v)) = map.next_entry::<String, OVal>()? {
                    obj.set(&k, v);
                }
                Ok(obj)
            }
        }
        d.deserialize_any(V)
    }
}

/// One job, validated and normalised, ready for the add script.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedJob {
    /// "" = the queue's counter gives the id.
    pub custom_id: String,
    pub name: String,
    /// JSON text of the data, stored as is.
    pub data: String,
    /// `timestamp` option, else now (ms).
    pub timestamp: f64,
    /// The options as the job sees them (BullMQ's `job.opts`), JSON.
    pub public_opts: String,
    /// The stored form (short names), msgpack.
    pub packed_opts: Vec<u8>,
    /// "<parent queue key>:<parent id>" when the job is a child.
    pub parent_key: Option<String>,
    /// msgpack `{id, queueKey[, fpof, rdof, idof, cpof]}` when the job is a child.
    pub packed_parent: Option<Vec<u8>>,
    pub delay: f64,
    pub priority: u64,
}

/// Renamed on the way to Redis (BullMQ's `optsEncodeMap`).
const SHORT_NAMES: [(&str, &str); 6] = [
    ("deduplication", "de"),
    ("failParentOnFailure", "fpof"),
    ("continueParentOnFailure", "cpof"),
    ("ignoreDependencyOnFailure", "idof"),
    ("keepLogs", "kl"),
    ("removeDependencyOnFailure", "rdof"),
];

/// Deduplication modes whose semantics queue-native does not implement: refused rather than
/// silently treated as the simple mode.
const UNSUPPORTED_DEDUP: [&str; 4] = ["extend", "replace", "keepLastIfActive", "reschedule"];

/// Validate and normalise one job. `merged_opts` is the JSON of the options after merging
/// the queue's `defaultJobOptions` (as `Object.assign({}, defaults, opts, {jobId})` would),
/// `data` the JSON of the payload; `at` names the job in error messages (e.g. "opts" or
/// "jobs[3].opts"). `now` is used when no `timestamp` option is given.
pub fn prepare(
    name: &str,
    data: &str,
    merged_opts: &str,
    at: &str,
    now: u64,
) -> Result<PreparedJob> {
    let bad = |key: &str, reason: &str| {
        let option = if key.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{key}")
        };
        Error::invalid(option, reason)
    };
    let input =
        OVal::parse(merged_opts).map_err(|e| bad("", &format!("is not valid JSON ({e})")))?;
    let OVal::Obj(entries) = input else {
        return Err(bad("", "must be an object"));
    };

    // BullMQ's Job constructor: `Object.assign({attempts: 0}, opts without repeatJobKey)`,
    // then `opts.backoff = Backoffs.normalize(opts.backoff)` (a number becomes
    // {type: 'fixed', delay}; null / absent stays absent).
    let mut opts = OVal::Obj(vec![("attempts".into(), OVal::Num(0.into()))]);
    for (k, v) in entries {
        if k != "repeatJobKey" {
            opts.set(&k, v);
        }
    }
    match opts.get("backoff") {
        Some(OVal::Num(n)) => {
            let n = n.clone();
            opts.set(
                "backoff",
                OVal::Obj(vec![
                    ("type".into(), OVal::Str("fixed".into())),
                    ("delay".into(), OVal::Num(n)),
                ]),
            );
        }
        Some(OVal::Null) => opts.remove("backoff"),
        _ => {}
    }

    validate(&opts, data, &bad)?;

    let custom_id = match opts.field("jobId") {
        Some(OVal::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let timestamp = match opts.field("timestamp").and_then(OVal::as_f64) {
        Some(t) if t != 0.0 => t,
        _ => now as f64,
    };
    let delay = opts.field("delay").and_then(OVal::as_f64).unwrap_or(0.0);
    let priority = opts.field("priority").and_then(OVal::as_f64).unwrap_or(0.0) as u64;

    let (parent_key, packed_parent) = match opts.field("parent") {
        Some(p) => {
            let id = p.field("id").and_then(OVal::as_str).unwrap_or_default();
            let queue = p.field("queue").and_then(OVal::as_str).unwrap_or_default();
            let mut parent = OVal::Obj(vec![
                ("id".into(), OVal::Str(id.into())),
                ("queueKey".into(), OVal::Str(queue.into())),
            ]);
            for (long, short) in [
                ("failParentOnFailure", "fpof"),
                ("removeDependencyOnFailure", "rdof"),
                ("ignoreDependencyOnFailure", "idof"),
                ("continueParentOnFailure", "cpof"),
            ] {
                if opts.get(long).is_some_and(OVal::truthy) {
                    parent.set(short, OVal::Bool(true));
                }
            }
            (
                Some(crate::engine::keys::job_key_in(queue, id)),
                Some(parent.to_msgpack()),
            )
        }
        None => (None, None),
    };

    // BullMQ's optsAsJSON: short names, telemetry split into `tm` / `omc`, same positions.
    let OVal::Obj(public) = &opts else {
        unreachable!("opts is an object")
    };
    let mut stored = OVal::Obj(Vec::with_capacity(public.len()));
    for (k, v) in public {
        if k == "telemetry" {
            if let Some(m) = v.get("metadata") {
                stored.set("tm", m.clone());
            }
            if let Some(o) = v.get("omitContext") {
                stored.set("omc", o.clone());
            }
            continue;
        }
        let key = SHORT_NAMES
            .iter()
            .find(|(long, _)| long == k)
            .map(|(_, short)| *short)
            .unwrap_or(k);
        stored.set(key, v.clone());
    }

    Ok(PreparedJob {
        custom_id,
        name: name.to_string(),
        data: data.to_string(),
        timestamp,
        public_opts: opts.to_json(),
        packed_opts: stored.to_msgpack(),
        parent_key,
        packed_parent,
        delay,
        priority,
    })
}

fn non_negative(v: &OVal) -> bool {
    v.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0)
}

fn non_negative_int(v: &OVal) -> bool {
    v.as_f64()
        .is_some_and(|f| f.is_finite() && f >= 0.0 && f.fract() == 0.0)
}

/// Would JavaScript's `${parseInt(id, 10)}` give back `id`? (BullMQ refuses such custom ids:
/// they would collide with the counter's ids.)
fn looks_like_integer(id: &str) -> bool {
    let digits = id.strip_prefix('-').unwrap_or(id);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return false;
    }
    if id == "-0" {
        return false;
    }
    if digits.len() <= 15 {
        return true;
    }
    // Longer ones only while the double prints back the same digits (below 1e21).
    match id.parse::<f64>() {
        Ok(f) if f.abs() < 1e21 => format!("{f}") == id,
        _ => false,
    }
}

fn validate(opts: &OVal, data: &str, bad: &dyn Fn(&str, &str) -> Error) -> Result<()> {
    if let Some(id) = opts.field("jobId") {
        let Some(id) = id.as_str() else {
            return Err(bad("jobId", "must be a string"));
        };
        if !id.is_empty() {
            if id == "0" || id.starts_with("0:") {
                return Err(bad("jobId", "JobId cannot be '0' or start with '0:'"));
            }
            if looks_like_integer(id) {
                return Err(bad("jobId", "Custom Id cannot be integers"));
            }
            if id.contains(':') && id.split(':').count() != 3 {
                return Err(bad("jobId", "Custom Id cannot contain :"));
            }
        }
    }
    if let Some(p) = opts.field("priority") {
        let ok = p
            .as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f >= 0.0 && f <= MAX_PRIORITY as f64);
        if !ok {
            return Err(bad(
                "priority",
                &format!("must be an integer between 0 and {MAX_PRIORITY}"),
            ));
        }
    }
    if let Some(d) = opts.field("delay")
        && !non_negative(d)
    {
        return Err(bad(
            "delay",
            "must be a non-negative number of milliseconds",
        ));
    }
    if let Some(a) = opts.field("attempts")
        && !non_negative_int(a)
    {
        return Err(bad("attempts", "must be a non-negative integer"));
    }
    if let Some(t) = opts.field("timestamp")
        && !non_negative(t)
    {
        return Err(bad(
            "timestamp",
            "must be a non-negative number of milliseconds",
        ));
    }
    for key in ["keepLogs", "stackTraceLimit"] {
        if let Some(v) = opts.field(key)
            && !non_negative_int(v)
        {
            return Err(bad(key, "must be a non-negative integer"));
        }
    }
    if let Some(l) = opts.field("lifo")
        && !matches!(l, OVal::Bool(_))
    {
        return Err(bad("lifo", "must be a boolean"));
    }
    if let Some(b) = opts.field("backoff") {
        let OVal::Obj(_) = b else {
            return Err(bad(
                "backoff",
                "must be a number (ms) or { type, delay?, jitter? }",
            ));
        };
        if b.field("type")
            .and_then(OVal::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(bad("backoff.type", "must be a non-empty string"));
        }
        if let Some(d) = b.field("delay")
            && !non_negative(d)
        {
            return Err(bad(
                "backoff.delay",
                "must be a non-negative number of milliseconds",
            ));
        }
        if let Some(j) = b.field("jitter")
            && !j.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f))
        {
            return Err(bad("backoff.jitter", "must be a number between 0 and 1"));
        }
    }
    for key in ["removeOnComplete", "removeOnFail"] {
        if let Some(v) = opts.field(key) {
            let ok = match v {
                OVal::Bool(_) => true,
                OVal::Num(_) => v.as_f64().is_some_and(f64::is_finite),
                OVal::Obj(entries) => entries.iter().all(|(k, x)| {
                    matches!(k.as_str(), "age" | "count" | "limit")
                        && (matches!(x, OVal::Null) || non_negative(x))
                }),
                _ => false,
            };
            if !ok {
                return Err(bad(
                    key,
                    "must be a boolean, a number or { age?, count?, limit? }",
                ));
            }
        }
    }
    if opts.get("debounce").is_some() {
        return Err(bad(
            "debounce",
            "was removed in BullMQ 6: use `deduplication`",
        ));
    }
    if opts.field("repeat").is_some() {
        return Err(bad(
            "repeat",
            "repeatable jobs are not supported by queue-native's Queue",
        ));
    }
    let parent = opts.field("parent");
    if let Some(p) = parent {
        for key in ["id", "queue"] {
            if p.field(key)
                .and_then(OVal::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(bad(
                    &format!("parent.{key}"),
                    "must be a non-empty string (queue: the parent's `<prefix>:<queue>`)",
                ));
            }
        }
    }
    if let Some(de) = opts.field("deduplication") {
        let OVal::Obj(_) = de else {
            return Err(bad("deduplication", "must be { id, ttl? }"));
        };
        if de
            .field("id")
            .and_then(OVal::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(bad("deduplication.id", "must be a non-empty string"));
        }
        if let Some(t) = de.field("ttl")
            && !non_negative(t)
        {
            return Err(bad(
                "deduplication.ttl",
                "must be a non-negative number of milliseconds",
            ));
        }
        for mode in UNSUPPORTED_DEDUP {
            if de.get(mode).is_some_and(OVal::truthy) {
                return Err(bad(
                    &format!("deduplication.{mode}"),
                    "is not supported by queue-native (only { id, ttl })",
                ));
            }
        }
        if parent.is_some() {
            return Err(bad(
                "deduplication",
                "cannot be combined with `parent` (as in BullMQ)",
            ));
        }
    }
    let exclusive: Vec<&str> = [
        "removeDependencyOnFailure",
        "failParentOnFailure",
        "continueParentOnFailure",
        "ignoreDependencyOnFailure",
    ]
    .into_iter()
    .filter(|k| opts.get(k).is_some_and(OVal::truthy))
    .collect();
    if exclusive.len() > 1 {
        return Err(bad(
            exclusive[1],
            &format!("cannot be used together with {}", exclusive[0]),
        ));
    }
    if let Some(limit) = opts.field("sizeLimit") {
        let Some(limit) = limit.as_f64().filter(|f| *f >= 0.0) else {
            return Err(bad("sizeLimit", "must be a non-negative number of bytes"));
        };
        if limit > 0.0 && data.len() as f64 > limit {
            return Err(bad(
                "sizeLimit",
                &format!(
                    "the job's data is {} bytes, more than the limit of {limit}",
                    data.len()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &OVal) -> Vec<&str> {
        match v {
            OVal::Obj(e) => e.iter().map(|(k, _)| k.as_str()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn ordered_json_round_trips() {
        let text = r#"{"z":1,"a":[true,null,"x\/y"],"m":{"b":2.5,"a":-3}}"#;
        let v = OVal::parse(text).unwrap();
        assert_eq!(keys(&v), ["z", "a", "m"]);
        assert_eq!(
            v.to_json(),
            r#"{"z":1,"a":[true,null,"x/y"],"m":{"b":2.5,"a":-3}}"#
        );
    }

    #[test]
    fn msgpack_matches_msgpackr_for_the_usual_shapes() {
        let v = OVal::parse(r#"{"attempts":0,"delay":1000,"lifo":true,"n":-1,"big":1700000000000,"f":0.5,"s":null}"#).unwrap();
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
        assert_eq!(&OVal::Str(long.clone()).to_msgpack()[..2], &[0xd9, 40]);
        assert_eq!(write_len_bytes(20, 0x90, 0xdc, 0xdd), vec![0xdc, 0, 20]);
    }

    fn write_len_bytes(n: usize, a: u8, b: u8, c: u8) -> Vec<u8> {
        let mut out = Vec::new();
        write_len(&mut out, n, a, b, c);
        out
    }

    #[test]
    fn normalises_like_bullmq() {
        let p = prepare(
            "n",
            "{}",
            r#"{"removeOnComplete":10,"backoff":300,"deduplication":{"id":"d"},"jobId":"a-1","attempts":3,"repeatJobKey":"x","telemetry":{"metadata":"m","omitContext":true}}"#,
            "opts",
            5,
        )
        .unwrap();
        let public = OVal::parse(&p.public_opts).unwrap();
        assert_eq!(
            keys(&public),
            [
                "attempts",
                "removeOnComplete",
                "backoff",
                "deduplication",
                "jobId",
                "telemetry"
            ]
        );
        assert_eq!(
            public.get("backoff").unwrap().to_json(),
            r#"{"type":"fixed","delay":300}"#
        );
        assert_eq!(p.custom_id, "a-1");
        assert_eq!(p.timestamp, 5.0);
        // Stored names: de, tm, omc in the same places.
        let mut expected = OVal::parse(
            r#"{"attempts":3,"removeOnComplete":10,"backoff":{"type":"fixed","delay":300},"de":{"id":"d"},"jobId":"a-1","tm":"m","omc":true}"#,
        )
        .unwrap()
        .to_msgpack();
        assert_eq!(p.packed_opts, std::mem::take(&mut expected));
    }

    #[test]
    fn parent_and_flags() {
        let p = prepare(
            "n",
            "{}",
            r#"{"parent":{"id":"p1","queue":"bull:pq"},"failParentOnFailure":true,"timestamp":42}"#,
            "opts",
            5,
        )
        .unwrap();
        assert_eq!(p.parent_key.as_deref(), Some("bull:pq:p1"));
        assert_eq!(
            p.packed_parent.unwrap(),
            OVal::parse(r#"{"id":"p1","queueKey":"bull:pq","fpof":true}"#)
                .unwrap()
                .to_msgpack()
        );
        assert_eq!(p.timestamp, 42.0);
    }

    #[test]
    fn rejects_bad_options_naming_them() {
        let bad = |opts: &str| match prepare("n", "{}", opts, "jobs[2].opts", 1) {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption for {opts}, got {other:?}"),
        };
        assert_eq!(bad(r#"{"priority":-1}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"priority":2097152}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"priority":1.5}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"priority":"1"}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"delay":-5}"#), "jobs[2].opts.delay");
        assert_eq!(bad(r#"{"jobId":"123"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":"-7"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":"0"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":"a:b"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":5}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"attempts":-1}"#), "jobs[2].opts.attempts");
        assert_eq!(
            bad(r#"{"backoff":{"delay":5}}"#),
            "jobs[2].opts.backoff.type"
        );
        assert_eq!(
            bad(r#"{"backoff":{"type":"fixed","jitter":2}}"#),
            "jobs[2].opts.backoff.jitter"
        );
        assert_eq!(
            bad(r#"{"deduplication":{}}"#),
            "jobs[2].opts.deduplication.id"
        );
        assert_eq!(
            bad(r#"{"deduplication":{"id":"x","extend":true}}"#),
            "jobs[2].opts.deduplication.extend"
        );
        assert_eq!(
            bad(r#"{"deduplication":{"id":"x"},"parent":{"id":"p","queue":"bull:q"}}"#),
            "jobs[2].opts.deduplication"
        );
        assert_eq!(bad(r#"{"parent":{"id":"p"}}"#), "jobs[2].opts.parent.queue");
        assert_eq!(
            bad(r#"{"removeOnComplete":"yes"}"#),
            "jobs[2].opts.removeOnComplete"
        );
        assert_eq!(bad(r#"{"debounce":{"id":"x"}}"#), "jobs[2].opts.debounce");
        assert_eq!(bad("[1]"), "jobs[2].opts");
        assert_eq!(bad("{"), "jobs[2].opts");
        assert_eq!(
            bad(r#"{"failParentOnFailure":true,"ignoreDependencyOnFailure":true}"#),
            "jobs[2].opts.ignoreDependencyOnFailure"
        );
        assert!(matches!(
            prepare("n", "\"0123456789\"", r#"{"sizeLimit":5}"#, "opts", 1),
            Err(Error::InvalidOption { .. })
        ));
    }

    #[test]
    fn accepts_what_bullmq_accepts() {
        for ok in [
            r#"{}"#,
            r#"{"priority":0,"delay":0}"#,
            r#"{"priority":2097151}"#,
            r#"{"jobId":"repeat:a:1"}"#,
            r#"{"jobId":"007"}"#,
            r#"{"jobId":"12345678901234567890"}"#,
            r#"{"jobId":""}"#,
            r#"{"jobId":null,"backoff":null}"#,
            r#"{"removeOnFail":{"age":10,"count":5}}"#,
            r#"{"deduplication":{"id":"x","ttl":100,"extend":false}}"#,
        ] {
            assert!(prepare("n", "{}", ok, "opts", 1).is_ok(), "{ok}");
        }
        assert!(looks_like_integer("42"));
        assert!(!looks_like_integer("42a"));
        assert!(!looks_like_integer("+42"));
        assert!(!looks_like_integer("-0"));
    }
}
