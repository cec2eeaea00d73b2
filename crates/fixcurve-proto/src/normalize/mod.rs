//! FIX application messages to typed, lossless events (sans-IO).
//!
//! Input is one decoded message as its fields in wire order (header, body, trailer), output
//! the events it carries with the topic each goes out on. No I/O, no clock: the bridge adds the
//! receive time and the per-topic sequence in the envelope. A message the normalizer does not
//! know (admin messages, unlisted types) yields no event rather than an error, so a venue's
//! extra traffic never disturbs the feed; a known message missing a required field is an error
//! naming the tag, counted and logged by the caller.

pub mod book;
mod decimal_text;
mod events;
mod md;
pub mod topic;

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::fix::Field;

pub use events::*;
pub use topic::{exec_topic, md_topic, status_topic};

/// Why a message could not be normalized. Values are truncated to keep logs bounded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum NormalizeError {
    #[error("MsgType {msg_type}: required tag {tag} missing")]
    Missing { msg_type: String, tag: u32 },
    #[error("MsgType {msg_type}: tag {tag} is not a decimal: {value:?}")]
    BadDecimal {
        msg_type: String,
        tag: u32,
        value: String,
    },
    #[error("MsgType {msg_type}: tag {tag} is not a valid number: {value:?}")]
    BadNumber {
        msg_type: String,
        tag: u32,
        value: String,
    },
    #[error("MsgType {msg_type}: tag {tag} is not UTF-8 text")]
    NotText { msg_type: String, tag: u32 },
    #[error("MsgType {msg_type}: repeating group {count_tag}: {reason}")]
    Group {
        msg_type: String,
        count_tag: u32,
        reason: String,
    },
    #[error("MsgType {msg_type}: tag {tag} appears more than once in a group entry")]
    RepeatedTag { msg_type: String, tag: u32 },
    #[error("MsgType {msg_type}: tag {tag} has a value FIX does not define: {value:?}")]
    BadEnum {
        msg_type: String,
        tag: u32,
        value: String,
    },
    #[error("message has no MsgType (35)")]
    NoMsgType,
}

/// The application messages the bridge consumes (and a venue's BusinessMessageReject, which
/// must never itself be rejected): the session answers any other with a
/// BusinessMessageReject.
pub const MSG_TYPES: &[&str] = &["8", "W", "X", "S", "f", "h", "Y", "j"];

impl NormalizeError {
    /// The FIX session Reject this error calls for: SessionRejectReason (373) and RefTagID.
    pub fn rejection(&self) -> crate::fix::session::Rejection {
        use crate::fix::session::reject_reason as rr;
        let (reason, tag) = match self {
            NormalizeError::Missing { tag, .. } => (rr::REQUIRED_TAG_MISSING, Some(*tag)),
            NormalizeError::BadDecimal { tag, .. }
            | NormalizeError::BadNumber { tag, .. }
            | NormalizeError::NotText { tag, .. } => (rr::INCORRECT_DATA_FORMAT, Some(*tag)),
            NormalizeError::Group { count_tag, .. } => {
                (rr::INCORRECT_NUM_IN_GROUP_COUNT, Some(*count_tag))
            }
            NormalizeError::RepeatedTag { tag, .. } => (rr::TAG_APPEARS_MORE_THAN_ONCE, Some(*tag)),
            NormalizeError::BadEnum { tag, .. } => (rr::VALUE_INCORRECT, Some(*tag)),
            NormalizeError::NoMsgType => (rr::REQUIRED_TAG_MISSING, Some(35)),
        };
        let mut text = self.to_string();
        text.truncate(120);
        crate::fix::session::Rejection { reason, tag, text }
    }
}

/// One normalized event and the topic it is published on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    /// Where it is published (`exec.VENUE.ACCOUNT`, `md.VENUE.SYMBOL`...).
    pub topic: String,
    /// The event.
    pub event: Event,
}

use crate::fix::tag;

/// Longest value quoted back in an error.
const ERR_VALUE_MAX: usize = 40;

/// Typed access to the fields of one message, with errors naming the message type.
pub(crate) struct View<'m, 'a> {
    pub fields: &'m [Field<'a>],
    pub msg_type: &'m str,
}

impl<'m, 'a> View<'m, 'a> {
    /// The first occurrence of `tag` outside any repeating group that starts before it. For the
    /// body tags used here (all before or without groups) the first occurrence is the one.
    pub(crate) fn raw(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.tag == tag).map(|f| f.value)
    }

    pub(crate) fn text(&self, tag: u32) -> Result<Option<String>, NormalizeError> {
        field_text(self.msg_type, tag, self.raw(tag))
    }

    pub(crate) fn req_text(&self, tag: u32) -> Result<String, NormalizeError> {
        self.text(tag)?.ok_or_else(|| self.missing(tag))
    }

    pub(crate) fn decimal(&self, tag: u32) -> Result<Option<Decimal>, NormalizeError> {
        field_decimal(self.msg_type, tag, self.raw(tag))
    }

    pub(crate) fn missing(&self, tag: u32) -> NormalizeError {
        NormalizeError::Missing {
            msg_type: self.msg_type.to_owned(),
            tag,
        }
    }
}

fn clip(value: &[u8]) -> String {
    let s = String::from_utf8_lossy(value);
    s.chars().take(ERR_VALUE_MAX).collect()
}

/// A text field; an empty value counts as absent (some venues send `58=`).
pub(crate) fn field_text(
    msg_type: &str,
    tag: u32,
    value: Option<&[u8]>,
) -> Result<Option<String>, NormalizeError> {
    match value {
        None | Some(b"") => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| NormalizeError::NotText {
                msg_type: msg_type.to_owned(),
                tag,
            }),
    }
}

/// A price or quantity, exactly as sent (scale kept: `1.50` stays `1.50`).
pub(crate) fn field_decimal(
    msg_type: &str,
    tag: u32,
    value: Option<&[u8]>,
) -> Result<Option<Decimal>, NormalizeError> {
    let Some(v) = value else { return Ok(None) };
    if v.is_empty() {
        return Ok(None);
    }
    parse_decimal(v)
        .map(Some)
        .ok_or_else(|| NormalizeError::BadDecimal {
            msg_type: msg_type.to_owned(),
            tag,
            value: clip(v),
        })
}

/// FIX `float` syntax only: optional `-`, digits, optional `.` and digits. Rejects exponents,
/// `+`, blanks, `NaN` and anything else `Decimal::from_str` might tolerate, and values that do
/// not fit 28 significant digits (no silent rounding).
pub fn parse_decimal(v: &[u8]) -> Option<Decimal> {
    // Prices and sizes as venues send them take the shortcut (same value and scale); what
    // it takes is a subset of the syntax checked below.
    if let Some(d) = decimal_text::parse_simple(v) {
        return Some(d);
    }
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    let mut dots: u32 = 0;
    let mut any_digit = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => any_digit = true,
            b'.' => dots = dots.saturating_add(1),
            _ => return None,
        }
    }
    if !any_digit || dots > 1 || v.len() > 40 {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    // from_str_exact refuses to round.
    Decimal::from_str_exact(s).ok()
}

pub(crate) fn field_u32(
    msg_type: &str,
    tag: u32,
    value: Option<&[u8]>,
) -> Result<Option<u32>, NormalizeError> {
    let Some(v) = value else { return Ok(None) };
    if v.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| u32::from_str(s).ok())
        .map(Some)
        .ok_or_else(|| NormalizeError::BadNumber {
            msg_type: msg_type.to_owned(),
            tag,
            value: clip(v),
        })
}

/// Normalizes messages of one upstream session.
#[derive(Clone, Debug)]
pub struct Normalizer {
    venue: String,
}

impl Normalizer {
    /// `venue` is the configured VENUE part of the topics.
    pub fn new(venue: impl Into<String>) -> Self {
        Normalizer {
            venue: venue.into(),
        }
    }

    /// The VENUE this normalizer names in topics.
    pub fn venue(&self) -> &str {
        &self.venue
    }

    /// The events one application message carries. Unknown and admin messages give none.
    pub fn normalize(&self, fields: &[Field<'_>]) -> Result<Vec<Normalized>, NormalizeError> {
        let msg_type = fields
            .iter()
            .find(|f| f.tag == tag::MSG_TYPE)
            .and_then(|f| f.as_str())
            .ok_or(NormalizeError::NoMsgType)?;
        let view = View { fields, msg_type };
        match msg_type {
            "8" => self.execution(&view).map(|n| vec![n]),
            "W" => md::snapshot(&self.venue, &view),
            "X" => md::incremental(&self.venue, &view),
            "S" => self.quote(&view).map(|n| vec![n]),
            "f" => self.security_status(&view).map(|n| vec![n]),
            "h" => self.trading_session_status(&view).map(|n| vec![n]),
            "Y" => self.md_reject(&view).map(|n| vec![n]),
            _ => Ok(Vec::new()),
        }
    }

    /// [`Normalizer::normalize`] over a decoded message.
    pub fn normalize_message(
        &self,
        msg: &crate::fix::message::Message,
    ) -> Result<Vec<Normalized>, NormalizeError> {
        let fields: Vec<Field<'_>> = msg.fields().collect();
        self.normalize(&fields)
    }

    /// A session status event (built by the bridge from session-layer events).
    pub fn session_status(&self, status: SessionStatus) -> Normalized {
        Normalized {
            topic: status_topic(&self.venue),
            event: Event::Session(status),
        }
    }

    fn execution(&self, v: &View<'_, '_>) -> Result<Normalized, NormalizeError> {
        let account = v.text(tag::ACCOUNT)?;
        let topic_owner = match &account {
            Some(a) => a.clone(),
            None => v.req_text(tag::SENDER_COMP_ID)?,
        };
        let exec = Execution {
            order_id: v.req_text(tag::ORDER_ID)?,
            cl_ord_id: v.text(tag::CL_ORD_ID)?,
            orig_cl_ord_id: v.text(tag::ORIG_CL_ORD_ID)?,
            exec_id: v.req_text(tag::EXEC_ID)?,
            exec_type: ExecType::from_fix(&v.req_text(tag::EXEC_TYPE)?),
            ord_status: OrdStatus::from_fix(&v.req_text(tag::ORD_STATUS)?),
            side: Side::from_fix(&v.req_text(tag::SIDE)?),
            symbol: v.req_text(tag::SYMBOL)?,
            last_px: v.decimal(tag::LAST_PX)?,
            last_qty: v.decimal(tag::LAST_QTY)?,
            cum_qty: v.decimal(tag::CUM_QTY)?,
            leaves_qty: v.decimal(tag::LEAVES_QTY)?,
            avg_px: v.decimal(tag::AVG_PX)?,
            price: v.decimal(tag::PRICE)?,
            order_qty: v.decimal(tag::ORDER_QTY)?,
            account,
            currency: v.text(tag::CURRENCY)?,
            transact_time: v.text(tag::TRANSACT_TIME)?,
            text: v.text(tag::TEXT)?,
        };
        Ok(Normalized {
            topic: exec_topic(&self.venue, &topic_owner),
            event: Event::Execution(Box::new(exec)),
        })
    }

    fn quote(&self, v: &View<'_, '_>) -> Result<Normalized, NormalizeError> {
        let symbol = v.req_text(tag::SYMBOL)?;
        let q = Quote {
            quote_id: v.text(tag::QUOTE_ID)?,
            bid_px: v.decimal(tag::BID_PX)?,
            offer_px: v.decimal(tag::OFFER_PX)?,
            bid_size: v.decimal(tag::BID_SIZE)?,
            offer_size: v.decimal(tag::OFFER_SIZE)?,
            transact_time: v.text(tag::TRANSACT_TIME)?,
            valid_until: v.text(tag::VALID_UNTIL_TIME)?,
            symbol: symbol.clone(),
        };
        Ok(Normalized {
            topic: md_topic(&self.venue, &symbol),
            event: Event::Quote(q),
        })
    }

    fn security_status(&self, v: &View<'_, '_>) -> Result<Normalized, NormalizeError> {
        let symbol = v.req_text(tag::SYMBOL)?;
        let s = SecurityStatus {
            trading_status: v.text(tag::SECURITY_TRADING_STATUS)?,
            halt_reason: v.text(tag::HALT_REASON)?,
            high_px: v.decimal(tag::HIGH_PX)?,
            low_px: v.decimal(tag::LOW_PX)?,
            last_px: v.decimal(tag::LAST_PX)?,
            text: v.text(tag::TEXT)?,
            symbol: symbol.clone(),
        };
        Ok(Normalized {
            topic: md_topic(&self.venue, &symbol),
            event: Event::SecurityStatus(s),
        })
    }

    fn trading_session_status(&self, v: &View<'_, '_>) -> Result<Normalized, NormalizeError> {
        let s = TradingSessionStatus {
            trading_session_id: v.req_text(tag::TRADING_SESSION_ID)?,
            status: v.req_text(tag::TRAD_SES_STATUS)?,
            text: v.text(tag::TEXT)?,
        };
        Ok(Normalized {
            topic: status_topic(&self.venue),
            event: Event::TradingSessionStatus(s),
        })
    }

    fn md_reject(&self, v: &View<'_, '_>) -> Result<Normalized, NormalizeError> {
        let r = MarketDataRequestReject {
            md_req_id: v.req_text(tag::MD_REQ_ID)?,
            reason: v.text(tag::MD_REQ_REJ_REASON)?,
            text: v.text(tag::TEXT)?,
        };
        Ok(Normalized {
            topic: status_topic(&self.venue),
            event: Event::MarketDataRequestReject(r),
        })
    }
}

#[cfg(test)]
mod tests;
