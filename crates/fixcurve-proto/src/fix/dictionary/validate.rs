//! Checking one message against a dictionary, in QuickFIX's order: structure (header, body,
//! trailer in that order; no repeated tag outside groups), then each field (defined at all,
//! has a value, right format, in the enumeration, allowed in this message, group counts),
//! then the required fields. The first problem found is the one reported.

use std::collections::HashSet;

use super::{Dictionary, FieldType, Layout};
use crate::fix::field::Field;
use crate::fix::message::Message;
use crate::fix::session::reject_reason as rr;

/// What is wrong with a message: SessionRejectReason (373), the tag (371), and a detail for
/// the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// SessionRejectReason (373) to send.
    pub reason: u32,
    /// RefTagID (371), when one field is at fault.
    pub tag: Option<u32>,
    /// What exactly is wrong, for the log.
    pub detail: String,
}

fn violation(reason: u32, tag: u32, detail: impl Into<String>) -> Violation {
    Violation {
        reason,
        tag: Some(tag),
        detail: detail.into(),
    }
}

/// Where a field sits in a message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Header,
    Body,
    Trailer,
}

impl Dictionary {
    fn part_of(&self, tag: u32) -> Part {
        if matches!(tag, 8 | 9 | 35) || self.header.contains(tag) {
            Part::Header
        } else if tag == 10 || self.trailer.contains(tag) {
            Part::Trailer
        } else {
            Part::Body
        }
    }

    /// Validates `msg` (a whole decoded message). `Ok` if the dictionary has nothing to say.
    pub fn validate(&self, msg: &Message) -> Result<(), Violation> {
        let msg_type = String::from_utf8_lossy(msg.msg_type()).into_owned();
        let Some(body) = self.messages.get(&msg_type) else {
            return Err(Violation {
                reason: rr::INVALID_MSG_TYPE,
                tag: None,
                detail: format!("MsgType {msg_type} is not in {}", self.path().display()),
            });
        };
        let fields: Vec<Field<'_>> = msg.fields().collect();

        // Structure: header, body, trailer, in that order.
        let mut part = Part::Header;
        for f in &fields {
            let p = self.part_of(f.tag);
            if p < part {
                return Err(violation(
                    rr::TAG_OUT_OF_ORDER,
                    f.tag,
                    format!("tag {} after the {:?} started", f.tag, part_name(part)),
                ));
            }
            part = p;
        }

        // Each field, walking groups as they come.
        let header: Vec<Field<'_>> = fields
            .iter()
            .copied()
            .filter(|f| self.part_of(f.tag) == Part::Header)
            .collect();
        let rest: Vec<Field<'_>> = fields
            .iter()
            .copied()
            .filter(|f| self.part_of(f.tag) != Part::Header)
            .collect();
        self.check_section(&header, &self.header, true)?;
        let body_fields: Vec<Field<'_>> = rest
            .iter()
            .copied()
            .filter(|f| self.part_of(f.tag) == Part::Body)
            .collect();
        self.check_section(&body_fields, body, false)?;

        // Required fields of the body (the session checks the header's).
        let present: HashSet<u32> = body_fields.iter().map(|f| f.tag).collect();
        if let Some(t) = body.required().find(|t| !present.contains(t)) {
            return Err(violation(
                rr::REQUIRED_TAG_MISSING,
                t,
                format!("required tag {t} missing in MsgType {msg_type}"),
            ));
        }
        Ok(())
    }

    /// The fields of one section (or group entry) against its layout; groups recursively.
    fn check_section(
        &self,
        fields: &[Field<'_>],
        layout: &Layout,
        is_header: bool,
    ) -> Result<(), Violation> {
        let mut seen: HashSet<u32> = HashSet::new();
        let mut i = 0;
        while let Some(f) = fields.get(i) {
            i = i.saturating_add(1);
            self.check_field(f)?;
            if !is_header && !layout.contains(f.tag) && !matches!(f.tag, 8 | 9 | 35) {
                return Err(violation(
                    rr::TAG_NOT_DEFINED_FOR_MSG_TYPE,
                    f.tag,
                    format!("tag {} not defined for this message type", f.tag),
                ));
            }
            if !seen.insert(f.tag) {
                return Err(violation(
                    rr::TAG_APPEARS_MORE_THAN_ONCE,
                    f.tag,
                    format!("tag {} appears more than once", f.tag),
                ));
            }
            if let Some(group) = layout.groups.get(&f.tag) {
                let declared: usize = f
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| violation(rr::INCORRECT_DATA_FORMAT, f.tag, "bad count"))?;
                // An entry: starts with the delimiter, runs while fields belong to the group.
                let mut entries: Vec<Vec<Field<'_>>> = Vec::new();
                while let Some(g) = fields.get(i) {
                    if g.tag == group.delimiter {
                        entries.push(vec![*g]);
                    } else if group.layout.contains(g.tag) && !entries.is_empty() {
                        if let Some(e) = entries.last_mut() {
                            e.push(*g);
                        }
                    } else {
                        break;
                    }
                    i = i.saturating_add(1);
                }
                if entries.len() != declared {
                    return Err(violation(
                        rr::INCORRECT_NUM_IN_GROUP_COUNT,
                        f.tag,
                        format!("declares {declared} entries, has {}", entries.len()),
                    ));
                }
                for e in &entries {
                    self.check_section(e, &group.layout, false)?;
                    let present: HashSet<u32> = e.iter().map(|g| g.tag).collect();
                    if let Some(t) = group.layout.required().find(|t| !present.contains(t)) {
                        return Err(violation(
                            rr::REQUIRED_TAG_MISSING,
                            t,
                            format!("required tag {t} missing in a group {} entry", f.tag),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// One field on its own: defined, has a value, format, enumeration.
    fn check_field(&self, f: &Field<'_>) -> Result<(), Violation> {
        let Some(def) = self.fields.get(&f.tag) else {
            return Err(violation(
                rr::INVALID_TAG_NUMBER,
                f.tag,
                format!("tag {} is not in the dictionary", f.tag),
            ));
        };
        if f.value.is_empty() {
            return Err(violation(
                rr::TAG_WITHOUT_VALUE,
                f.tag,
                format!("tag {} has no value", f.tag),
            ));
        }
        if !format_ok(def.ftype, f.value) {
            return Err(violation(
                rr::INCORRECT_DATA_FORMAT,
                f.tag,
                format!("{} ({}) is not a valid {:?}", def.name, f.tag, def.ftype),
            ));
        }
        if let Some(values) = &def.values {
            let text = String::from_utf8_lossy(f.value);
            let ok = if def.ftype == FieldType::MultipleValue {
                text.split(' ').all(|v| values.contains(v))
            } else {
                values.contains(text.as_ref())
            };
            if !ok {
                return Err(violation(
                    rr::VALUE_INCORRECT,
                    f.tag,
                    format!("{} ({}) value not in the enumeration", def.name, f.tag),
                ));
            }
        }
        Ok(())
    }
}

fn part_name(p: Part) -> &'static str {
    match p {
        Part::Header => "header",
        Part::Body => "body",
        Part::Trailer => "trailer",
    }
}

fn all_digits(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(u8::is_ascii_digit)
}

/// FIX value syntax per type (QuickFIX's converters).
fn format_ok(t: FieldType, v: &[u8]) -> bool {
    match t {
        FieldType::Int => all_digits(v.strip_prefix(b"-").unwrap_or(v)),
        FieldType::Float => crate::normalize::parse_decimal(v).is_some(),
        FieldType::Char => v.len() == 1,
        FieldType::Boolean => v == b"Y" || v == b"N",
        FieldType::UtcTimestamp => crate::fix::session::parse_utc_timestamp(v).is_some(),
        FieldType::UtcTimeOnly => time_only(v),
        FieldType::Date => v.len() == 8 && all_digits(v),
        FieldType::MonthYear => {
            (v.len() == 6 || v.len() == 8) && all_digits(v.get(..6).unwrap_or(v))
        }
        FieldType::MultipleValue | FieldType::Text => true,
    }
}

/// `HH:MM:SS` with optional `.sss` (or more digits).
fn time_only(v: &[u8]) -> bool {
    let (hms, frac) = match v.iter().position(|b| *b == b'.') {
        Some(i) => (v.get(..i).unwrap_or_default(), v.get(i.saturating_add(1)..)),
        None => (v, None),
    };
    hms.len() == 8
        && hms.get(2) == Some(&b':')
        && hms.get(5) == Some(&b':')
        && [0usize, 1, 3, 4, 6, 7]
            .iter()
            .all(|i| hms.get(*i).is_some_and(u8::is_ascii_digit))
        && frac.is_none_or(all_digits)
}
