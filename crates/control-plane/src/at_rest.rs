//! At-rest encryption (`AtRestEncryptionEnabled`): snapshot files and persisted
//! node data of encrypted groups are written sealed with ChaCha20-Poly1305 under
//! a key kept in `<data-dir>/at-rest.key` (created on first start, mode 0600).
//! `KmsKeyId` is recorded and reported; there is no KMS here.
//!
//! File format: `ELENC\x01\0\0`, an 8-byte random nonce prefix, then chunks of
//! at most 1 MiB plaintext, each `u32 LE length` + ciphertext with its tag. The
//! nonce is the prefix + the chunk number; the header, chunk number and a
//! last-chunk flag are authenticated, so a reordered, truncated or altered file
//! is refused.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::ApiError;
use crate::rdb_io;

const MAGIC: &[u8; 8] = b"ELENC\x01\0\0";
const CHUNK: usize = 1 << 20;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("at-rest key: {0}")]
    Key(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("encrypted file is corrupt or was altered")]
    Corrupt,
}

impl From<AtRestError> for ApiError {
    fn from(e: AtRestError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

pub struct Key(LessSafeKey);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Load `<dir>/at-rest.key`, creating it with fresh random bytes if missing.
    pub fn load_or_create(dir: &Path) -> Result<Key, AtRestError> {
        let path = dir.join("at-rest.key");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; 32];
                SystemRandom::new()
                    .fill(&mut b)
                    .map_err(|_| AtRestError::Key("no random source".into()))?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                opts.open(&path)?.write_all(&b)?;
                b
            }
            Err(e) => return Err(e.into()),
        };
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| AtRestError::Key(format!("{} must hold 32 bytes", path.display())))?;
        Ok(Key(LessSafeKey::new(unbound)))
    }

    fn nonce(prefix: &[u8; 8], n: u32) -> Nonce {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(prefix);
        b[8..].copy_from_slice(&n.to_be_bytes());
        Nonce::assume_unique_for_key(b)
    }

    fn aad(header: &[u8; 16], n: u32, last: bool) -> [u8; 21] {
        let mut a = [0u8; 21];
        a[..16].copy_from_slice(header);
        a[16..20].copy_from_slice(&n.to_be_bytes());
        a[20] = u8::from(last);
        a
    }

    /// Encrypt `src` into `dest`.
    pub fn seal(&self, src: &Path, dest: &Path) -> Result<(), AtRestError> {
        let mut input = std::io::BufReader::with_capacity(CHUNK, std::fs::File::open(src)?);
        let mut out = std::io::BufWriter::new(std::fs::File::create(dest)?);
        let mut prefix = [0u8; 8];
        SystemRandom::new()
            .fill(&mut prefix)
            .map_err(|_| AtRestError::Key("no random source".into()))?;
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&prefix);
        out.write_all(&header)?;
        let mut cur = read_chunk(&mut input)?;
        let mut n: u32 = 0;
        loop {
            let next = if cur.len() == CHUNK {
                read_chunk(&mut input)?
            } else {
                Vec::new()
            };
            let last = next.is_empty();
            let mut buf = cur;
            self.0
                .seal_in_place_append_tag(
                    Self::nonce(&prefix, n),
                    Aad::from(Self::aad(&header, n, last)),
                    &mut buf,
                )
                .map_err(|_| AtRestError::Corrupt)?;
            out.write_all(&(buf.len() as u32).to_le_bytes())?;
            out.write_all(&buf)?;
            if last {
                break;
            }
            cur = next;
            n = n.checked_add(1).ok_or(AtRestError::Corrupt)?;
        }
        out.flush()?;
        out.get_ref().sync_all()?;
        Ok(())
    }

    /// Decrypt `src` (sealed by [`Key::seal`]) into `dest`.
    pub fn open(&self, src: &Path, dest: &Path) -> Result<(), AtRestError> {
        let mut input = std::io::BufReader::with_capacity(CHUNK + 64, std::fs::File::open(src)?);
        let mut out = std::io::BufWriter::new(std::fs::File::create(dest)?);
        let mut header = [0u8; 16];
        input
            .read_exact(&mut header)
            .map_err(|_| AtRestError::Corrupt)?;
        if &header[..8] != MAGIC {
            return Err(AtRestError::Corrupt);
        }
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&header[8..]);
        let mut frame = read_frame(&mut input)?.ok_or(AtRestError::Corrupt)?;
        let mut n: u32 = 0;
        loop {
            let next = read_frame(&mut input)?;
            let last = next.is_none();
            let plain = self
                .0
                .open_in_place(
                    Self::nonce(&prefix, n),
                    Aad::from(Self::aad(&header, n, last)),
                    &mut frame,
                )
                .map_err(|_| AtRestError::Corrupt)?;
            out.write_all(plain)?;
            match next {
                None => break,
                Some(f) => frame = f,
            }
            n = n.checked_add(1).ok_or(AtRestError::Corrupt)?;
        }
        out.flush()?;
        Ok(())
    }
}

fn read_chunk(r: &mut impl Read) -> Result<Vec<u8>, AtRestError> {
    let mut buf = Vec::with_capacity(CHUNK + TAG);
    r.take(CHUNK as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, AtRestError> {
    let mut len = [0u8; 4];
    match r.read(&mut len[..1])? {
        0 => return Ok(None),
        _ => r
            .read_exact(&mut len[1..])
            .map_err(|_| AtRestError::Corrupt)?,
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(TAG..=CHUNK + TAG).contains(&len) {
        return Err(AtRestError::Corrupt);
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).map_err(|_| AtRestError::Corrupt)?;
    Ok(Some(buf))
}

/// Whether a file was written sealed.
pub fn is_sealed(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == MAGIC
}

fn side_path(dest: &Path, ext: &str) -> PathBuf {
    let mut s = dest.as_os_str().to_os_string();
    s.push(ext);
    PathBuf::from(s)
}

/// Capture a node's data into `dest`, sealed when `key` is given (the plaintext
/// exists only as a temporary file next to it while it is being sealed).
pub(crate) async fn capture(
    key: Option<&std::sync::Arc<Key>>,
    addr: SocketAddr,
    dest: &Path,
) -> Result<u64, ApiError> {
    let Some(key) = key else {
        return rdb_io::capture(addr, None, dest)
            .await
            .map_err(|e| ApiError::Internal(format!("capture from {addr}: {e}")));
    };
    let plain = side_path(dest, ".plain");
    let size = rdb_io::capture(addr, None, &plain)
        .await
        .map_err(|e| ApiError::Internal(format!("capture from {addr}: {e}")))?;
    let (k, p, d) = (key.clone(), plain.clone(), dest.to_path_buf());
    let sealed = tokio::task::spawn_blocking(move || {
        let tmp = side_path(&d, ".sealing");
        k.seal(&p, &tmp)?;
        std::fs::rename(&tmp, &d)?;
        Ok::<(), AtRestError>(())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("sealing: {e}")));
    let _ = tokio::fs::remove_file(&plain).await;
    sealed??;
    Ok(size)
}

/// Load a (possibly sealed) RDB file into a node.
pub(crate) async fn restore(
    key: &std::sync::Arc<Key>,
    addr: SocketAddr,
    src: &Path,
) -> Result<u64, ApiError> {
    restore_slots(key, addr, src, None).await
}

/// [`restore`] of the keys in `slots` only (one shard of a cluster-mode group).
pub(crate) async fn restore_slots(
    key: &std::sync::Arc<Key>,
    addr: SocketAddr,
    src: &Path,
    slots: Option<&[(u16, u16)]>,
) -> Result<u64, ApiError> {
    if !is_sealed(src) {
        return rdb_io::restore_slots(addr, None, src, slots)
            .await
            .map_err(|e| ApiError::Internal(format!("restore into {addr}: {e}")));
    }
    // Per target node: every shard of a group may open the same file at once.
    let plain = side_path(src, &format!(".opened-{}-{}", addr.ip(), addr.port()));
    let (k, s, p) = (key.clone(), src.to_path_buf(), plain.clone());
    let opened = tokio::task::spawn_blocking(move || k.open(&s, &p))
        .await
        .map_err(|e| ApiError::Internal(format!("opening: {e}")))?;
    let result = match opened {
        Ok(()) => rdb_io::restore_slots(addr, None, &plain, slots)
            .await
            .map_err(|e| ApiError::Internal(format!("restore into {addr}: {e}"))),
        Err(e) => Err(e.into()),
    };
    let _ = tokio::fs::remove_file(&plain).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = Key::load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        for size in [0usize, 10, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let plain = dir.path().join("p");
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&plain, &data).unwrap_or_else(|e| panic!("{e}"));
            let sealed = dir.path().join("s");
            key.seal(&plain, &sealed).unwrap_or_else(|e| panic!("{e}"));
            assert!(is_sealed(&sealed));
            let back = dir.path().join("b");
            key.open(&sealed, &back).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                std::fs::read(&back).unwrap_or_default(),
                data,
                "size {size}"
            );
            let mut bytes = std::fs::read(&sealed).unwrap_or_default();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            std::fs::write(&sealed, &bytes).unwrap_or_else(|e| panic!("{e}"));
            assert!(key.open(&sealed, &back).is_err());
            if size > CHUNK {
                // Dropping the last chunk is detected too.
                let cut = 16 + 4 + CHUNK + TAG;
                std::fs::write(&sealed, &bytes[..cut]).unwrap_or_else(|e| panic!("{e}"));
                assert!(key.open(&sealed, &back).is_err());
            }
        }
        // The same key comes back from the file.
        assert!(Key::load_or_create(dir.path()).is_ok());
    }
}
