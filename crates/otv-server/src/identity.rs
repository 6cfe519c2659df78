//! Who is calling on the provider listener: the client certificate that the mutual-TLS
//! handshake verified, reduced to what authorisation needs.

use otv_core::Ura;

/// The verified client of one provider-listener connection. Put into each request's
/// extensions by the TLS acceptor; absent on a plain-HTTP development listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// SHA-256 of the leaf certificate's DER, lower-case hex: the key of the connector
    /// allow-list.
    pub certificate_sha256: String,
    /// The URA carried by a UZI server certificate (subjectAltName otherName), if any.
    pub ura: Option<Ura>,
    /// The certificate's subject, for audit records.
    pub subject: String,
}
