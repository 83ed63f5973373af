//! Redis's RDB serialization format, independent of any engine:
//!
//! * [`dump`] / [`restore`]: the `DUMP` / `RESTORE` payload format (object + RDB version +
//!   CRC-64), interoperable with redis-server 7.x and Valkey;
//! * [`Writer`] / [`FileReader`] / [`read_file`]: whole `.rdb` snapshot files.
//!
//! Decoding accepts every encoding redis-server 7.0/7.2 and Valkey 7/8 write (strings raw,
//! integer and LZF; lists as linked list, ziplist, quicklist and quicklist 2 with listpacks;
//! sets, intsets and listpack sets; zsets 1/2, ziplist and listpack zsets; hashes, zipmap,
//! ziplist and listpack hashes; streams v1/v2/v3). Encoding writes the plain encodings
//! (string, list, set, zset 2, hash) that every Redis since 4.0 and every Valkey loads, and
//! `STREAM_LISTPACKS_2`/`_3` for streams.
//!
//! Malformed input gives an [`Error`], never a panic, and allocation is bounded by the input's
//! actual size (length prefixes are not trusted).

mod crc64;
mod decode;
mod encode;
mod encodings;
mod file;
pub mod lzf;
mod stream;

use bytes::Bytes;

pub use crc64::crc64;
pub use decode::restore;
pub use encode::{dump, dump_with_version};
pub use file::{read_file, Entry, FileReader, Writer, WriterOptions};
pub use stream::{Stream, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamPendingEntry};

/// The RDB version written by redis-server 7.0 (and used for `DUMP` payloads by default).
pub const RDB_VERSION_REDIS_7_0: u16 = 10;
/// The newest Redis RDB version this crate reads (Redis 7.2, Valkey 7.2 and 8.x).
pub const MAX_SUPPORTED_RDB_VERSION: u16 = 11;
/// Valkey 9's RDB versions (files start with `VALKEY080`/`VALKEY081`) are read too, as long as
/// they only hold types this crate knows (not Valkey 9's hashes with field expiry).
pub const VALKEY_RDB_VERSIONS: std::ops::RangeInclusive<u16> = 80..=81;

pub(crate) fn version_supported(v: u16) -> bool {
    (1..=MAX_SUPPORTED_RDB_VERSION).contains(&v) || VALKEY_RDB_VERSIONS.contains(&v)
}

/// A Redis value, independent of how an engine stores it. Integers stored in compact
/// encodings (intsets, listpacks) are returned as their decimal string form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(Bytes),
    /// Elements head to tail.
    List(Vec<Bytes>),
    /// Members, in no particular order.
    Set(Vec<Bytes>),
    /// (member, score) pairs, in no particular order.
    SortedSet(Vec<(Bytes, f64)>),
    /// (field, value) pairs, in no particular order.
    Hash(Vec<(Bytes, Bytes)>),
    Stream(Box<Stream>),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::SortedSet(_) => "zset",
            Value::Hash(_) => "hash",
            Value::Stream(_) => "stream",
        }
    }
}

/// Errors from decoding (and, for files, I/O).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `RESTORE`: bad trailer (too short, RDB version too new, or CRC mismatch).
    #[error("DUMP payload version or checksum are wrong")]
    BadPayload,
    /// Input ended in the middle of a value.
    #[error("unexpected end of RDB data")]
    UnexpectedEof,
    /// Structurally invalid data.
    #[error("corrupt RDB data: {0}")]
    Corrupt(&'static str),
    /// An object type this crate does not decode (modules, newer types).
    #[error("unsupported RDB object type {0}")]
    UnsupportedType(u8),
    /// An RDB opcode this crate does not understand.
    #[error("unsupported RDB opcode {0}")]
    UnsupportedOpcode(u8),
    /// The file is not an RDB file or its version is not supported.
    #[error("bad RDB header or unsupported RDB version")]
    BadHeader,
    /// The file's trailing CRC-64 does not match its contents.
    #[error("RDB file checksum mismatch")]
    ChecksumMismatch,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The error line redis-server replies to `RESTORE` with (without the leading `-`).
    pub fn restore_reply(&self) -> &'static str {
        match self {
            Error::BadPayload => "ERR DUMP payload version or checksum are wrong",
            _ => "ERR Bad data format",
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
