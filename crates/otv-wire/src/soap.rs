//! SOAP 1.2 envelopes with WS-Addressing headers: reading the frame of a request and writing
//! faults.
//!
//! This module knows the envelope, the header and the fault; what is inside the body belongs to
//! the codec of each operation. It must not decide anything about a request's content.

use crate::error::{Excerpt, WireError};
use crate::xml::{self, Element, escape};

/// SOAP 1.2 envelope namespace.
pub(crate) const SOAP_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace, recognised only to say that it is the wrong version.
const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Addressing 1.0 namespace.
pub(crate) const WSA_NS: &str = "http://www.w3.org/2005/08/addressing";

/// The longest `MessageID` accepted. It is an IRI chosen by the sender that otv echoes and
/// logs; real ones are `urn:uuid:` plus 36 characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 256;

/// The parts of a SOAP 1.2 envelope a codec works with.
pub(crate) struct Envelope {
    /// The `Header` element, if any.
    pub header: Option<Element>,
    /// The one element inside `Body`.
    pub body: Element,
}

/// Reads a SOAP 1.2 envelope and checks its frame: an `Envelope` with at most one `Header` and
/// exactly one `Body` that holds exactly one element.
pub(crate) fn read_envelope(input: &[u8]) -> Result<Envelope, WireError> {
    let root = xml::parse(input)?;
    if root.is(SOAP11_NS, "Envelope") {
        return Err(WireError::Structure(
            "the envelope is SOAP 1.1; this interface speaks SOAP 1.2 \
             (namespace http://www.w3.org/2003/05/soap-envelope)"
                .to_owned(),
        ));
    }
    if !root.is(SOAP_NS, "Envelope") {
        return Err(WireError::Structure(format!(
            "the document element is `{}`, not a SOAP 1.2 Envelope \
             (namespace http://www.w3.org/2003/05/soap-envelope)",
            root.expanded_name()
        )));
    }
    let mut header = None;
    let mut body = None;
    for child in root.children {
        let slot = match (child.namespace.as_deref(), child.local.as_str()) {
            (Some(SOAP_NS), "Header") => &mut header,
            (Some(SOAP_NS), "Body") => &mut body,
            _ => {
                return Err(WireError::Structure(format!(
                    "unexpected element `{}` in the SOAP Envelope",
                    child.expanded_name()
                )));
            }
        };
        if slot.is_some() {
            return Err(WireError::Structure(format!(
                "more than one SOAP {}",
                child.local
            )));
        }
        *slot = Some(child);
    }
    let body = body.ok_or_else(|| WireError::Structure("missing SOAP Body".to_owned()))?;
    let mut content = body.children.into_iter();
    let (Some(body), None) = (content.next(), content.next()) else {
        return Err(WireError::Structure(
            "the SOAP Body must hold exactly one element".to_owned(),
        ));
    };
    Ok(Envelope { header, body })
}

/// The WS-Addressing headers of a request.
pub(crate) struct Addressing {
    /// `MessageID`.
    pub message_id: String,
    /// `To`, if sent.
    pub to: Option<String>,
}

/// Reads `Action` (required, must equal `expected_action`), `MessageID` (required) and `To`
/// (optional). Other header blocks are left alone: the sender may add its own, and otv
/// authenticates the sender by its TLS certificate, not by a header.
pub(crate) fn read_addressing(
    header: Option<&Element>,
    expected_action: &'static str,
) -> Result<Addressing, WireError> {
    let one = |local: &'static str| -> Result<Option<String>, WireError> {
        let mut found = header
            .into_iter()
            .flat_map(|h| h.children_named(WSA_NS, local));
        let first = found.next();
        if found.next().is_some() {
            return Err(WireError::RepeatedAddressing(local));
        }
        // WS-Addressing values are URIs: surrounding whitespace is layout, not content.
        Ok(first
            .map(|e| e.text.trim_ascii().to_owned())
            .filter(|t| !t.is_empty()))
    };
    let action = one("Action")?.ok_or(WireError::MissingAddressing("Action"))?;
    if action != expected_action {
        return Err(WireError::WrongAction {
            found: Excerpt::new(&action),
            expected: expected_action,
        });
    }
    let message_id = one("MessageID")?.ok_or(WireError::MissingAddressing("MessageID"))?;
    if message_id.chars().count() > MAX_MESSAGE_ID_CHARS {
        return Err(WireError::AddressingTooLong {
            header: "MessageID",
            limit: MAX_MESSAGE_ID_CHARS,
        });
    }
    let to = one("To")?;
    Ok(Addressing { message_id, to })
}

/// Whose fault a SOAP fault is (SOAP 1.2 §5.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCode {
    /// The request is wrong; sending it again unchanged will fail again. Answered with a 4xx
    /// status.
    Sender,
    /// otv could not answer; the same request may succeed later. Answered with a 5xx status.
    Receiver,
}

impl FaultCode {
    /// The local name of the SOAP 1.2 fault code: `Sender` or `Receiver`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::Sender => "Sender",
            FaultCode::Receiver => "Receiver",
        }
    }
}

/// A SOAP 1.2 fault envelope with `code` and an English `reason`, escaped.
///
/// `reason` is sent to the client as is: pass a [`WireError`]'s text or a fixed sentence, never
/// an internal error message that might carry a BSN or a secret.
pub fn soap_fault(code: FaultCode, reason: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{SOAP_NS}">
  <soap:Body>
    <soap:Fault>
      <soap:Code>
        <soap:Value>soap:{code}</soap:Value>
      </soap:Code>
      <soap:Reason>
        <soap:Text xml:lang="en">{reason}</soap:Text>
      </soap:Reason>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>
"#,
        code = code.as_str(),
        reason = escape(reason),
    )
}
