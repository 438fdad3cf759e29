//! The BER subset LDAPv3 (RFC 4511 §5.1) needs: single-byte tags, definite
//! lengths (short form, or long form up to four bytes), INTEGER, OCTET
//! STRING, BOOLEAN, ENUMERATED, NULL and constructed SEQUENCE/SET/CHOICE.
//! The reader works on a complete, bounded buffer and never panics: every
//! length is checked against what is left, and nothing is allocated from a
//! peer-chosen size.

use core::fmt;

/// Universal tags used here.
pub mod tag {
    /// BOOLEAN.
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// ENUMERATED.
    pub const ENUMERATED: u8 = 0x0a;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed).
    pub const SET: u8 = 0x31;
}

/// Why a buffer is not valid BER (for our subset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BerError {
    /// The buffer ends inside an element.
    Truncated,
    /// A multi-byte tag, an indefinite or over-long length.
    Unsupported(&'static str),
    /// Another tag than the one expected.
    UnexpectedTag {
        /// What was expected.
        expected: u8,
        /// What was there.
        found: u8,
    },
    /// A value that does not fit its type (e.g. an INTEGER above 64 bits).
    BadValue(&'static str),
    /// Bytes left over after the last element.
    Trailing,
}

impl fmt::Display for BerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated element"),
            Self::Unsupported(w) => write!(f, "unsupported encoding: {w}"),
            Self::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            Self::BadValue(w) => write!(f, "bad value: {w}"),
            Self::Trailing => f.write_str("trailing bytes"),
        }
    }
}

/// Appends a definite length.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in 7 bits.
        out.push(u8::try_from(len).unwrap_or(0));
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let rest = bytes.get(skip..).unwrap_or(&[]);
    out.push(0x80 | u8::try_from(rest.len()).unwrap_or(0));
    out.extend_from_slice(rest);
}

/// Appends a tag, length and content.
pub fn put_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    put_len(out, content.len());
    out.extend_from_slice(content);
}

/// Appends an INTEGER (or ENUMERATED with `tag`) in minimal two's complement.
pub fn put_int(out: &mut Vec<u8>, tag: u8, v: i64) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (Some(b), Some(next)) = (bytes.get(start), bytes.get(start + 1)) else {
            break;
        };
        let redundant = (*b == 0x00 && next & 0x80 == 0) || (*b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    put_tlv(out, tag, bytes.get(start..).unwrap_or(&[]));
}

/// Appends a BOOLEAN.
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    put_tlv(out, tag::BOOLEAN, &[if v { 0xff } else { 0x00 }]);
}

/// One element: its tag and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
}

/// Reads the header at the start of `buf`: (tag, header length, content
/// length). Lengths above `u32::MAX` are refused.
///
/// # Errors
/// [`BerError::Truncated`] when the header is incomplete; unsupported forms.
pub fn header(buf: &[u8]) -> Result<(u8, usize, usize), BerError> {
    let (&tag, rest) = buf.split_first().ok_or(BerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(BerError::Unsupported("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(BerError::Truncated)?;
    if first < 0x80 {
        return Ok((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 {
        return Err(BerError::Unsupported("indefinite length"));
    }
    if n > 4 {
        return Err(BerError::Unsupported("length above 32 bits"));
    }
    let bytes = rest.get(..n).ok_or(BerError::Truncated)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((tag, 2 + n, len))
}

/// The total size of the first element of `buf` once complete:
/// `Ok(None)` when more bytes are needed to tell.
///
/// # Errors
/// An unsupported header.
pub fn element_size(buf: &[u8]) -> Result<Option<usize>, BerError> {
    match header(buf) {
        Ok((_, h, len)) => Ok(h.checked_add(len)),
        Err(BerError::Truncated) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A cursor over a sequence of elements.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads the elements of `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// True when nothing is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The tag of the next element, if any.
    #[must_use]
    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The next element.
    ///
    /// # Errors
    /// A truncated or unsupported element.
    pub fn next_tlv(&mut self) -> Result<Tlv<'a>, BerError> {
        let (tag, h, len) = header(self.buf)?;
        let end = h.checked_add(len).ok_or(BerError::Truncated)?;
        let content = self.buf.get(h..end).ok_or(BerError::Truncated)?;
        self.buf = self.buf.get(end..).unwrap_or(&[]);
        Ok(Tlv { tag, content })
    }

    /// The next element, which must have `tag`.
    ///
    /// # Errors
    /// As [`Self::next_tlv`], or another tag.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], BerError> {
        let t = self.next_tlv()?;
        if t.tag == tag {
            Ok(t.content)
        } else {
            Err(BerError::UnexpectedTag {
                expected: tag,
                found: t.tag,
            })
        }
    }

    /// The next element as an INTEGER/ENUMERATED with `tag`.
    ///
    /// # Errors
    /// As [`Self::expect`], or a value wider than 64 bits or empty.
    pub fn int(&mut self, tag: u8) -> Result<i64, BerError> {
        decode_int(self.expect(tag)?)
    }

    /// Refuses anything left over.
    ///
    /// # Errors
    /// [`BerError::Trailing`].
    pub fn finish(&self) -> Result<(), BerError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(BerError::Trailing)
        }
    }
}

/// Decodes two's-complement INTEGER content (1 to 8 bytes).
///
/// # Errors
/// Empty or wider than 64 bits.
pub fn decode_int(content: &[u8]) -> Result<i64, BerError> {
    if content.is_empty() {
        return Err(BerError::BadValue("empty integer"));
    }
    if content.len() > 8 {
        return Err(BerError::BadValue("integer above 64 bits"));
    }
    let negative = content.first().is_some_and(|b| b & 0x80 != 0);
    let init: i64 = if negative { -1 } else { 0 };
    Ok(content
        .iter()
        .fold(init, |acc, b| (acc << 8) | i64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_short_and_long() {
        let mut v = Vec::new();
        put_len(&mut v, 5);
        put_len(&mut v, 0x80);
        put_len(&mut v, 0x1234);
        assert_eq!(v, [5, 0x81, 0x80, 0x82, 0x12, 0x34]);
        assert_eq!(header(&[0x04, 0x82, 0x12, 0x34]), Ok((0x04, 4, 0x1234)));
        assert_eq!(header(&[0x04, 0x82, 0x12]), Err(BerError::Truncated));
        assert!(matches!(
            header(&[0x04, 0x80]),
            Err(BerError::Unsupported(_))
        ));
        assert!(matches!(
            header(&[0x04, 0x85, 1, 1, 1, 1, 1]),
            Err(BerError::Unsupported(_))
        ));
        assert!(matches!(header(&[0x1f, 1]), Err(BerError::Unsupported(_))));
    }

    #[test]
    fn integers_minimal_both_ways() {
        for (v, enc) in [
            (0i64, vec![0x02, 1, 0]),
            (127, vec![0x02, 1, 0x7f]),
            (128, vec![0x02, 2, 0, 0x80]),
            (256, vec![0x02, 2, 1, 0]),
            (-1, vec![0x02, 1, 0xff]),
            (-129, vec![0x02, 2, 0xff, 0x7f]),
        ] {
            let mut out = Vec::new();
            put_int(&mut out, tag::INTEGER, v);
            assert_eq!(out, enc, "{v}");
            assert_eq!(Reader::new(&out).int(tag::INTEGER), Ok(v));
        }
        assert!(decode_int(&[]).is_err());
        assert!(decode_int(&[1; 9]).is_err());
    }

    #[test]
    fn element_size_waits_for_the_header() {
        assert_eq!(element_size(&[0x30]), Ok(None));
        assert_eq!(element_size(&[0x30, 0x84, 0, 0]), Ok(None));
        assert_eq!(element_size(&[0x30, 3]), Ok(Some(5)));
    }

    proptest! {
        #[test]
        fn reader_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut r = Reader::new(&buf);
            for _ in 0..300 {
                match r.next_tlv() {
                    Ok(t) => { let _ = decode_int(t.content); let _ = Reader::new(t.content).next_tlv(); }
                    Err(_) => break,
                }
                if r.is_empty() { break; }
            }
            let _ = element_size(&buf);
        }

        #[test]
        fn int_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_int(&mut out, tag::INTEGER, v);
            prop_assert_eq!(Reader::new(&out).int(tag::INTEGER), Ok(v));
        }

        #[test]
        fn tlv_round_trip(content in proptest::collection::vec(any::<u8>(), 0..70_000usize)) {
            let mut out = Vec::new();
            put_tlv(&mut out, tag::OCTET_STRING, &content);
            prop_assert_eq!(element_size(&out), Ok(Some(out.len())));
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.expect(tag::OCTET_STRING), Ok(&content[..]));
            prop_assert!(r.finish().is_ok());
        }
    }
}
