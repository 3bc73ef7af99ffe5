//! What a connection knows about its client: the address and, under mutual TLS, the
//! names in the certificate the client presented (already verified against the
//! client CA during the handshake).

use std::net::SocketAddr;
use std::sync::Arc;

/// Connection info of a TLS connection, in every request's extensions.
#[derive(Debug, Clone)]
pub struct TlsConnectInfo {
    pub remote_addr: Option<SocketAddr>,
    /// The client's certificate, when it presented one.
    pub client_certificate: Option<Arc<PeerCertificate>>,
}

/// The names a client certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject's common names (CN), in order.
    pub subject_cn: Vec<String>,
    /// Subject alternative names: DNS names, e-mail addresses (rfc822Name), URIs.
    pub san_dns: Vec<String>,
    pub san_email: Vec<String>,
    pub san_uri: Vec<String>,
}

impl PeerCertificate {
    /// The names of a DER certificate; `None` if it cannot be read as X.509.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let certificate = Reader::new(der).expect(SEQUENCE)?;
        let mut tbs = Reader::new(Reader::new(certificate).expect(SEQUENCE)?);
        if tbs.peek_tag() == Some(EXPLICIT_0) {
            tbs.next()?; // version
        }
        for _ in ["serial", "signature", "issuer", "validity"] {
            tbs.next()?;
        }
        let subject = tbs.expect(SEQUENCE)?;
        tbs.expect(SEQUENCE)?; // subject public key info
        let mut names = Self { subject_cn: common_names(subject)?, ..Self::default() };
        while let Some((tag, content)) = tbs.next() {
            if tag == EXPLICIT_3 {
                names.read_extensions(Reader::new(content).expect(SEQUENCE)?)?;
            }
        }
        Some(names)
    }

    fn read_extensions(&mut self, extensions: &[u8]) -> Option<()> {
        let mut extensions = Reader::new(extensions);
        while !extensions.is_empty() {
            let mut extension = Reader::new(extensions.expect(SEQUENCE)?);
            let id = extension.expect(OID)?;
            if extension.peek_tag() == Some(BOOLEAN) {
                extension.next()?; // critical
            }
            let value = extension.expect(OCTET_STRING)?;
            if id == OID_SUBJECT_ALT_NAME {
                let mut general_names = Reader::new(Reader::new(value).expect(SEQUENCE)?);
                while let Some((tag, content)) = general_names.next() {
                    let list = match tag {
                        SAN_EMAIL => &mut self.san_email,
                        SAN_DNS => &mut self.san_dns,
                        SAN_URI => &mut self.san_uri,
                        _ => continue,
                    };
                    list.push(std::str::from_utf8(content).ok()?.to_owned());
                }
            }
        }
        Some(())
    }
}

/// The CN attributes of a Name, in order.
fn common_names(name: &[u8]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut rdns = Reader::new(name);
    while !rdns.is_empty() {
        let mut attributes = Reader::new(rdns.expect(SET)?);
        while !attributes.is_empty() {
            let mut attribute = Reader::new(attributes.expect(SEQUENCE)?);
            let id = attribute.expect(OID)?;
            let (tag, value) = attribute.next()?;
            if id == OID_COMMON_NAME {
                match tag {
                    UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
                        names.push(std::str::from_utf8(value).ok()?.to_owned())
                    }
                    // BMPString, TeletexString, UniversalString: not read as names.
                    _ => {}
                }
            }
        }
    }
    Some(names)
}

const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const EXPLICIT_0: u8 = 0xa0;
const EXPLICIT_3: u8 = 0xa3;
const SAN_EMAIL: u8 = 0x81;
const SAN_DNS: u8 = 0x82;
const SAN_URI: u8 = 0x86;
/// 2.5.4.3
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// A reader of DER TLVs (single-byte tags, definite lengths), bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(der: &'a [u8]) -> Self {
        Self { rest: der }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element's tag and content.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // multi-byte tags do not occur in what is read here
        }
        let (&first, mut rest) = rest.split_first()?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let octets = usize::from(first & 0x7f);
            if octets == 0 || octets > 4 || rest.len() < octets {
                return None;
            }
            let (bytes, after) = rest.split_at(octets);
            rest = after;
            bytes.iter().fold(0usize, |length, byte| (length << 8) | usize::from(*byte))
        };
        if rest.len() < length {
            return None;
        }
        let (content, after) = rest.split_at(length);
        self.rest = after;
        Some((tag, content))
    }

    /// The next element's content if it has `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|(found, _)| *found == tag).map(|(_, content)| content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn rdn(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        tlv(SET, &tlv(SEQUENCE, &[tlv(OID, oid), tlv(tag, value.as_bytes())].concat()))
    }

    /// A certificate with the given subject and SAN entries (signature and keys are
    /// placeholders: only the structure is read).
    fn certificate(subject: &[Vec<u8>], sans: &[(u8, &str)], critical: bool) -> Vec<u8> {
        let algorithm = tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x86, 0x48]));
        let general_names =
            tlv(SEQUENCE, &sans.iter().map(|(t, v)| tlv(*t, v.as_bytes())).collect::<Vec<_>>().concat());
        let mut extension = tlv(OID, OID_SUBJECT_ALT_NAME);
        if critical {
            extension.extend(tlv(BOOLEAN, &[0xff]));
        }
        extension.extend(tlv(OCTET_STRING, &general_names));
        let other = tlv(SEQUENCE, &[tlv(OID, &[0x55, 0x1d, 0x13]), tlv(OCTET_STRING, &tlv(SEQUENCE, &[]))].concat());
        let extensions = tlv(EXPLICIT_3, &tlv(SEQUENCE, &[other, tlv(SEQUENCE, &extension)].concat()));
        let tbs = [
            tlv(EXPLICIT_0, &tlv(0x02, &[2])),
            tlv(0x02, &[0x01, 0x23]),
            algorithm.clone(),
            tlv(SEQUENCE, &rdn(&[0x55, 0x04, 0x0a], UTF8_STRING, "meshgate CA")),
            tlv(SEQUENCE, &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z")].concat()),
            tlv(SEQUENCE, &subject.concat()),
            tlv(SEQUENCE, &[algorithm.clone(), tlv(0x03, &[0; 300])].concat()),
            extensions,
        ]
        .concat();
        tlv(SEQUENCE, &[tlv(SEQUENCE, &tbs), algorithm, tlv(0x03, &[0; 65])].concat())
    }

    #[test]
    fn reads_common_names_and_alternative_names() {
        let subject =
            [rdn(&[0x55, 0x04, 0x06], PRINTABLE_STRING, "FR"), rdn(OID_COMMON_NAME, UTF8_STRING, "svc-trainer")];
        let sans = [
            (SAN_DNS, "trainer.ml.internal"),
            (SAN_EMAIL, "ml@example.com"),
            (SAN_URI, "spiffe://mesh/ml/trainer"),
            (0x87, "\x7f\0\0\x01"),
        ];
        for critical in [false, true] {
            let names = PeerCertificate::from_der(&certificate(&subject, &sans, critical)).unwrap();
            assert_eq!(names.subject_cn, ["svc-trainer"]);
            assert_eq!(names.san_dns, ["trainer.ml.internal"]);
            assert_eq!(names.san_email, ["ml@example.com"]);
            assert_eq!(names.san_uri, ["spiffe://mesh/ml/trainer"]);
        }
    }

    #[test]
    fn truncated_or_garbage_is_not_a_certificate() {
        let der = certificate(&[rdn(OID_COMMON_NAME, PRINTABLE_STRING, "ana")], &[], false);
        assert_eq!(PeerCertificate::from_der(&der).unwrap().subject_cn, ["ana"]);
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            assert_eq!(PeerCertificate::from_der(&der[..cut]), None, "cut at {cut}");
        }
        assert_eq!(PeerCertificate::from_der(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(PeerCertificate::from_der(b""), None);
    }
}
