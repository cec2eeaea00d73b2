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

/// `with` for a `Decimal` field.
pub(crate) mod plain {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        super::Text(d).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        super::Read::deserialize(d).map(|r| r.0)
    }
}

/// `with` for an `Option<Decimal>` field (`None` stays nil, as before).
pub(crate) mod opt {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::Text(d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<super::Read>::deserialize(d).map(|o| o.map(|r| r.0))
    }
}

/// The decimal of plain text that fits a 64-bit mantissa (`-`, up to 19 digits, a '.' with
/// digits on both sides), built directly; `None` for anything else, which goes to
/// rust_decimal's parser. Every subscriber reads four of these per Quote, and
/// `Decimal::from_str` is general (96-bit mantissas, '_' separators, rounding): this gives
/// the same value and scale for the text it takes (a unit test compares the two).
#[allow(clippy::arithmetic_side_effects)] // at most 19 digits: below 10^19 < 2^64
pub(crate) fn parse_simple(text: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0usize;
    let mut dot: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                count += 1;
                if count > 19 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(b - b'0');
            }
            b'.' if dot.is_none() => dot = Some(count),
            _ => return None,
        }
    }
    let scale = match dot {
        None if count > 0 => 0,
        // Digits on both sides of the point ("5." and ".5" are rust_decimal's to judge).
        Some(int) if int > 0 && count > int => count - int,
        _ => return None,
    };
    // Negative zero keeps its sign in rust_decimal: left to it.
    if negative && mantissa == 0 {
        return None;
    }
    let m = i128::from(mantissa);
    Some(Decimal::from_i128_with_scale(
        if negative { -m } else { m },
        u32::try_from(scale).ok()?,
    ))
}

/// A decimal read from the wire: simple text through [`parse_simple`], anything else
/// exactly as rust_decimal's own `Deserialize` reads it.
struct Read(Decimal);

impl<'de> serde::Deserialize<'de> for Read {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // As rust_decimal's (feature serde-str) asks for it.
        d.deserialize_str(ReadVisitor)
    }
}

struct ReadVisitor;

impl<'de> serde::de::Visitor<'de> for ReadVisitor {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Decimal type representing a fixed-point number")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Read, E> {
        match parse_simple(v.as_bytes()) {
            Some(d) => Ok(Read(d)),
            None => as_rust_decimal(v),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Read, E> {
        as_rust_decimal(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Read, E> {
        as_rust_decimal(v)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Read, E> {
        as_rust_decimal(v)
    }
}

/// `v` read by rust_decimal's own `Deserialize`: what it accepts, and its errors.
fn as_rust_decimal<'de, T, E>(v: T) -> Result<Read, E>
where
    T: serde::de::IntoDeserializer<'de, E>,
    E: serde::de::Error,
{
    <Decimal as serde::Deserialize>::deserialize(v.into_deserializer()).map(Read)
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
            #[serde(serialize_with = "opt::serialize")]
            a: Option<Decimal>,
            #[serde(serialize_with = "opt::serialize")]
            b: Option<Decimal>,
            #[serde(serialize_with = "plain::serialize")]
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

    /// The shortcut gives exactly rust_decimal's value and scale for what it takes, and
    /// leaves to rust_decimal what it does not: texts built from digits, points and signs
    /// in every arrangement up to 22 characters, plus the edges by name.
    #[test]
    fn simple_text_reads_as_rust_decimal_reads_it() {
        let named = [
            "0",
            "-0",
            "0.0",
            "-0.00",
            "1",
            "-1",
            "64000.00",
            "007.50",
            "5.",
            ".5",
            "-.5",
            "+1",
            "1_000",
            "1e5",
            "",
            "-",
            ".",
            "1.2.3",
            "--1",
            "9999999999999999999",
            "-9999999999999999999",
            "10000000000000000000",
            "0.0000000000000000001",
            "1844674407370955161.5",
            " 1",
            "1 ",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789012345678901234567890123456789.-+";
        let random = (0..200_000).map(|_| {
            let len = (next() % 23) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect::<String>()
        });
        let mut taken = 0;
        for t in named.iter().map(|s| s.to_string()).chain(random) {
            let Some(ours) = parse_simple(t.as_bytes()) else {
                continue;
            };
            taken += 1;
            let theirs = Decimal::from_str(&t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
            assert_eq!(ours, theirs, "{t:?}");
            assert_eq!(ours.scale(), theirs.scale(), "{t:?}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{t:?}");
        }
        assert!(taken > 10_000, "only {taken} texts took the shortcut");
        for t in [
            "-0",
            "-0.00",
            "5.",
            ".5",
            "+1",
            "1_000",
            "1e5",
            "10000000000000000000",
        ] {
            assert_eq!(parse_simple(t.as_bytes()), None, "{t:?}");
        }
    }

    /// Reading goes through the shortcut or rust_decimal's own `Deserialize`, so a field
    /// reads what it read before, from MessagePack and JSON alike, errors included.
    #[test]
    fn fields_read_what_rust_decimal_reads() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Ours {
            #[serde(default, with = "opt")]
            a: Option<Decimal>,
            #[serde(with = "plain")]
            b: Decimal,
        }
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Theirs {
            #[serde(default)]
            a: Option<Decimal>,
            b: Decimal,
        }
        let json = [
            r#"{"a":null,"b":"1.50"}"#,
            r#"{"b":"-2"}"#,
            r#"{"a":"64000.00","b":"1e-3"}"#,
            r#"{"a":"-0.0","b":"79228162514264337593543950335"}"#,
            r#"{"a":5,"b":-7}"#,
            r#"{"a":1.25,"b":"0"}"#,
            r#"{"a":"x","b":"1"}"#,
            r#"{"a":"1","b":"1.2.3"}"#,
            r#"{"a":"1"}"#,
            r#"{"a":[1],"b":"1"}"#,
        ];
        for j in json {
            let ours = serde_json::from_str::<Ours>(j).map(|o| (o.a, o.b));
            let theirs = serde_json::from_str::<Theirs>(j).map(|t| (t.a, t.b));
            match (&ours, &theirs) {
                (Ok(o), Ok(t)) => {
                    assert_eq!(o, t, "{j}");
                    assert_eq!(o.1.scale(), t.1.scale(), "{j}");
                }
                (Err(o), Err(t)) => assert_eq!(o.to_string(), t.to_string(), "{j}"),
                _ => panic!("{j}: {ours:?} vs {theirs:?}"),
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(j) {
                let mp = rmp_serde::to_vec_named(&v).unwrap();
                let ours = rmp_serde::from_slice::<Ours>(&mp).map(|o| (o.a, o.b)).ok();
                let theirs = rmp_serde::from_slice::<Theirs>(&mp)
                    .map(|t| (t.a, t.b))
                    .ok();
                assert_eq!(ours, theirs, "{j} as MessagePack");
            }
        }
    }
}
