//! The unit every FIX layer passes around: one tag=value pair, borrowed from the wire buffer.

/// One FIX field in wire order. `value` borrows the decoder's buffer (zero-copy) and is
/// raw bytes: text fields are not guaranteed UTF-8 and data fields (e.g. 96) are binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The tag number.
    pub tag: u32,
    /// The value bytes, without `=` and SOH.
    pub value: &'a [u8],
}

impl<'a> Field<'a> {
    /// A field borrowing `value`.
    pub fn new(tag: u32, value: &'a [u8]) -> Self {
        Field { tag, value }
    }

    /// The value as UTF-8 text, if it is.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value).ok()
    }
}
