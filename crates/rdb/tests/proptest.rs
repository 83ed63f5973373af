//! Property tests: encode → decode round trips, and arbitrary input never panics.

use bytes::Bytes;
use proptest::prelude::*;
use rdb::{
    crc64, dump, dump_with_version, read_file, restore, Entry, FileReader, Stream, StreamConsumer,
    StreamEntry, StreamGroup, StreamId, StreamPendingEntry, Value, Writer, WriterOptions,
};

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from),
        2 => any::<i64>().prop_map(|i| Bytes::from(i.to_string())),
        1 => (-200i64..200).prop_map(|i| Bytes::from(i.to_string())),
        1 => ("[a-c]{1,4}", 5usize..300).prop_map(|(s, n)| Bytes::from(s.repeat(n))),
        1 => prop::collection::vec(any::<u8>(), 20..200).prop_map(Bytes::from),
    ]
}

fn arb_score() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        2 => (-1000i32..1000).prop_map(|i| i as f64 / 4.0),
    ]
}

fn arb_id() -> impl Strategy<Value = StreamId> {
    (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| StreamId { ms, seq })
}

fn arb_stream() -> impl Strategy<Value = Stream> {
    let fields = prop::collection::vec((arb_bytes(), arb_bytes()), 0..4);
    let entries = prop::collection::vec((0u64..1000, 0u64..5, fields, any::<bool>()), 0..250);
    let pel = prop::collection::vec(
        (arb_id(), any::<i64>(), any::<u64>()).prop_map(|(id, t, c)| StreamPendingEntry {
            id,
            delivery_time_ms: t,
            delivery_count: c,
        }),
        0..4,
    );
    let consumers = prop::collection::vec(
        (
            arb_bytes(),
            any::<i64>(),
            prop::collection::vec(arb_id(), 0..3),
        )
            .prop_map(|(name, seen, pending)| StreamConsumer {
                name,
                seen_time_ms: seen,
                active_time_ms: -1,
                pending,
            }),
        0..3,
    );
    let groups = prop::collection::vec(
        (arb_bytes(), arb_id(), -1i64..1_000_000, pel, consumers).prop_map(
            |(name, last_id, entries_read, pel, consumers)| StreamGroup {
                name,
                last_id,
                entries_read,
                pel,
                consumers,
            },
        ),
        0..3,
    );
    (entries, arb_id(), arb_id(), arb_id(), any::<u64>(), groups).prop_map(
        |(raw, last_id, first_id, max_del, added, groups)| {
            // IDs strictly increasing; a previous entry's fields repeated sometimes (SAMEFIELDS).
            let mut ms = 1_700_000_000_000u64;
            let mut entries: Vec<StreamEntry> = Vec::new();
            for (dms, seq, fields, same) in raw {
                ms += dms + 1;
                let fields = match (same, entries.last()) {
                    (true, Some(prev)) => prev.fields.clone(),
                    _ => fields,
                };
                entries.push(StreamEntry {
                    id: StreamId { ms, seq },
                    fields,
                });
            }
            Stream {
                entries,
                last_id,
                first_id,
                max_deleted_entry_id: max_del,
                entries_added: added,
                groups,
            }
        },
    )
}

fn dedup<T>(v: Vec<T>, key: impl Fn(&T) -> Bytes) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter().filter(|x| seen.insert(key(x))).collect()
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => arb_bytes().prop_map(Value::String),
        1 => prop::collection::vec(arb_bytes(), 1..60).prop_map(Value::List),
        1 => prop::collection::vec(arb_bytes(), 1..60)
            .prop_map(|v| Value::Set(dedup(v, |b| b.clone()))),
        1 => prop::collection::vec((arb_bytes(), arb_score()), 1..60)
            .prop_map(|v| Value::SortedSet(dedup(v, |p| p.0.clone()))),
        1 => prop::collection::vec((arb_bytes(), arb_bytes()), 1..60)
            .prop_map(|v| Value::Hash(dedup(v, |p| p.0.clone()))),
        1 => arb_stream().prop_map(|s| Value::Stream(Box::new(s))),
    ]
}

/// Writes through the borrowed-data entry points.
fn write_borrowed(w: &mut Writer<Vec<u8>>, k: &[u8], v: &Value, exp: Option<i64>) {
    match v {
        Value::String(s) => w.write_string_entry(k, s, exp),
        Value::List(l) => w.write_list_entry(k, l.iter().map(|b| b.as_ref()), exp),
        Value::Set(l) => w.write_set_entry(k, l.iter().map(|b| b.as_ref()), exp),
        Value::SortedSet(z) => w.write_zset_entry(k, z.iter().map(|(m, s)| (m.as_ref(), *s)), exp),
        Value::Hash(h) => {
            w.write_hash_entry(k, h.iter().map(|(f, v)| (f.as_ref(), v.as_ref())), exp)
        }
        Value::Stream(_) => w.write_entry(k, v, exp),
    }
    .unwrap()
}

/// Gives `body` a valid DUMP trailer (version 10 + CRC).
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn dump_restore_round_trip(v in arb_value()) {
        let p = dump(&v);
        prop_assert_eq!(restore(&p).unwrap(), v.clone());
        if let Value::Stream(s) = &v {
            // v3 (RDB 11) also stores consumers' active-time; unknown (-1) is written as seen-time.
            let mut want = (**s).clone();
            for g in &mut want.groups {
                for c in &mut g.consumers {
                    c.active_time_ms = c.seen_time_ms;
                }
            }
            prop_assert_eq!(
                restore(&dump_with_version(&v, 11)).unwrap(),
                Value::Stream(Box::new(want))
            );
        } else {
            for ver in [9u16, 11] {
                prop_assert_eq!(restore(&dump_with_version(&v, ver)).unwrap(), v.clone());
            }
        }
    }

    #[test]
    fn file_round_trip(
        entries in prop::collection::vec(
            (0u64..3, arb_bytes(), arb_value(), prop::option::of(any::<i64>())), 0..20),
        compress in any::<bool>(),
        borrowed in any::<bool>(),
    ) {
        let mut entries = entries;
        entries.sort_by_key(|e| e.0);
        let opts = WriterOptions { compress, ..WriterOptions::default() };
        let mut w = Writer::with_options(Vec::new(), &opts).unwrap();
        let mut cur = None;
        for (db, k, v, exp) in &entries {
            if cur != Some(*db) {
                w.select_db(*db, 0, 0).unwrap();
                cur = Some(*db);
            }
            if borrowed {
                write_borrowed(&mut w, k, v, *exp);
            } else {
                w.write_entry(k, v, *exp).unwrap();
            }
        }
        let file = w.finish().unwrap();
        let got = read_file(file.as_slice()).unwrap();
        let want: Vec<Entry> = entries
            .into_iter()
            .map(|(db, key, value, expire_at_ms)| Entry { db, key, value, expire_at_ms })
            .collect();
        prop_assert_eq!(got, want);
        // A corrupted byte is detected (by the decoder or by the checksum), never a panic.
        let mut bad = file.clone();
        let i = bad.len() / 2;
        bad[i] ^= 0x55;
        if bad != file {
            prop_assert!(read_file(bad.as_slice()).is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = restore(&data);
        let _ = restore(&seal(data.clone()));
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&data);
        let _ = read_file(f.as_slice());
        let _ = read_file(data.as_slice());
    }

    #[test]
    fn mutated_dumps_never_panic(
        v in arb_value(),
        muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let p = dump(&v);
        let mut body = p[..p.len() - 10].to_vec();
        for (i, b) in muts {
            let i = i.index(body.len());
            body[i] = b;
        }
        let _ = restore(&seal(body.clone()));
        let c = cut.index(body.len() + 1);
        let _ = restore(&seal(body[..c].to_vec()));
        // Same object inside a file.
        let mut f = b"REDIS0010".to_vec();
        f.push(0xfe);
        f.push(0);
        f.push(body[0]);
        f.extend_from_slice(b"\x01k");
        f.extend_from_slice(&body[1..]);
        f.push(0xff);
        let _ = FileReader::new(f.as_slice()).map(|r| r.count());
    }
}

#[test]
fn huge_length_prefixes_do_not_allocate() {
    // A string claiming 2^62 bytes, a list claiming 2^62 elements, an LZF string claiming
    // 2^40 bytes of output: all fail fast with an error.
    let mut s = vec![0u8, 0x81];
    s.extend_from_slice(&(1u64 << 62).to_be_bytes());
    s.extend_from_slice(b"abc");
    assert!(restore(&seal(s)).is_err());
    let mut l = vec![1u8, 0x81];
    l.extend_from_slice(&(1u64 << 62).to_be_bytes());
    l.extend_from_slice(b"\x01a");
    assert!(restore(&seal(l)).is_err());
    let mut z = vec![0u8, 0xc3, 0x02, 0x81];
    z.extend_from_slice(&(1u64 << 40).to_be_bytes());
    z.extend_from_slice(&[0x00, b'a']);
    assert!(restore(&seal(z)).is_err());
    let mut st = vec![19u8, 0x81];
    st.extend_from_slice(&(1u64 << 62).to_be_bytes());
    assert!(restore(&seal(st)).is_err());
}

#[test]
fn empty_collections_are_refused_and_skipped() {
    let empty = Value::List(vec![]);
    assert_eq!(
        restore(&dump(&empty)).unwrap_err().restore_reply(),
        "ERR Bad data format"
    );
    let mut w = Writer::new(Vec::new()).unwrap();
    w.select_db(0, 2, 0).unwrap();
    w.write_entry(b"e", &Value::Hash(vec![]), Some(5)).unwrap();
    w.write_entry(b"k", &Value::String(Bytes::from_static(b"v")), None)
        .unwrap();
    let f = w.finish().unwrap();
    let mut r = FileReader::new(f.as_slice()).unwrap();
    let all: Vec<Entry> = r.by_ref().map(|e| e.unwrap()).collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].key.as_ref(), b"k");
    assert_eq!(all[0].expire_at_ms, None);
    assert_eq!(r.skipped_empty_keys(), 1);
}

#[test]
fn restore_errors_are_redis_errors() {
    let p = dump(&Value::String(Bytes::from_static(b"x")));
    let mut bad = p.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    let e = restore(&bad).unwrap_err();
    assert_eq!(
        e.restore_reply(),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert!(restore(&p[..5]).is_err());
    // Version 12 is refused even with a valid CRC.
    let mut v12 = p[..p.len() - 10].to_vec();
    v12.extend_from_slice(&12u16.to_le_bytes());
    let crc = crc64(0, &v12);
    v12.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        restore(&v12).unwrap_err().restore_reply(),
        "ERR DUMP payload version or checksum are wrong"
    );
    // Duplicate set members / hash fields are refused.
    let dup = Value::Set(vec![Bytes::from_static(b"a"), Bytes::from_static(b"a")]);
    assert_eq!(
        restore(&dump(&dup)).unwrap_err().restore_reply(),
        "ERR Bad data format"
    );
    let dup = Value::Hash(vec![
        (Bytes::from_static(b"f"), Bytes::from_static(b"1")),
        (Bytes::from_static(b"f"), Bytes::from_static(b"2")),
    ]);
    assert!(restore(&dump(&dup)).is_err());
    // A module type gives "Bad data format".
    let e = restore(&seal(vec![7, 0, 0])).unwrap_err();
    assert_eq!(e.restore_reply(), "ERR Bad data format");
}

#[test]
fn reader_skips_optional_opcodes() {
    // Hand-built file: old seconds expiry, IDLE, FREQ, MODULE_AUX, SLOT_INFO, FUNCTION2.
    let mut f = b"REDIS0009".to_vec();
    f.extend_from_slice(&[0xfa, 0x01, b'k', 0x01, b'v']); // AUX k=v
    f.extend_from_slice(&[0xf5, 0x03, b'l', b'i', b'b']); // FUNCTION2 "lib"
                                                          // MODULE_AUX: module id (64-bit len), when_opcode, when, then typed values until EOF (0).
    f.extend_from_slice(&[0xf7, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x02]);
    f.extend_from_slice(&[0x01, 0x05, 0x02, 0x07, 0x03, 0, 0, 0, 0, 0x04]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&[0x05, 0x02, b'h', b'i', 0x00]);
    f.extend_from_slice(&[0xfe, 0x02, 0xfb, 0x02, 0x01]); // SELECTDB 2, RESIZEDB 2 1
    f.extend_from_slice(&[0xf4, 0x01, 0x02, 0x03]); // SLOT_INFO
    f.push(0xfd); // EXPIRETIME (seconds)
    f.extend_from_slice(&1_000_000i32.to_le_bytes());
    f.extend_from_slice(&[0xf8, 0x05]); // IDLE 5
    f.extend_from_slice(&[0x00, 0x01, b'a', 0x01, b'1']); // "a" = "1"
    f.extend_from_slice(&[0xf9, 0x07]); // FREQ 7
    f.extend_from_slice(&[0x00, 0x01, b'b', 0xc0, 0x05]); // "b" = 5 (int8)
    f.push(0xff);
    let crc = crc64(0, &f);
    f.extend_from_slice(&crc.to_le_bytes());
    let mut r = FileReader::new(f.as_slice()).unwrap();
    let all: Vec<Entry> = r.by_ref().map(|e| e.unwrap()).collect();
    assert_eq!(r.functions().len(), 1);
    assert_eq!(r.aux_fields().len(), 1);
    assert_eq!(
        all,
        vec![
            Entry {
                db: 2,
                key: Bytes::from_static(b"a"),
                value: Value::String(Bytes::from_static(b"1")),
                expire_at_ms: Some(1_000_000_000),
            },
            Entry {
                db: 2,
                key: Bytes::from_static(b"b"),
                value: Value::String(Bytes::from_static(b"5")),
                expire_at_ms: None,
            },
        ]
    );
    // Same file with a wrong checksum; and with checksum 0 (rdbchecksum no), accepted.
    let n = f.len();
    let mut bad = f.clone();
    bad[n - 1] ^= 1;
    assert!(matches!(
        read_file(bad.as_slice()),
        Err(rdb::Error::ChecksumMismatch)
    ));
    let mut zero = f.clone();
    zero[n - 8..].copy_from_slice(&[0; 8]);
    assert_eq!(read_file(zero.as_slice()).unwrap().len(), 2);
    // Bad headers.
    assert!(FileReader::new(&b"REDIS0012"[..]).is_err());
    assert!(FileReader::new(&b"RODIS0010"[..]).is_err());
    assert!(FileReader::new(&b"VALKEY010"[..]).is_err());
    assert!(FileReader::new(&b"REDIS"[..]).is_err());
    assert!(FileReader::new(&b"VALKEY080\xff"[..]).is_ok());
}
