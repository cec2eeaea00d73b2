//! A borrowing MessagePack reader for the envelope's one-pass path.
//!
//! rmp_serde reads every value through `io::Read` with a cached marker, and checks every map
//! key as UTF-8 before the field visitor compares it: with four subscribers end to end that was
//! most of the subscriber's decode time. This reader borrows from the slice and gives keys to
//! field visitors as bytes (they compare bytes; a key that is not UTF-8 matches no field, as
//! rmp_serde's own fallback to bytes does).
//!
//! It reads only what the envelope's types are written with. Anything else (bin, ext, 128-bit
//! integers, enum variants with data, nesting past [`MAX_DEPTH`], a value that is not UTF-8)
//! is declined, and the caller falls back to rmp_serde, which decides and names the error. So
//! whenever this reader accepts bytes, rmp_serde reads the same value from them: a unit test and
//! the `envelope` fuzz target compare the two.

use std::fmt;

use rmp::Marker;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deepest nesting read here (an envelope nests four deep: envelope, body, book changes, one
/// change); deeper goes to rmp_serde.
pub(super) const MAX_DEPTH: u16 = 16;

/// The bytes are not read by this reader; the general path decides.
#[derive(Debug)]
pub(super) struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the general MessagePack path")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    /// The message is dropped unformatted: the general path produces the error users see.
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Declined
    }
}

/// `b` as text. Values are mostly short ASCII (names, ids, decimals): checked a word at a time
/// inline, where `str::from_utf8` is a call per string (a tenth of a quote's decode).
#[inline]
#[allow(unsafe_code)]
fn text(b: &[u8]) -> Result<&str, Declined> {
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b).map_err(|_| Declined)
}

/// MessagePack values read in place from a slice.
pub(super) struct Reader<'de> {
    rest: &'de [u8],
    depth: u16,
}

impl<'de> Reader<'de> {
    pub(super) fn new(bytes: &'de [u8]) -> Self {
        Reader {
            rest: bytes,
            depth: MAX_DEPTH,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8], Declined> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(Declined)?;
        self.rest = rest;
        Ok(head)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Declined> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Declined)?;
        self.rest = rest;
        Ok(*head)
    }

    fn marker(&mut self) -> Result<Marker, Declined> {
        let (&b, rest) = self.rest.split_first().ok_or(Declined)?;
        self.rest = rest;
        Ok(Marker::from_u8(b))
    }

    fn peek(&self) -> Result<Marker, Declined> {
        self.rest
            .first()
            .map(|&b| Marker::from_u8(b))
            .ok_or(Declined)
    }

    /// The bytes of a string whose marker was just read; None when it is not a string.
    fn str_bytes(&mut self, m: Marker) -> Result<Option<&'de [u8]>, Declined> {
        let len = match m {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => usize::from(u8::from_be_bytes(self.be()?)),
            Marker::Str16 => usize::from(u16::from_be_bytes(self.be()?)),
            Marker::Str32 => u32::from_be_bytes(self.be()?) as usize,
            _ => return Ok(None),
        };
        self.take(len).map(Some)
    }

    fn len(&mut self, m: Marker) -> Result<u32, Declined> {
        Ok(match m {
            Marker::FixArray(n) | Marker::FixMap(n) => u32::from(n),
            Marker::Array16 | Marker::Map16 => u32::from(u16::from_be_bytes(self.be()?)),
            Marker::Array32 | Marker::Map32 => u32::from_be_bytes(self.be()?),
            _ => return Err(Declined),
        })
    }

    /// `left` entries of an array or map, all of which the visitor must take (as rmp_serde
    /// requires).
    fn nested<V: Visitor<'de>>(
        &mut self,
        left: u32,
        map: bool,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.depth = self.depth.checked_sub(1).ok_or(Declined)?;
        let mut access = Entries { r: self, left };
        // Handed back as the visitor returned it: unwrapping and rewrapping copies the value
        // (an envelope is half a kilobyte).
        let value = if map {
            visitor.visit_map(&mut access)
        } else {
            visitor.visit_seq(&mut access)
        };
        if access.left != 0 {
            return Err(Declined);
        }
        self.depth = self.depth.saturating_add(1);
        value
    }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Declined;

    /// As rmp_serde's default configuration: the compact representations.
    fn is_human_readable(&self) -> bool {
        false
    }

    /// The visitor calls rmp_serde makes for each marker.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let m = self.marker()?;
        match m {
            Marker::Null => visitor.visit_unit(),
            Marker::True => visitor.visit_bool(true),
            Marker::False => visitor.visit_bool(false),
            Marker::FixPos(n) => visitor.visit_u8(n),
            Marker::FixNeg(n) => visitor.visit_i8(n),
            Marker::U8 => visitor.visit_u8(u8::from_be_bytes(self.be()?)),
            Marker::U16 => visitor.visit_u16(u16::from_be_bytes(self.be()?)),
            Marker::U32 => visitor.visit_u32(u32::from_be_bytes(self.be()?)),
            Marker::U64 => visitor.visit_u64(u64::from_be_bytes(self.be()?)),
            Marker::I8 => visitor.visit_i8(i8::from_be_bytes(self.be()?)),
            Marker::I16 => visitor.visit_i16(i16::from_be_bytes(self.be()?)),
            Marker::I32 => visitor.visit_i32(i32::from_be_bytes(self.be()?)),
            Marker::I64 => visitor.visit_i64(i64::from_be_bytes(self.be()?)),
            Marker::F32 => visitor.visit_f32(f32::from_be_bytes(self.be()?)),
            Marker::F64 => visitor.visit_f64(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let b = self.str_bytes(m)?.ok_or(Declined)?;
                visitor.visit_borrowed_str(text(b)?)
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let n = self.len(m)?;
                self.nested(n, false, visitor)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let n = self.len(m)?;
                self.nested(n, true, visitor)
            }
            _ => Err(Declined),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        if self.peek()? == Marker::Null {
            self.marker()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// Field and variant names, as bytes: the visitors compare bytes, so no UTF-8 check.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let m = self.peek()?;
        if matches!(
            m,
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32
        ) {
            self.marker()?;
            let b = self.str_bytes(m)?.ok_or(Declined)?;
            return visitor.visit_borrowed_bytes(b);
        }
        self.deserialize_any(visitor)
    }

    /// Unit variants, written as their name; variants with data are left to rmp_serde.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        let m = self.marker()?;
        let b = self.str_bytes(m)?.ok_or(Declined)?;
        let name = text(b)?;
        visitor.visit_enum(BorrowedStrDeserializer::new(name))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        // rmp_serde's extension-type marker name.
        if name == "_ExtStruct" {
            return Err(Declined);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        // rmp_serde writes a unit struct as an empty array and reads nil as one too.
        if matches!(self.peek()?, Marker::Null | Marker::FixArray(0)) {
            self.marker()?;
            return visitor.visit_unit();
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Declined> {
        Err(Declined)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Declined> {
        Err(Declined)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf unit seq
        tuple tuple_struct map struct ignored_any
    }
}

/// The entries of one array or map.
struct Entries<'a, 'de> {
    r: &'a mut Reader<'de>,
    left: u32,
}

impl<'de> Entries<'_, 'de> {
    /// Every entry takes at least a byte, so a hostile count cannot size an allocation.
    fn hint(&self) -> Option<usize> {
        Some((self.left as usize).min(self.r.rest.len()))
    }

    /// The next element of an array, or the next key of a map.
    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Declined> {
        let Some(left) = self.left.checked_sub(1) else {
            return Ok(None);
        };
        self.left = left;
        seed.deserialize(&mut *self.r).map(Some)
    }
}

impl<'de> SeqAccess<'de> for Entries<'_, 'de> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Declined> {
        self.next(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        self.next(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        seed.deserialize(&mut *self.r)
    }

    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}
