//! mTLS between proxies. Certificates are read and TLS configurations built when a config is
//! applied, once per listener and cluster; a file that is missing or unusable rejects the whole
//! config (the previous one keeps serving), and connections only ever use prepared configs.
//!
//! A client verifies the server as Istio's sidecars do: the chain must lead to the configured CA,
//! and, when the cluster lists subject alternative names, the certificate must carry one of them
//! (a SPIFFE URI such as `spiffe://cluster.local/ns/default/sa/reviews`, or a DNS name). The
//! host name the request was for plays no part: sidecars are addressed by IP, and their
//! certificates name workload identities, not hosts.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use strait_mesh::{ClientTlsMode, ClusterTls, ListenerTls, PeerMode};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::ApplyError;

/// The first byte of every TLS connection: a handshake record (RFC 8446 §5.1). A plaintext
/// HTTP request starts with a method's letter, and the h2c preface with `P`.
pub(crate) const HANDSHAKE_RECORD: u8 = 0x16;

/// ALPN offered by a listener: the protocols the proxy serves behind TLS.
const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A listener's prepared TLS.
pub(crate) struct ServerTls {
    pub(crate) acceptor: TlsAcceptor,
    /// STRICT: plaintext connections are reset.
    pub(crate) strict: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

/// A cluster's prepared TLS origination.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub(crate) connector: TlsConnector,
    /// SNI when configured; otherwise an address, which rustls does not send.
    pub(crate) server_name: ServerName<'static>,
    /// A hash of the settings and of the files' contents: pools are shared by clusters with
    /// equal fingerprints and kept across configs while it stays the same.
    pub(crate) fingerprint: u64,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// aws-lc-rs, with AES-128-GCM preferred over AES-256-GCM as Envoy's BoringSSL prefers it on
/// CPUs with AES instructions: what Istio's sidecars negotiate with each other, at four fewer
/// AES rounds per block than rustls's default first choice.
fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    // Stable: TLS 1.3 suites stay before TLS 1.2 ones, and the rest keep their order.
    p.cipher_suites.sort_by_key(|s| {
        (
            s.version().version != rustls::ProtocolVersion::TLSv1_3,
            !aes_128(s.suite()),
        )
    });
    Arc::new(p)
}

fn aes_128(suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as C;
    matches!(
        suite,
        C::TLS13_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

/// Reads the files, naming the one a failure is about, and hashes what it read.
struct Files<'a> {
    owner: &'a str,
    hash: DefaultHasher,
}

impl Files<'_> {
    fn err(&self, field: &'static str, path: &str, reason: impl ToString) -> ApplyError {
        ApplyError::Tls {
            owner: self.owner.to_string(),
            field,
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    fn read(&mut self, field: &'static str, path: &str) -> Result<Vec<u8>, ApplyError> {
        if path.is_empty() {
            return Err(self.err(field, path, "required"));
        }
        let bytes = std::fs::read(path).map_err(|e| self.err(field, path, e))?;
        bytes.hash(&mut self.hash);
        Ok(bytes)
    }

    fn certs(&mut self, field: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, ApplyError> {
        let pem = self.read(field, path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(field, path, format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(self.err(field, path, "no CERTIFICATE block"));
        }
        Ok(certs)
    }

    fn key(&mut self, field: &'static str, path: &str) -> Result<PrivateKeyDer<'static>, ApplyError> {
        let pem = self.read(field, path)?;
        PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| self.err(field, path, format!("no usable private key: {e}")))
    }

    fn roots(&mut self, field: &'static str, path: &str) -> Result<Arc<RootCertStore>, ApplyError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certs(field, path)? {
            roots
                .add(cert)
                .map_err(|e| self.err(field, path, format!("not a usable CA certificate: {e}")))?;
        }
        Ok(Arc::new(roots))
    }
}

/// Prepares a listener's TLS: its certificate, and client certificates required and checked
/// against its CA.
pub(crate) fn server(listener: &str, t: &ListenerTls) -> Result<ServerTls, ApplyError> {
    let owner = format!("listener {listener}");
    let mut files = Files {
        owner: &owner,
        hash: DefaultHasher::new(),
    };
    let chain = files.certs("serverCertificate", &t.server_certificate)?;
    let key = files.key("privateKey", &t.private_key)?;
    let roots = files.roots("caCertificates", &t.ca_certificates)?;
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| files.err("caCertificates", &t.ca_certificates, e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| files.err("serverCertificate", &t.server_certificate, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            files.err(
                "privateKey",
                &t.private_key,
                format!("does not fit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = SERVER_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        strict: t.mode == PeerMode::Strict,
    })
}

/// Prepares a cluster's TLS origination; `http2` picks the ALPN offered.
pub(crate) fn client(cluster: &str, t: &ClusterTls, http2: bool) -> Result<ClientTls, ApplyError> {
    let owner = format!("cluster {cluster}");
    let mut files = Files {
        owner: &owner,
        hash: DefaultHasher::new(),
    };
    let roots = files.roots("caCertificates", &t.ca_certificates)?;
    let provider = provider();
    let verifier = Arc::new(IdentityVerifier {
        roots,
        algorithms: provider.signature_verification_algorithms,
        names: t.subject_alt_names.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| files.err("caCertificates", &t.ca_certificates, e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match t.mode {
        ClientTlsMode::Simple => builder.with_no_client_auth(),
        ClientTlsMode::Mutual => {
            let chain = files.certs("clientCertificate", &t.client_certificate)?;
            let key = files.key("privateKey", &t.private_key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                files.err(
                    "privateKey",
                    &t.private_key,
                    format!("does not fit the certificate: {e}"),
                )
            })?
        }
    };
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    (t, http2).hash(&mut files.hash);
    let server_name = if t.sni.is_empty() {
        ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into())
    } else {
        ServerName::try_from(t.sni.clone()).map_err(|e| files.err("sni", &t.sni, e))?
    };
    Ok(ClientTls {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
        fingerprint: files.hash.finish(),
    })
}

/// Chain to the cluster's CA, then identity by subject alternative name (see the module docs).
#[derive(Debug)]
struct IdentityVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    /// Accepted identities; empty accepts any certificate the CA signed.
    names: Vec<String>,
}

impl ServerCertVerifier for IdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.names.is_empty() || carries_identity(end_entity, &self.names) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether the certificate's subject alternative names include one of `names` (URI or DNS,
/// compared exactly, as Envoy's `match_subject_alt_names` with exact matchers does).
fn carries_identity(der: &CertificateDer<'_>, names: &[String]) -> bool {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|n| match n {
        GeneralName::URI(u) => names.iter().any(|want| want == u),
        GeneralName::DNSName(d) => names.iter().any(|want| want.eq_ignore_ascii_case(d)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use rustls::CipherSuite as C;

    #[test]
    fn aes_128_gcm_comes_first_in_each_protocol_version_and_nothing_is_dropped() {
        let suites: Vec<_> = super::provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(suites[0], C::TLS13_AES_128_GCM_SHA256);
        assert_eq!(suites[1], C::TLS13_AES_256_GCM_SHA384);
        let first_tls12 = suites
            .iter()
            .position(|s| !format!("{s:?}").starts_with("TLS13"))
            .unwrap();
        assert!(super::aes_128(suites[first_tls12]), "{suites:?}");
        assert!(
            suites[first_tls12..]
                .iter()
                .all(|s| !format!("{s:?}").starts_with("TLS13"))
        );
        assert_eq!(
            suites.len(),
            rustls::crypto::aws_lc_rs::default_provider().cipher_suites.len()
        );
    }
}
