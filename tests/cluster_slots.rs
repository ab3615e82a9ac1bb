//! Redis Cluster slot rules (no server needed): CRC16 and hash tags as Redis computes them,
//! and the construction-time refusal of a queue whose keys would span slots.

use queue_native::engine::connection::slots::{crc16, hash_tag, key_slot, queue_slot};
use queue_native::engine::keys::QueueKeys;

#[test]
fn crc16_is_xmodem() {
    // The standard check value of CRC-16/XMODEM, and the one Redis's cluster spec gives.
    assert_eq!(crc16(b"123456789"), 0x31C3);
}

#[test]
fn slots_match_redis() {
    // Values from `CLUSTER KEYSLOT` on Redis 7.
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"bar"), 5061);
    assert_eq!(key_slot(b"{bull}"), key_slot(b"bull"));
    assert_eq!(
        key_slot(b"{user1000}.following"),
        key_slot(b"{user1000}.followers")
    );
}

#[test]
fn hash_tags_follow_the_first_brace_rule() {
    assert_eq!(hash_tag(b"{bull}:q:wait"), Some(&b"bull"[..]));
    assert_eq!(
        hash_tag(b"foo{}{bar}"),
        None,
        "an empty first tag hashes the whole key"
    );
    assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
    assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
    assert_eq!(hash_tag(b"no-tag"), None);
    assert_eq!(hash_tag(b"open{only"), None);
}

#[test]
fn a_queue_has_one_slot_or_is_refused() {
    let k = QueueKeys::new("{bull}", "emails");
    let slot = queue_slot(&k).unwrap();
    for key in [
        &k.wait, &k.active, &k.marker, &k.meta, &k.events, &k.delayed,
    ] {
        assert_eq!(key_slot(key.as_bytes()), slot, "{key}");
    }
    assert_eq!(
        key_slot(format!("{}42", k.base).as_bytes()),
        slot,
        "job keys too"
    );

    let tagged = QueueKeys::new("bull", "{emails}");
    assert_eq!(queue_slot(&tagged).unwrap(), key_slot(b"emails"));

    for (prefix, name) in [("bull", "emails"), ("bull{", "x"), ("bull", "{}x")] {
        let e = queue_slot(&QueueKeys::new(prefix, name)).unwrap_err();
        assert_eq!(e.code(), "ERR_CROSSSLOT", "{prefix} {name}");
        assert!(
            e.to_string().contains("'{"),
            "the message names the fix: {e}"
        );
    }
}
