//! The few DER building blocks the otherName reader and the test PKI need: one TLV read, one
//! TLV write, object identifiers. Deliberately tiny; everything else is x509-parser's (reading)
//! or rcgen's (writing).

/// Universal tag of an OBJECT IDENTIFIER.
pub const OID: u8 = 0x06;
/// Universal tag of a UTF8String.
pub const UTF8_STRING: u8 = 0x0c;
/// Universal tag of an IA5String.
pub const IA5_STRING: u8 = 0x16;
/// Universal tag of a SEQUENCE (constructed).
pub const SEQUENCE: u8 = 0x30;
/// Context-specific, constructed, tag 0: `[0]` in both otherName positions.
pub const CONTEXT_0: u8 = 0xa0;

/// Reads one TLV with a single-byte tag and a definite length: `(tag, content, rest)`.
/// `None` when the input is not that.
pub fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags do not occur in what we read
    }
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || input.len() < octets {
            return None; // indefinite (not DER) or absurd lengths
        }
        let (bytes, rest) = input.split_at(octets);
        input = rest;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 || bytes[0] == 0 {
            return None; // not the minimal encoding DER requires
        }
        len
    };
    if input.len() < len {
        return None;
    }
    let (content, rest) = input.split_at(len);
    Some((tag, content, rest))
}

/// Writes one TLV.
pub fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The content octets of an OBJECT IDENTIFIER given as arcs (at least two).
pub fn oid_content(arcs: &[u64]) -> Vec<u8> {
    assert!(
        arcs.len() >= 2 && arcs[0] <= 2,
        "an OID has at least two arcs"
    );
    let mut out = Vec::new();
    let mut push = |mut arc: u64| {
        let mut chunk = vec![(arc & 0x7f) as u8];
        arc >>= 7;
        while arc > 0 {
            chunk.push(0x80 | (arc & 0x7f) as u8);
            arc >>= 7;
        }
        out.extend(chunk.iter().rev());
    };
    push(arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        push(arc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_encode_as_in_x690() {
        // 1.3.6.1.5.5.7.8.3 (id-on-permanentIdentifier) and 2.16.528.1.1007.3.3 (URA)
        assert_eq!(
            oid_content(&[1, 3, 6, 1, 5, 5, 7, 8, 3]),
            [0x2b, 6, 1, 5, 5, 7, 8, 3]
        );
        assert_eq!(
            oid_content(&[2, 16, 528, 1, 1007, 3, 3]),
            [0x60, 0x84, 0x10, 1, 0x87, 0x6f, 3, 3]
        );
    }

    #[test]
    fn lengths_round_trip_in_short_and_long_form() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let tlv = write(SEQUENCE, &content);
            let (tag, read_content, rest) = read(&tlv).unwrap();
            assert_eq!((tag, read_content.len(), rest.len()), (SEQUENCE, len, 0));
        }
    }

    #[test]
    fn non_der_lengths_are_refused() {
        assert!(read(&[SEQUENCE, 0x80]).is_none(), "indefinite length");
        assert!(
            read(&[SEQUENCE, 0x81, 0x05, 0, 0, 0, 0, 0]).is_none(),
            "long form for 5"
        );
        assert!(read(&[SEQUENCE, 0x05, 0]).is_none(), "truncated");
        assert!(read(&[0x1f, 0x01, 0x00]).is_none(), "multi-byte tag");
    }
}
