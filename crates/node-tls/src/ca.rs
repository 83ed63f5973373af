//! The local certificate authority: one CA per data directory, leaf certificates for node endpoints.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::TlsError;

/// File name of the CA certificate users point their clients at (`redis-cli --tls --cacert`).
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// Common name of the CA certificate.
pub const CA_COMMON_NAME: &str = "elastilite local CA";

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Back-date certificates a little so a client whose clock is slightly behind still accepts them.
const BACKDATE: Duration = Duration::hours(1);
/// A cached leaf this close to expiry is signed again.
const LEAF_RENEW_BEFORE: Duration = Duration::days(7);

struct CachedLeaf {
    config: Arc<ServerConfig>,
    not_after: OffsetDateTime,
}

/// A local certificate authority (CA certificate and key kept in a directory) that signs node
/// certificates and hands out ready rustls server configurations.
pub struct Authority {
    ca_pem_path: PathBuf,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    provider: Arc<CryptoProvider>,
    leaves: Mutex<HashMap<Vec<String>, CachedLeaf>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("ca_pem_path", &self.ca_pem_path)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path, source: io::Error) -> TlsError {
    TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_file(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, then rename),
/// creating the file with `mode`.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "elastilite");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params
}

/// Parses one name into a subject alternative name: IP addresses become IP SANs, the rest DNS SANs.
fn san(name: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    // Accept "[::1]" as written in URLs.
    if let Some(inner) = name.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<IpAddr>() {
            return Ok(SanType::IpAddress(ip));
        }
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').enumerate().all(|(i, label)| {
            (label == "*" && i == 0)
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        });
    if !valid {
        return Err(TlsError::InvalidName(name.to_string()));
    }
    let ia5: rcgen::string::Ia5String = name
        .to_ascii_lowercase()
        .try_into()
        .map_err(|_| TlsError::InvalidName(name.to_string()))?;
    Ok(SanType::DnsName(ia5))
}

impl Authority {
    /// Loads `<dir>/ca.pem` and `<dir>/ca-key.pem`, or creates them (a 10-year CA with the common
    /// name "elastilite local CA", key file mode 0600) when there is no `ca.pem` yet. Returns the
    /// authority and whether it was created now.
    ///
    /// A `ca.pem` without its key, a key that does not belong to the certificate, or an expired
    /// CA is an error: the files are never replaced silently, since clients may trust them.
    pub fn load_or_create(dir: &Path) -> Result<(Authority, bool), TlsError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let created = match fs::read_to_string(&cert_path) {
            Ok(cert_pem) => {
                let key_pem = fs::read_to_string(&key_path).map_err(|e| io_err(&key_path, e))?;
                return Ok((Self::load(cert_path, &key_path, cert_pem, &key_pem)?, false));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A key without its certificate (interrupted first start) is replaced: no
                // client can trust a certificate that was never written.
                let now = OffsetDateTime::now_utc();
                let key = KeyPair::generate()?;
                let params = ca_params(now);
                let cert = params.self_signed(&key)?;
                write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
                write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
                true
            }
            Err(e) => return Err(io_err(&cert_path, e)),
        };
        // Read back what was written, so a created authority is exactly a loaded one.
        let cert_pem = fs::read_to_string(&cert_path).map_err(|e| io_err(&cert_path, e))?;
        let key_pem = fs::read_to_string(&key_path).map_err(|e| io_err(&key_path, e))?;
        Ok((
            Self::load(cert_path, &key_path, cert_pem, &key_pem)?,
            created,
        ))
    }

    fn load(
        cert_path: PathBuf,
        key_path: &Path,
        cert_pem: String,
        key_pem: &str,
    ) -> Result<Authority, TlsError> {
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| bad_file(key_path, format!("not a usable private key: {e}")))?;
        let der = parse_single_cert_pem(&cert_pem).map_err(|r| bad_file(&cert_path, r))?;
        {
            let (_, x509) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| bad_file(&cert_path, format!("not an X.509 certificate: {e}")))?;
            if x509
                .tbs_certificate
                .subject_pki
                .subject_public_key
                .data
                .as_ref()
                != key.public_key_raw()
            {
                return Err(bad_file(
                    key_path,
                    format!("this key does not belong to {}", cert_path.display()),
                ));
            }
            let not_after = x509.validity().not_after.timestamp();
            if not_after <= OffsetDateTime::now_utc().unix_timestamp() {
                return Err(bad_file(
                    &cert_path,
                    "the CA certificate has expired; remove ca.pem and ca-key.pem to create a new one",
                ));
            }
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| bad_file(&cert_path, format!("not a usable CA certificate: {e}")))?;
        Ok(Authority {
            ca_pem_path: cert_path,
            ca_pem: cert_pem,
            issuer,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// Path of the CA certificate (`<dir>/ca.pem`).
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// The CA certificate in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls server configuration (ring provider) presenting a leaf certificate for `names`,
    /// signed by this CA and valid for one year. IP addresses become IP SANs, other names DNS
    /// SANs. Configurations are cached per set of names (order and duplicates don't matter), so
    /// the same names give the same `Arc` and restarting a node does not sign again.
    pub fn server_config(&self, names: &[String]) -> Result<Arc<ServerConfig>, TlsError> {
        let mut key: Vec<String> = names
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        key.sort();
        key.dedup();
        if key.is_empty() {
            return Err(TlsError::NoNames);
        }
        let sans = key.iter().map(|n| san(n)).collect::<Result<Vec<_>, _>>()?;

        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        let now = OffsetDateTime::now_utc();
        if let Some(cached) = leaves.get(&key) {
            if cached.not_after - LEAF_RENEW_BEFORE > now {
                return Ok(cached.config.clone());
            }
        }

        let (cert, leaf_key, not_after) = self.issue_leaf(names, &key, sans, now)?;
        let chain: Vec<CertificateDer<'static>> = vec![cert];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, private)?;
        let config = Arc::new(config);
        leaves.insert(
            key,
            CachedLeaf {
                config: config.clone(),
                not_after,
            },
        );
        Ok(config)
    }

    /// Signs a leaf certificate (fresh key) for the normalized names `key` with SANs `sans`.
    fn issue_leaf(
        &self,
        names: &[String],
        key: &[String],
        sans: Vec<SanType>,
        now: OffsetDateTime,
    ) -> Result<(CertificateDer<'static>, KeyPair, OffsetDateTime), TlsError> {
        let leaf_key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // The first name as the caller gave it, for people reading the certificate.
        let cn = names
            .iter()
            .map(|n| n.trim())
            .find(|n| !n.is_empty())
            .unwrap_or(&key[0]);
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, "elastilite");
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_VALIDITY;
        let cert = params.signed_by(&leaf_key, &self.issuer)?;
        Ok((cert.der().clone(), leaf_key, params.not_after))
    }
}

/// Extracts the DER of the single CERTIFICATE block of a PEM file.
fn parse_single_cert_pem(pem: &str) -> Result<CertificateDer<'static>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    match certs.next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(format!("not a PEM certificate: {e}")),
        None => Err("no CERTIFICATE block".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::RootCertStore;
    use rustls_pki_types::{ServerName, UnixTime};
    use x509_parser::extensions::GeneralName;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn leaf(ca: &Authority, v: &[&str]) -> CertificateDer<'static> {
        let n = names(v);
        let sans = n.iter().map(|x| san(x).unwrap()).collect();
        ca.issue_leaf(&n, &n, sans, OffsetDateTime::now_utc())
            .unwrap()
            .0
    }

    /// Verifies `cert` for `name` with a webpki verifier that trusts only the PEM in `ca_pem`.
    fn verify(ca_pem: &str, cert: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(parse_single_cert_pem(ca_pem).unwrap()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(cert, &[], &server_name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn ca_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("data/tls");
        let (ca, created) = Authority::load_or_create(&sub).unwrap();
        assert!(created);
        assert_eq!(ca.ca_pem_path(), sub.join("ca.pem"));
        let on_disk = fs::read_to_string(sub.join("ca.pem")).unwrap();
        assert_eq!(ca.ca_pem(), on_disk);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(sub.join("ca-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
        }
        let key_before = fs::read(sub.join("ca-key.pem")).unwrap();

        let (again, created) = Authority::load_or_create(&sub).unwrap();
        assert!(!created);
        assert_eq!(again.ca_pem(), ca.ca_pem());
        assert_eq!(fs::read_to_string(sub.join("ca.pem")).unwrap(), on_disk);
        assert_eq!(fs::read(sub.join("ca-key.pem")).unwrap(), key_before);

        // The CA certificate says what it is.
        let der = parse_single_cert_pem(ca.ca_pem()).unwrap();
        let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn = x509.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), CA_COMMON_NAME);
        assert!(x509.is_ca());
        let years = (x509.validity().not_after.timestamp()
            - x509.validity().not_before.timestamp())
            / (365 * 86400);
        assert_eq!(years, 10);

        // A leaf signed by the reloaded authority verifies against the first one's ca.pem.
        let cert = leaf(&again, &["127.10.0.3"]);
        verify(ca.ca_pem(), &cert, "127.10.0.3").unwrap();
    }

    #[test]
    fn leaf_has_the_right_sans_and_verifies_against_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = Authority::load_or_create(dir.path()).unwrap();
        let cert = leaf(
            &ca,
            &["127.10.0.3", "localhost", "node-0001.example", "::1"],
        );

        let (_, x509) = x509_parser::parse_x509_certificate(&cert).unwrap();
        assert!(!x509.is_ca());
        let san = x509.subject_alternative_name().unwrap().unwrap();
        let mut ips = Vec::new();
        let mut dns = Vec::new();
        for name in &san.value.general_names {
            match name {
                GeneralName::IPAddress(b) => ips.push(b.to_vec()),
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!(
            ips,
            vec![
                vec![127, 10, 0, 3],
                std::net::Ipv6Addr::LOCALHOST.octets().to_vec()
            ]
        );
        assert_eq!(dns, vec!["localhost", "node-0001.example"]);
        let days = (x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp())
            / 86400;
        assert!((365..=366).contains(&days), "leaf valid {days} days");

        for good in ["127.10.0.3", "localhost", "node-0001.example", "::1"] {
            verify(ca.ca_pem(), &cert, good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["127.10.0.4", "127.0.0.1", "other.example"] {
            assert!(verify(ca.ca_pem(), &cert, bad).is_err(), "{bad} accepted");
        }

        // Another CA's certificate does not verify.
        let other_dir = tempfile::tempdir().unwrap();
        let (other, _) = Authority::load_or_create(other_dir.path()).unwrap();
        assert!(verify(other.ca_pem(), &cert, "127.10.0.3").is_err());
    }

    #[test]
    fn server_configs_are_cached_per_name_set() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = Authority::load_or_create(dir.path()).unwrap();
        let a = ca
            .server_config(&names(&["127.10.0.3", "localhost"]))
            .unwrap();
        let b = ca
            .server_config(&names(&["localhost", "127.10.0.3", "localhost"]))
            .unwrap();
        let c = ca.server_config(&names(&["127.10.0.4"])).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn bad_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = Authority::load_or_create(dir.path()).unwrap();
        assert!(matches!(ca.server_config(&[]), Err(TlsError::NoNames)));
        assert!(matches!(
            ca.server_config(&names(&["  "])),
            Err(TlsError::NoNames)
        ));
        for bad in ["a b", "x..y", "host:6379", "ü.example"] {
            assert!(
                matches!(
                    ca.server_config(&names(&[bad])),
                    Err(TlsError::InvalidName(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn inconsistent_files_are_errors_not_replaced() {
        // ca.pem without its key.
        let dir = tempfile::tempdir().unwrap();
        Authority::load_or_create(dir.path()).unwrap();
        fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        assert!(matches!(
            Authority::load_or_create(dir.path()),
            Err(TlsError::Io { .. })
        ));
        assert!(dir.path().join(CA_CERT_FILE).exists());

        // A key that belongs to another CA.
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        Authority::load_or_create(dir.path()).unwrap();
        Authority::load_or_create(other.path()).unwrap();
        fs::copy(other.path().join(CA_KEY_FILE), dir.path().join(CA_KEY_FILE)).unwrap();
        let err = Authority::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");

        // Garbage.
        fs::write(dir.path().join(CA_CERT_FILE), "not a certificate").unwrap();
        assert!(matches!(
            Authority::load_or_create(dir.path()),
            Err(TlsError::BadFile { .. })
        ));

        // A key left without its certificate (interrupted first start) is replaced.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CA_KEY_FILE), "leftover").unwrap();
        let (_, created) = Authority::load_or_create(dir.path()).unwrap();
        assert!(created);
    }
}
