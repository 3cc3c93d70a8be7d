//! The connection to LND: TCP, then TLS that trusts exactly the certificate in LND's `tls.cert`,
//! then HTTP/2 (tonic's channel), with the macaroon on every call.
//!
//! Why not tonic's own TLS with that certificate as the only trusted root: LND's self-signed
//! certificate is marked as a CA (`CA:TRUE`, it signs itself), and rustls' verifier refuses a CA
//! certificate as the server's own (`CaUsedAsEndEntity`, lightningnetwork/lnd#5450; the test
//! `lnd_certificates_are_refused_when_trusted_as_a_root` shows it). Pinning compares bytes
//! instead: the server must present exactly the certificate(s) of the file, whatever names and
//! dates they carry (so an address missing from LND's `tlsextradomain`/`tlsextraip` still
//! works), and the handshake signature is verified against that certificate's key as usual. This
//! is how the adapter checked LND before (through `fedimint-tonic-lnd`), with the same messages.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A channel to LND at `address` (`https://host:port`), trusting only the certificates of
/// `cert_pem`. It connects on first use, and again whenever the connection was lost.
pub(super) fn channel(address: &str, cert_pem: &[u8]) -> Result<Channel, String> {
    let target = Target::parse(address)?;
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("failed to parse certificate: {e}"))?;
    if certs.is_empty() {
        return Err("failed to parse certificate: no certificate in the file".into());
    }
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = PinnedCertificates {
        certs: certs.iter().map(|c| c.as_ref().to_vec()).collect(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // gRPC is HTTP/2 only, and LND's server insists on negotiating it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    // tonic does TLS itself for an `https` endpoint; the connector does it instead, so the
    // endpoint is given as `http`, while requests still name the `https` origin.
    let endpoint = Endpoint::from_shared(format!("http://{}", target.host_port))
        .map_err(|e| format!("invalid address {address}: {e}"))?
        .origin(target.origin);
    let connector = PinnedTlsConnector {
        tls: TlsConnector::from(Arc::new(config)),
        server_name: target.server_name,
        host_port: target.host_port,
    };
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// Where to connect, from LND's address.
#[derive(Debug)]
struct Target {
    /// The address as given (`https://host:port`).
    origin: Uri,
    /// `host:port` to open TCP to (port 443 when none is given; IPv6 in brackets).
    host_port: String,
    /// The name sent in the TLS handshake (SNI, not sent for an IP address); not verified.
    server_name: ServerName<'static>,
}

impl Target {
    fn parse(address: &str) -> Result<Target, String> {
        let origin = Uri::from_str(address).map_err(|e| format!("invalid address {address}: {e}"))?;
        let host = origin
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("invalid address {address}: no host"))?;
        let server_name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
            .map_err(|e| format!("invalid address {address}: host: {e}"))?;
        let host_port = format!("{host}:{}", origin.port_u16().unwrap_or(443));
        Ok(Target {
            origin,
            host_port,
            server_name,
        })
    }
}

/// Adds the macaroon (hex) to every call, in the `macaroon` metadata LND reads.
#[derive(Clone)]
pub(super) struct Macaroon(MetadataValue<Ascii>);

impl Macaroon {
    pub(super) fn new(bytes: &[u8]) -> Result<Macaroon, String> {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        MetadataValue::try_from(hex)
            .map(Macaroon)
            .map_err(|e| format!("macaroon: {e}"))
    }
}

impl fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Macaroon(..)")
    }
}

impl Interceptor for Macaroon {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("macaroon", self.0.clone());
        Ok(request)
    }
}

/// Opens TCP to LND and runs the TLS handshake, for tonic's channel.
#[derive(Clone)]
struct PinnedTlsConnector {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    host_port: String,
}

impl tonic::codegen::Service<Uri> for PinnedTlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&connector.host_port)
                .await
                .map_err(|e| ConnectFailed("TCP connection", e))?;
            tcp.set_nodelay(true).map_err(|e| ConnectFailed("TCP connection", e))?;
            let tls = connector
                .tls
                .connect(connector.server_name.clone(), tcp)
                .await
                .map_err(|e| ConnectFailed("TLS handshake", e))?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// Which step of connecting failed, and why.
#[derive(Debug)]
struct ConnectFailed(&'static str, std::io::Error);

impl fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl StdError for ConnectFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.1)
    }
}

/// Accepts the server only if it presents exactly the pinned certificates (in any order); the
/// handshake signatures are verified against the presented (so the pinned) keys as usual.
#[derive(Debug)]
struct PinnedCertificates {
    certs: Vec<Vec<u8>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut presented: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        presented.push(end_entity.as_ref());
        presented.sort_unstable();
        let mut pinned: Vec<&[u8]> = self.certs.iter().map(Vec::as_slice).collect();
        pinned.sort_unstable();
        if presented.len() != pinned.len() {
            return Err(rustls::Error::General(format!(
                "Mismatched number of certificates (Expected: {}, Presented: {})",
                pinned.len(),
                presented.len()
            )));
        }
        if presented != pinned {
            return Err(rustls::Error::General(
                "Server certificates do not match ours".to_string(),
            ));
        }
        Ok(ServerCertVerified::assertion())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_give_the_tcp_target_and_tls_name() {
        let cases = [
            ("https://127.0.0.1:10009", "127.0.0.1:10009", "127.0.0.1"),
            ("https://lnd:10009", "lnd:10009", "lnd"),
            ("https://lnd.example.org", "lnd.example.org:443", "lnd.example.org"),
            ("https://[::1]:10009/", "[::1]:10009", "::1"),
        ];
        for (address, host_port, name) in cases {
            let target = Target::parse(address).expect(address);
            assert_eq!(target.host_port, host_port, "{address}");
            assert_eq!(target.server_name.to_str(), name, "{address}");
            assert_eq!(
                target.origin.to_string().trim_end_matches('/'),
                address.trim_end_matches('/')
            );
        }
        for bad in ["https://", "https://no such host:1", "https://[::1:10009"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_channel_needs_a_pem_certificate_and_connects_only_when_used() {
        let err = channel("https://127.0.0.1:1", b"not a certificate").expect_err("no PEM");
        assert!(err.contains("no certificate"), "{err}");
        let pem = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("certificate")
            .cert
            .pem();
        // Nothing listens on port 1: setting the channel up does not connect.
        channel("https://127.0.0.1:1", pem.as_bytes()).expect("channel");
    }
}
