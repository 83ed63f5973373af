//! Whole RDB files: a streaming [`Writer`] and a streaming [`FileReader`].

use std::io::{Read, Write};

use bytes::Bytes;

use crate::decode::{
    is_empty_collection, read_object, Input, TYPE_HASH, TYPE_LIST, TYPE_SET, TYPE_STRING,
    TYPE_ZSET_2,
};
use crate::encode::{write_len, write_object, write_string};
use crate::{crc64, version_supported, Error, Result, Value, RDB_VERSION_REDIS_7_0};

/// Entry bytes buffered before they are written out in the middle of a large value.
const FLUSH_AT: usize = 1 << 20;

const OP_SLOT_INFO: u8 = 244;
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION_PRE_GA: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// Options for [`Writer`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// RDB version in the header (`REDIS0010` by default: loadable by Redis 7.0+ and Valkey).
    /// 9 gives files Redis 6.x loads (nothing this writer emits needs more, except streams
    /// which then use the v1 encoding).
    pub rdb_version: u16,
    /// `redis-ver` aux field.
    pub redis_ver: String,
    /// `ctime` aux field (unix seconds); `None` = now.
    pub ctime: Option<i64>,
    /// `used-mem` aux field.
    pub used_mem: u64,
    /// Extra aux fields, written after the standard ones.
    pub extra_aux: Vec<(String, String)>,
    /// LZF-compress strings longer than 20 bytes when it helps (Redis's `rdbcompression yes`).
    pub compress: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            rdb_version: RDB_VERSION_REDIS_7_0,
            redis_ver: "7.0.15".into(),
            ctime: None,
            used_mem: 0,
            extra_aux: Vec::new(),
            compress: true,
        }
    }
}

/// Writes an RDB file: header and aux fields on creation, then [`Writer::select_db`] /
/// [`Writer::write_entry`] per key, then [`Writer::finish`] (EOF opcode + CRC-64).
/// Output is written as it goes; only one entry is buffered at a time.
pub struct Writer<W: Write> {
    w: W,
    crc: u64,
    buf: Vec<u8>,
    version: u16,
    compress: bool,
}

impl<W: Write> Writer<W> {
    /// A writer with default options.
    pub fn new(w: W) -> std::io::Result<Self> {
        Self::with_options(w, &WriterOptions::default())
    }

    pub fn with_options(w: W, opts: &WriterOptions) -> std::io::Result<Self> {
        let mut wr = Writer {
            w,
            crc: 0,
            buf: Vec::with_capacity(4096),
            version: opts.rdb_version,
            compress: opts.compress,
        };
        wr.buf
            .extend_from_slice(format!("REDIS{:04}", opts.rdb_version).as_bytes());
        let ctime = opts.ctime.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        wr.aux(b"redis-ver", opts.redis_ver.as_bytes());
        wr.aux(b"redis-bits", b"64");
        wr.aux(b"ctime", ctime.to_string().as_bytes());
        wr.aux(b"used-mem", opts.used_mem.to_string().as_bytes());
        wr.aux(b"aof-base", b"0");
        for (k, v) in &opts.extra_aux {
            wr.aux(k.as_bytes(), v.as_bytes());
        }
        wr.flush_buf()?;
        Ok(wr)
    }

    fn aux(&mut self, k: &[u8], v: &[u8]) {
        self.buf.push(OP_AUX);
        write_string(&mut self.buf, k, false);
        write_string(&mut self.buf, v, false);
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.crc = crc64(self.crc, &self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes a function library (`FUNCTION2` opcode: the library's source code), as Redis
    /// writes them after the aux fields.
    pub fn write_function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.buf.push(OP_FUNCTION2);
        write_string(&mut self.buf, code, self.compress);
        self.flush_buf()
    }

    /// Starts database `db`, with the sizing hints Redis writes (`RESIZEDB`: number of keys and
    /// of keys with an expiry; they need not be exact).
    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) -> std::io::Result<()> {
        self.buf.push(OP_SELECTDB);
        write_len(&mut self.buf, db);
        self.buf.push(OP_RESIZEDB);
        write_len(&mut self.buf, keys);
        write_len(&mut self.buf, expires);
        self.flush_buf()
    }

    /// Switches to database `db` without sizing hints. A file may switch databases any number
    /// of times (a streamed snapshot serializes keys out of order); loaders accept that.
    pub fn switch_db(&mut self, db: u64) -> std::io::Result<()> {
        self.buf.push(OP_SELECTDB);
        write_len(&mut self.buf, db);
        self.flush_buf()
    }

    /// The inner writer (e.g. to take the bytes written so far out of a `Vec`).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Writes one key of the current database, with an optional absolute expiry (unix ms).
    pub fn write_entry(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()> {
        let type_at = self.key_header(key, expire_at_ms);
        let t = write_object(&mut self.buf, value, self.version, self.compress);
        self.buf[type_at] = t;
        self.flush_buf()
    }

    /// Expiry + placeholder type byte + key; returns the type byte's index in `buf`.
    fn key_header(&mut self, key: &[u8], expire_at_ms: Option<i64>) -> usize {
        if let Some(ms) = expire_at_ms {
            self.buf.push(OP_EXPIRETIME_MS);
            self.buf.extend_from_slice(&ms.to_le_bytes());
        }
        let type_at = self.buf.len();
        self.buf.push(0);
        write_string(&mut self.buf, key, self.compress);
        type_at
    }

    fn flush_if_big(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes a string key from borrowed data (no [`Value`] needed).
    pub fn write_string_entry(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()> {
        let at = self.key_header(key, expire_at_ms);
        self.buf[at] = TYPE_STRING;
        write_string(&mut self.buf, value, self.compress);
        self.flush_buf()
    }

    fn write_items<'a, I>(
        &mut self,
        t: u8,
        key: &[u8],
        items: I,
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()>
    where
        I: ExactSizeIterator<Item = &'a [u8]>,
    {
        let at = self.key_header(key, expire_at_ms);
        self.buf[at] = t;
        write_len(&mut self.buf, items.len() as u64);
        for i in items {
            write_string(&mut self.buf, i, self.compress);
            self.flush_if_big()?;
        }
        self.flush_buf()
    }

    /// Writes a list key from borrowed elements, head to tail, streaming large lists out.
    /// The iterator's `len()` must be exact.
    pub fn write_list_entry<'a, I>(
        &mut self,
        key: &[u8],
        items: I,
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()>
    where
        I: ExactSizeIterator<Item = &'a [u8]>,
    {
        self.write_items(TYPE_LIST, key, items, expire_at_ms)
    }

    /// Writes a set key from borrowed members. The iterator's `len()` must be exact.
    pub fn write_set_entry<'a, I>(
        &mut self,
        key: &[u8],
        members: I,
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()>
    where
        I: ExactSizeIterator<Item = &'a [u8]>,
    {
        self.write_items(TYPE_SET, key, members, expire_at_ms)
    }

    /// Writes a sorted set key from borrowed (member, score) pairs.
    pub fn write_zset_entry<'a, I>(
        &mut self,
        key: &[u8],
        items: I,
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()>
    where
        I: ExactSizeIterator<Item = (&'a [u8], f64)>,
    {
        let at = self.key_header(key, expire_at_ms);
        self.buf[at] = TYPE_ZSET_2;
        write_len(&mut self.buf, items.len() as u64);
        for (m, score) in items {
            write_string(&mut self.buf, m, self.compress);
            self.buf.extend_from_slice(&score.to_le_bytes());
            self.flush_if_big()?;
        }
        self.flush_buf()
    }

    /// Writes a hash key from borrowed (field, value) pairs.
    pub fn write_hash_entry<'a, I>(
        &mut self,
        key: &[u8],
        items: I,
        expire_at_ms: Option<i64>,
    ) -> std::io::Result<()>
    where
        I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let at = self.key_header(key, expire_at_ms);
        self.buf[at] = TYPE_HASH;
        write_len(&mut self.buf, items.len() as u64);
        for (f, v) in items {
            write_string(&mut self.buf, f, self.compress);
            write_string(&mut self.buf, v, self.compress);
            self.flush_if_big()?;
        }
        self.flush_buf()
    }

    /// Writes the EOF opcode and checksum, flushes, and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.push(OP_EOF);
        self.crc = crc64(self.crc, &self.buf);
        let crc = self.crc;
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One key read from an RDB file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub db: u64,
    pub key: Bytes,
    pub value: Value,
    /// Absolute expiry, unix milliseconds (possibly in the past: dropping expired keys is the
    /// caller's decision, as Redis drops them when loading as a master).
    pub expire_at_ms: Option<i64>,
}

/// Streaming RDB file reader: yields one [`Entry`] at a time.
pub struct FileReader<R: Read> {
    inp: Input<R>,
    version: u16,
    aux: Vec<(Bytes, Bytes)>,
    functions: Vec<Bytes>,
    db: u64,
    done: bool,
    skipped_empty: u64,
}

impl<R: Read> FileReader<R> {
    /// Reads and checks the header: `REDIS` + 4-digit version 1..=11, or Valkey 9's
    /// `VALKEY` + 3-digit version 80..=81.
    pub fn new(r: R) -> Result<Self> {
        let mut inp = Input::new(r);
        let hdr: [u8; 9] = inp.array().map_err(|_| Error::BadHeader)?;
        let digits = if &hdr[..5] == b"REDIS" {
            &hdr[5..]
        } else if &hdr[..6] == b"VALKEY" {
            &hdr[6..]
        } else {
            return Err(Error::BadHeader);
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(Error::BadHeader);
        }
        let version = digits.iter().fold(0u16, |a, d| a * 10 + (d - b'0') as u16);
        let valkey_magic = hdr[0] == b'V';
        if !version_supported(version) || valkey_magic != (version >= 80) {
            return Err(Error::BadHeader);
        }
        Ok(FileReader {
            inp,
            version,
            aux: Vec::new(),
            functions: Vec::new(),
            db: 0,
            done: false,
            skipped_empty: 0,
        })
    }

    pub fn rdb_version(&self) -> u16 {
        self.version
    }

    /// AUX fields seen so far (Redis writes them all before the first database).
    pub fn aux_fields(&self) -> &[(Bytes, Bytes)] {
        &self.aux
    }

    /// Keys skipped because they held an empty list/set/zset/hash (as Redis skips them).
    pub fn skipped_empty_keys(&self) -> u64 {
        self.skipped_empty
    }

    /// Function libraries (`FUNCTION2` opcodes: the library source code) seen so far.
    pub fn functions(&self) -> &[Bytes] {
        &self.functions
    }

    fn skip_module_aux(&mut self) -> Result<()> {
        let _module_id = self.inp.len()?;
        let _when_opcode = self.inp.len()?;
        let _when = self.inp.len()?;
        loop {
            match self.inp.len()? {
                0 => return Ok(()),
                1 | 2 => {
                    self.inp.len()?;
                }
                3 => self.inp.skip(4)?,
                4 => self.inp.skip(8)?,
                5 => {
                    self.inp.string()?;
                }
                _ => return Err(Error::Corrupt("bad module aux opcode")),
            }
        }
    }

    /// The next key, or `None` after the EOF opcode (whose checksum has then been verified).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let mut expire: Option<i64> = None;
        loop {
            let op = self.inp.u8()?;
            match op {
                OP_EOF => {
                    self.done = true;
                    if self.version >= 5 {
                        let computed = self.inp.crc();
                        let stored = u64::from_le_bytes(self.inp.array()?);
                        if stored != 0 && stored != computed {
                            return Err(Error::ChecksumMismatch);
                        }
                    }
                    return Ok(None);
                }
                OP_SELECTDB => self.db = self.inp.len()?,
                OP_RESIZEDB => {
                    self.inp.len()?;
                    self.inp.len()?;
                }
                OP_AUX => {
                    let k = self.inp.bytes()?;
                    let v = self.inp.bytes()?;
                    self.aux.push((k, v));
                }
                OP_EXPIRETIME_MS => expire = Some(self.inp.millis()?),
                OP_EXPIRETIME => {
                    let s = i32::from_le_bytes(self.inp.array()?) as i64;
                    expire = Some(s * 1000);
                }
                OP_IDLE => {
                    self.inp.len()?;
                }
                OP_FREQ => {
                    self.inp.u8()?;
                }
                OP_MODULE_AUX => self.skip_module_aux()?,
                OP_FUNCTION2 => {
                    let f = self.inp.bytes()?;
                    self.functions.push(f);
                }
                OP_SLOT_INFO => {
                    self.inp.len()?;
                    self.inp.len()?;
                    self.inp.len()?;
                }
                OP_FUNCTION_PRE_GA => return Err(Error::UnsupportedOpcode(op)),
                t => {
                    let key = self.inp.bytes()?;
                    let value = read_object(&mut self.inp, t)?;
                    if is_empty_collection(&value) {
                        // Redis skips empty keys when loading.
                        self.skipped_empty += 1;
                        expire = None;
                        continue;
                    }
                    return Ok(Some(Entry {
                        db: self.db,
                        key,
                        value,
                        expire_at_ms: expire,
                    }));
                }
            }
        }
    }
}

impl<R: Read> Iterator for FileReader<R> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole RDB file into memory. For large files iterate a [`FileReader`] instead.
pub fn read_file<R: Read>(r: R) -> Result<Vec<Entry>> {
    FileReader::new(r)?.collect()
}
