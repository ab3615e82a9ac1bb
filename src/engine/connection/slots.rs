//! Redis Cluster key slots: CRC16 (XMODEM) of the key's hash tag, modulo 16384, and the rule
//! that keeps every key of one queue in one slot.

use crate::engine::error::{Error, Result};
use crate::engine::keys::QueueKeys;

/// Slots of a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum Redis Cluster
/// hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The part of `key` that is hashed: the text between the first `{` and the first `}` after
/// it when that text is non-empty, else the whole key (Redis's rule).
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let close = key[open + 1..].iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &key[open + 1..open + 1 + close])
}

/// The cluster slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) % SLOT_COUNT
}

/// The one slot every key of this queue hashes to, or `ERR_CROSSSLOT` naming the fix. A
/// queue's keys are `<prefix>:<name>:<suffix>`: they share a slot exactly when
/// `<prefix>:<name>:` itself holds a complete, non-empty hash tag, so no suffix can change it.
pub fn queue_slot(keys: &QueueKeys) -> Result<u16> {
    match hash_tag(keys.base.as_bytes()) {
        Some(tag) => Ok(crc16(tag) % SLOT_COUNT),
        None => Err(Error::CrossSlot(format!(
            "queue `{}` with prefix `{}` would spread its keys over many Redis Cluster slots \
             (scripts touching several of them fail with CROSSSLOT): give its keys one hash tag, \
             e.g. prefix '{{{}}}' (every queue in one slot, as BullMQ documents) or a queue \
             name with a tag such as '{{{}}}'",
            keys.name, keys.prefix, keys.prefix, keys.name
        ))),
    }
}
