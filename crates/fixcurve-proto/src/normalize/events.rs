//! The typed events downstream applications receive. Field names here are the wire schema
//! (README "Wire schema"): renaming one is a schema version bump.
//!
//! Prices and quantities are `rust_decimal::Decimal`, serialized as exact strings, so
//! `"1.23450"` arrives as `"1.23450"` (scale kept) and never passes through a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Defines a FIX code enum: known codes get a readable snake_case name on the wire, any other
/// code is kept verbatim (`Other("Z")` serializes as `"Z"`), so nothing a venue sends is lost.
macro_rules! fix_code {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            $(
                #[doc = concat!("FIX code `", $code, "` (`", $wire, "` on the wire).")]
                $variant,
            )+
            /// A code this version does not name, kept verbatim.
            Other(String),
        }

        impl $name {
            /// From the FIX tag value.
            pub fn from_fix(code: &str) -> Self {
                match code {
                    $($code => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }

            /// The wire name (snake_case), or the verbatim code for `Other`.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Other(s) => s,
                }
            }

            /// On the wire an unknown code is verbatim, except one that would read as a
            /// name (or starts with `?`): that gets a `?` prefix, so decoding is exact.
            fn to_wire(&self) -> std::borrow::Cow<'_, str> {
                match self {
                    $name::Other(s) if s.starts_with('?') || !matches!($name::from_wire(s), $name::Other(_)) => {
                        std::borrow::Cow::Owned(format!("?{s}"))
                    }
                    other => std::borrow::Cow::Borrowed(other.as_str()),
                }
            }

            fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)+
                    other => match other.strip_prefix('?') {
                        Some(code) => $name::Other(code.to_owned()),
                        None => $name::Other(other.to_owned()),
                    },
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_wire())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::from_wire(&s))
            }
        }
    };
}

fix_code!(
    /// Side (54).
    Side {
        Buy = "1" => "buy",
        Sell = "2" => "sell",
        BuyMinus = "3" => "buy_minus",
        SellPlus = "4" => "sell_plus",
        SellShort = "5" => "sell_short",
        SellShortExempt = "6" => "sell_short_exempt",
        Cross = "8" => "cross",
    }
);

fix_code!(
    /// ExecType (150).
    ExecType {
        New = "0" => "new",
        PartialFill = "1" => "partial_fill",
        Fill = "2" => "fill",
        DoneForDay = "3" => "done_for_day",
        Canceled = "4" => "canceled",
        Replaced = "5" => "replaced",
        PendingCancel = "6" => "pending_cancel",
        Stopped = "7" => "stopped",
        Rejected = "8" => "rejected",
        Suspended = "9" => "suspended",
        PendingNew = "A" => "pending_new",
        Calculated = "B" => "calculated",
        Expired = "C" => "expired",
        Restated = "D" => "restated",
        PendingReplace = "E" => "pending_replace",
        Trade = "F" => "trade",
        TradeCorrect = "G" => "trade_correct",
        TradeCancel = "H" => "trade_cancel",
        OrderStatus = "I" => "order_status",
    }
);

fix_code!(
    /// OrdStatus (39).
    OrdStatus {
        New = "0" => "new",
        PartiallyFilled = "1" => "partially_filled",
        Filled = "2" => "filled",
        DoneForDay = "3" => "done_for_day",
        Canceled = "4" => "canceled",
        Replaced = "5" => "replaced",
        PendingCancel = "6" => "pending_cancel",
        Stopped = "7" => "stopped",
        Rejected = "8" => "rejected",
        Suspended = "9" => "suspended",
        PendingNew = "A" => "pending_new",
        Calculated = "B" => "calculated",
        Expired = "C" => "expired",
        AcceptedForBidding = "D" => "accepted_for_bidding",
        PendingReplace = "E" => "pending_replace",
    }
);

fix_code!(
    /// MDEntryType (269) for the entries a book or trade carries.
    EntryType {
        Bid = "0" => "bid",
        Offer = "1" => "offer",
        Trade = "2" => "trade",
        IndexValue = "3" => "index_value",
        OpeningPrice = "4" => "opening_price",
        ClosingPrice = "5" => "closing_price",
        SettlementPrice = "6" => "settlement_price",
        TradingSessionHigh = "7" => "session_high",
        TradingSessionLow = "8" => "session_low",
        TradingSessionVwap = "9" => "session_vwap",
        Imbalance = "A" => "imbalance",
        TradeVolume = "B" => "trade_volume",
        OpenInterest = "C" => "open_interest",
    }
);

fix_code!(
    /// MDUpdateAction (279).
    UpdateAction {
        New = "0" => "new",
        Change = "1" => "change",
        Delete = "2" => "delete",
    }
);

/// One price level (or order) of a book, from a W or X entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    /// `bid`, `offer`, or another MDEntryType (index value, settlement price...). Absent only
    /// on an incremental delete that names the entry by `entry_id` alone, as FIX 4.4 allows.
    #[serde(default)]
    pub side: Option<EntryType>,
    /// MDEntryPx (270); absent on some deletes.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub price: Option<Decimal>,
    /// MDEntrySize (271).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub size: Option<Decimal>,
    /// MDEntryID (278): present on order-by-order books.
    #[serde(default)]
    pub entry_id: Option<String>,
    /// MDEntryPositionNo (290): 1 is the top of the book.
    #[serde(default)]
    pub position: Option<u32>,
    /// NumberOfOrders (346).
    #[serde(default)]
    pub orders: Option<u32>,
}

/// A full book (35=W) for one symbol: replaces whatever the subscriber held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    /// Symbol (55).
    pub symbol: String,
    /// MDReqID (262) this answers, if any.
    #[serde(default)]
    pub md_req_id: Option<String>,
    /// Every level of the book, in wire order.
    pub entries: Vec<BookEntry>,
}

/// One change of a book level, from an X entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookChange {
    /// `new`, `change` or `delete`.
    pub action: UpdateAction,
    /// The level after the change (for `delete`, the level removed).
    #[serde(flatten)]
    pub entry: BookEntry,
}

/// The book changes of one 35=X message for one symbol, in wire order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookUpdate {
    /// Symbol (55).
    pub symbol: String,
    /// MDReqID (262) this answers, if any.
    #[serde(default)]
    pub md_req_id: Option<String>,
    /// The changes, to apply in order.
    pub changes: Vec<BookChange>,
}

/// A trade print: an X (or W) entry with MDEntryType 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Symbol (55).
    pub symbol: String,
    /// MDEntryPx (270).
    #[serde(with = "crate::normalize::decimal_text::plain")]
    pub price: Decimal,
    /// MDEntrySize (271), if sent.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub size: Option<Decimal>,
    /// MDEntryID (278) or the trade's own id if the venue sends one.
    #[serde(default)]
    pub trade_id: Option<String>,
    /// MDEntryDate/MDEntryTime (272/273) verbatim, joined with `-` when both are present.
    #[serde(default)]
    pub time: Option<String>,
    /// `new`, `change` or `delete` when the trade came in an X (delete = trade bust).
    #[serde(default)]
    pub action: Option<UpdateAction>,
}

/// An execution report (35=8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// OrderID (37): the venue's order id.
    pub order_id: String,
    /// ClOrdID (11): the client's order id.
    #[serde(default)]
    pub cl_ord_id: Option<String>,
    /// OrigClOrdID (41), on replaces and cancels.
    #[serde(default)]
    pub orig_cl_ord_id: Option<String>,
    /// ExecID (17): unique per execution report; what duplicates are recognized by.
    pub exec_id: String,
    /// ExecType (150): what this report is about.
    pub exec_type: ExecType,
    /// OrdStatus (39): the order's state after it.
    pub ord_status: OrdStatus,
    /// Side (54).
    pub side: Side,
    /// Symbol (55).
    pub symbol: String,
    /// LastPx (31): price of this fill.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub last_px: Option<Decimal>,
    /// LastQty (32): quantity of this fill.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub last_qty: Option<Decimal>,
    /// CumQty (14): filled so far.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub cum_qty: Option<Decimal>,
    /// LeavesQty (151): still open.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub leaves_qty: Option<Decimal>,
    /// AvgPx (6): average fill price so far.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub avg_px: Option<Decimal>,
    /// Price (44): the order's limit price.
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub price: Option<Decimal>,
    /// OrderQty (38).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub order_qty: Option<Decimal>,
    /// Account (1): also the last topic component, which ACLs key on.
    #[serde(default)]
    pub account: Option<String>,
    /// Currency (15).
    #[serde(default)]
    pub currency: Option<String>,
    /// TransactTime (60) verbatim (UTCTimestamp).
    #[serde(default)]
    pub transact_time: Option<String>,
    /// Text (58).
    #[serde(default)]
    pub text: Option<String>,
}

/// A quote (35=S).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Symbol (55).
    pub symbol: String,
    /// QuoteID (117).
    #[serde(default)]
    pub quote_id: Option<String>,
    /// BidPx (132).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub bid_px: Option<Decimal>,
    /// OfferPx (133).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub offer_px: Option<Decimal>,
    /// BidSize (134).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub bid_size: Option<Decimal>,
    /// OfferSize (135).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub offer_size: Option<Decimal>,
    /// TransactTime (60) verbatim.
    #[serde(default)]
    pub transact_time: Option<String>,
    /// ValidUntilTime (62) verbatim.
    #[serde(default)]
    pub valid_until: Option<String>,
}

/// SecurityStatus (35=f): trading state of one instrument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityStatus {
    /// Symbol (55).
    pub symbol: String,
    /// SecurityTradingStatus (326) code verbatim (e.g. `2` = halt, `17` = ready to trade).
    #[serde(default)]
    pub trading_status: Option<String>,
    /// HaltReason (327) code verbatim.
    #[serde(default)]
    pub halt_reason: Option<String>,
    /// HighPx (332).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub high_px: Option<Decimal>,
    /// LowPx (333).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub low_px: Option<Decimal>,
    /// LastPx (31).
    #[serde(default, with = "crate::normalize::decimal_text::opt")]
    pub last_px: Option<Decimal>,
    /// Text (58).
    #[serde(default)]
    pub text: Option<String>,
}

/// TradingSessionStatus (35=h): state of a whole trading session at the venue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradingSessionStatus {
    /// TradingSessionID (336).
    pub trading_session_id: String,
    /// TradSesStatus (340) code verbatim (`1` halted, `2` open, `3` closed...).
    pub status: String,
    /// Text (58).
    #[serde(default)]
    pub text: Option<String>,
}

/// MarketDataRequestReject (35=Y).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketDataRequestReject {
    /// MDReqID (262) of the refused request.
    pub md_req_id: String,
    /// MDReqRejReason (281) code verbatim.
    #[serde(default)]
    pub reason: Option<String>,
    /// Text (58).
    #[serde(default)]
    pub text: Option<String>,
}

/// What happened to an upstream FIX session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Logged on.
    Logon,
    /// Logged out (either side).
    Logout,
    /// The peer's sequence numbers jumped; a ResendRequest went out.
    Gap,
    /// The transport reconnected (initiator) after a loss.
    Reconnect,
    /// The TCP/TLS connection ended without a Logout.
    Disconnect,
}

/// A session status event on `status.<VENUE>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// What happened.
    pub state: SessionState,
    /// `SENDER->TARGET` of the FIX session, from our side.
    pub session: String,
    /// For a gap: the first missing MsgSeqNum.
    #[serde(default)]
    pub gap_from: Option<u64>,
    /// For a gap: the MsgSeqNum that arrived instead.
    #[serde(default)]
    pub gap_to: Option<u64>,
    /// Why, when known (Logout text, disconnect reason).
    #[serde(default)]
    pub text: Option<String>,
}

/// Every event kind fixcurve publishes. The `kind` names are the envelope's `kind` field.
///
/// The execution is boxed: unboxed it made every `Event` 432 bytes (a Quote is 176), and each
/// event is moved several times on its way in and out of an envelope — decoding a Quote
/// envelope spent an eighth of its instructions in those copies. The box costs one
/// allocation per execution, the rarer kind; the wire format is the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Event {
    /// ExecutionReport (35=8), on `exec.`.
    Execution(Box<Execution>),
    /// Full book (35=W), on `md.`.
    BookSnapshot(BookSnapshot),
    /// Incremental book changes (35=X), on `md.`.
    BookUpdate(BookUpdate),
    /// A trade print from W or X, on `md.`.
    Trade(Trade),
    /// Quote (35=S), on `md.`.
    Quote(Quote),
    /// SecurityStatus (35=f), on `md.`.
    SecurityStatus(SecurityStatus),
    /// TradingSessionStatus (35=h), on `md.`.
    TradingSessionStatus(TradingSessionStatus),
    /// MarketDataRequestReject (35=Y), on `status.`.
    MarketDataRequestReject(MarketDataRequestReject),
    /// The upstream FIX session's state, on `status.`.
    Session(SessionStatus),
}

impl Event {
    /// The envelope `kind` of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Execution(_) => "execution",
            Event::BookSnapshot(_) => "book_snapshot",
            Event::BookUpdate(_) => "book_update",
            Event::Trade(_) => "trade",
            Event::Quote(_) => "quote",
            Event::SecurityStatus(_) => "security_status",
            Event::TradingSessionStatus(_) => "trading_session_status",
            Event::MarketDataRequestReject(_) => "market_data_request_reject",
            Event::Session(_) => "session",
        }
    }
}
