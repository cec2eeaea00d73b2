//! Prices and quantities go on the wire as exact decimal strings, the text rust_decimal's
//! serde support writes. Its formatter is general (96-bit mantissas, formatter precision)
//! and cost ~490 instructions per value, four per Quote, on every envelope the bridge
//! encodes; values whose mantissa fits in 64 bits (every price and size seen in practice)
//! are written here with a plain digit loop instead, and anything else (and negative zero)
//! goes through rust_decimal. The unit tests compare the two texts.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// Sign, "0.", up to 28 zeros of scale and 20 digits.
const MAX_TEXT: usize = 1 + 2 + 28 + 20;

/// `d` as rust_decimal writes it, if its mantissa fits in 64 bits; `None` otherwise.
#[allow(clippy::arithmetic_side_effects)] // b'0' plus a digit (v % 10 < 10)
fn text<'b>(d: &Decimal, buf: &'b mut [u8; MAX_TEXT]) -> Option<&'b str> {
    let m = d.mantissa();
    if m == 0 && d.is_sign_negative() {
        return None;
    }
    let mut v = u64::try_from(m.unsigned_abs()).ok()?;
    let scale = usize::try_from(d.scale()).ok()?;
    let mut digits = [0u8; 20];
    let mut first = digits.len();
    loop {
        first = first.checked_sub(1)?;
        *digits.get_mut(first)? = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = digits.get(first..)?;
    let mut out = Cursor { buf, len: 0 };
    if m < 0 {
        out.put(b"-")?;
    }
    match digits.len().checked_sub(scale) {
        Some(_) if scale == 0 => out.put(digits)?,
        Some(int) if int > 0 => {
            out.put(digits.get(..int)?)?;
            out.put(b".")?;
            out.put(digits.get(int..)?)?;
        }
        // All digits are fractional: "0." and the zeros the scale asks for first.
        _ => {
            out.put(b"0.")?;
            for _ in digits.len()..scale {
                out.put(b"0")?;
            }
            out.put(digits)?;
        }
    }
    let Cursor { buf, len } = out;
    std::str::from_utf8(buf.get(..len)?).ok()
}

struct Cursor<'b> {
    buf: &'b mut [u8; MAX_TEXT],
    len: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.buf.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }
}

/// A decimal serialized through [`text`].
struct Text<'a>(&'a Decimal);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; MAX_TEXT];
        match text(self.0, &mut buf) {
            Some(t) => s.serialize_str(t),
            None => Serialize::serialize(self.0, s),
        }
    }
}

/// `serialize_with` for a `Decimal` field.
pub(crate) fn plain<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    Text(d).serialize(s)
}

/// `serialize_with` for an `Option<Decimal>` field (`None` stays nil, as before).
pub(crate) fn opt<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&Text(d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// What rust_decimal's own serde support writes for `d`.
    fn reference(d: &Decimal) -> String {
        match serde_json::to_value(d) {
            Ok(serde_json::Value::String(s)) => s,
            other => panic!("rust_decimal wrote {other:?}"),
        }
    }

    fn ours(d: &Decimal) -> String {
        match serde_json::to_value(Text(d)) {
            Ok(serde_json::Value::String(s)) => s,
            other => panic!("wrote {other:?}"),
        }
    }

    #[test]
    fn writes_what_rust_decimal_writes() {
        let texts = [
            "0",
            "0.00",
            "1",
            "-1",
            "1.08763",
            "-1.08763",
            "64000.00",
            "0.10000000",
            "0.5",
            "0.0000001",
            "-0.0000001",
            "1000000",
            "18446744073709551615",
            "-18446744073709551615",
            "1844674407370955161.5",
            "0.0000000000000000000000000001",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "1e-28",
        ];
        for t in texts {
            let d = Decimal::from_str(t)
                .or_else(|_| Decimal::from_scientific(t))
                .unwrap();
            assert_eq!(ours(&d), reference(&d), "{t}");
        }
        let neg_zero = Decimal::from_str("-0.00").unwrap();
        assert_eq!(ours(&neg_zero), reference(&neg_zero));
    }

    #[test]
    fn writes_what_rust_decimal_writes_across_mantissas_and_scales() {
        // A fixed xorshift sequence: mantissas of every size, both signs, every scale.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000u32 {
            let bits = next() % 97;
            let hi = u128::from(next()) << 64 | u128::from(next());
            let mag = if bits == 0 { 0 } else { hi >> (128 - bits) };
            let m = if next() % 2 == 0 {
                mag as i128
            } else {
                -(mag as i128)
            };
            let scale = (next() % 29) as u32;
            let d = Decimal::from_i128_with_scale(m, scale);
            assert_eq!(ours(&d), reference(&d), "case {i}: {m} scale {scale}");
        }
    }

    #[test]
    fn optional_fields_keep_nil_for_none() {
        #[derive(Serialize)]
        struct T {
            #[serde(serialize_with = "opt")]
            a: Option<Decimal>,
            #[serde(serialize_with = "opt")]
            b: Option<Decimal>,
            #[serde(serialize_with = "plain")]
            c: Decimal,
        }
        let v = T {
            a: None,
            b: Some(Decimal::from_str("1.50").unwrap()),
            c: Decimal::from_str("-2").unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":null,"b":"1.50","c":"-2"}"#
        );
        let mp = rmp_serde::to_vec_named(&v).unwrap();
        #[derive(Serialize)]
        struct Plain {
            a: Option<Decimal>,
            b: Option<Decimal>,
            c: Decimal,
        }
        let before = Plain {
            a: v.a,
            b: v.b,
            c: v.c,
        };
        assert_eq!(mp, rmp_serde::to_vec_named(&before).unwrap());
    }
}
