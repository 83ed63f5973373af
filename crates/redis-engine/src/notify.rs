//! Keyspace notifications (`notify-keyspace-events`), as Redis's notify.c.
//!
//! Commands call [`notify`] at the point Redis calls `notifyKeyspaceEvent`, so messages
//! reach subscribers in Redis's order. Events raised inside the keyspace itself (lazy and
//! active expiry, eviction, key creation for the `n` class) are queued in
//! `Keyspace::events` and published by [`drain`] before the next command event, after the
//! command, and after each background cycle. With notifications off (ElastiCache's default
//! `""`) every call is one bit test.

use crate::db::Blob;
use crate::node::Node;

pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m (not part of A)
pub const MODULE: u32 = 1 << 13; // d
pub const NEW: u32 = 1 << 14; // n (not part of A)
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The error Redis gives for a bad class character (CONFIG SET).
pub const INVALID: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// `keyspaceEventsStringToFlags`: None on an unknown character.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// `keyspaceEventsFlagsToString`: the canonical form CONFIG GET shows.
pub fn flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// `notifyKeyspaceEvent(type, event, key, db)`. `out` is the current client's reply
/// buffer (a subscriber may be the client running the command).
#[inline]
pub fn notify(node: &mut Node, out: &mut Vec<u8>, class: u32, event: &str, db: usize, key: &[u8]) {
    if node.ks.notify_flags & class == 0 {
        return;
    }
    publish_event(node, out, event, db, key);
}

#[cold]
fn publish_event(node: &mut Node, out: &mut Vec<u8>, event: &str, db: usize, key: &[u8]) {
    // Events queued by the keyspace (expired, evicted, new) happened first.
    drain(node, out);
    send(node, out, event, db, key);
}

fn send(node: &mut Node, out: &mut Vec<u8>, event: &str, db: usize, key: &[u8]) {
    let flags = node.ks.notify_flags;
    if flags & KEYSPACE != 0 {
        let mut ch = Vec::with_capacity(16 + key.len());
        ch.extend_from_slice(format!("__keyspace@{db}__:").as_bytes());
        ch.extend_from_slice(key);
        crate::cmd::pubsub::publish_msg(node, out, &ch, event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        let ch = format!("__keyevent@{db}__:{event}");
        crate::cmd::pubsub::publish_msg(node, out, ch.as_bytes(), key);
    }
}

/// Publish the events the keyspace queued (expiry, eviction, key creation).
#[inline]
pub fn drain(node: &mut Node, out: &mut Vec<u8>) {
    if node.ks.events.is_empty() {
        return;
    }
    let list: Vec<(&'static str, usize, Blob)> = std::mem::take(&mut node.ks.events);
    for (event, db, key) in list {
        send(node, out, event, db, &key);
    }
}

/// Publish queued events outside any client's command (background expiry/eviction).
pub fn drain_background(node: &mut Node) {
    if node.ks.events.is_empty() {
        return;
    }
    let prev = node.current_client;
    // No client is running a command: every subscriber gets the message in its own buffer.
    node.current_client = 0;
    let mut scratch = Vec::new();
    drain(node, &mut scratch);
    node.current_client = prev;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(parse_flags(""), Some(0));
        assert_eq!(flags_to_string(parse_flags("KEA").unwrap_or(0)), "AKE");
        assert_eq!(flags_to_string(parse_flags("Ex").unwrap_or(0)), "xE");
        assert_eq!(
            flags_to_string(parse_flags("g$lshzxetdKE").unwrap_or(0)),
            "AKE"
        );
        assert_eq!(flags_to_string(parse_flags("KAn").unwrap_or(0)), "AK");
        assert_eq!(flags_to_string(parse_flags("Knm").unwrap_or(0)), "nKm");
        assert_eq!(parse_flags("KEAq"), None);
        assert_eq!(parse_flags("k"), None);
    }
}
