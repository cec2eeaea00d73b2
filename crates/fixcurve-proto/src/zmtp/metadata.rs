//! ZMTP metadata: properties of `name-len(1) name value-len(4, BE) value`, carried in READY
//! and (under CURVE) inside INITIATE and READY boxes.

use super::ZmtpError;

/// ZMTP metadata properties (name, value), in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(pub Vec<(String, Vec<u8>)>);

/// Bounds what a peer can make us hold: property count and value size.
const MAX_PROPERTIES: usize = 64;

impl Metadata {
    /// Metadata with just Socket-Type.
    pub fn socket_type(kind: &str) -> Self {
        Metadata(vec![("Socket-Type".into(), kind.as_bytes().to_vec())])
    }

    /// Case-insensitive lookup, as the RFC says names are case-insensitive.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Appends the wire form.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.0 {
            let n = &name.as_bytes()[..name.len().min(255)];
            out.push(n.len() as u8);
            out.extend_from_slice(n);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// Parses the wire form; names must be valid, lengths within the data.
    pub fn parse(mut data: &[u8]) -> Result<Self, ZmtpError> {
        let mut props = Vec::new();
        while !data.is_empty() {
            if props.len() >= MAX_PROPERTIES {
                return Err(ZmtpError::MalformedMetadata);
            }
            let (&n, rest) = data.split_first().ok_or(ZmtpError::MalformedMetadata)?;
            let n = usize::from(n);
            if n == 0 {
                return Err(ZmtpError::MalformedMetadata);
            }
            let name = rest.get(..n).ok_or(ZmtpError::MalformedMetadata)?;
            if !name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
            {
                return Err(ZmtpError::MalformedMetadata);
            }
            let rest = &rest[n..];
            let len_raw = rest.get(..4).ok_or(ZmtpError::MalformedMetadata)?;
            let len = u32::from_be_bytes([len_raw[0], len_raw[1], len_raw[2], len_raw[3]]) as usize;
            let end = len.checked_add(4).ok_or(ZmtpError::MalformedMetadata)?;
            let value = rest.get(4..end).ok_or(ZmtpError::MalformedMetadata)?;
            props.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
            data = rest.get(end..).unwrap_or_default();
        }
        Ok(Metadata(props))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_roundtrip() {
        let md = Metadata::socket_type("SUB");
        let bytes = md.encode();
        assert_eq!(bytes, b"\x0bSocket-Type\x00\x00\x00\x03SUB");
        let back = Metadata::parse(&bytes).unwrap();
        assert_eq!(back.get("socket-type"), Some(&b"SUB"[..]));
        assert_eq!(Metadata::parse(b"").unwrap(), Metadata::default());
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"\x0bSocket-Type\x00\x00\x00\x09SUB"[..],
            b"\x00",
            b"\x05ab",
            b"\x02a b\x00\x00\x00\x00",
            b"\x01a\x00\x00",
        ] {
            assert!(Metadata::parse(bad).is_err(), "{bad:?}");
        }
    }
}
