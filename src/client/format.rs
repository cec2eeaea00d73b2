//! One line per event, for `fixcurve sub`, `fixcurve demo` and logs.

use crate::normalize::Event;

use super::decode::Received;

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

/// A compact human-readable line: topic, sequence, kind and the event's key figures.
pub fn text_line(r: &Received) -> String {
    let e = &r.envelope;
    let head = format!("{} #{} {}", r.topic, e.seq, e.kind());
    let body = match &e.event {
        Event::Execution(x) => format!(
            "{} {} {} {} last {}@{} cum {} leaves {} avg {} order {} exec {} ({})",
            x.exec_type,
            x.ord_status,
            x.side,
            x.symbol,
            opt(&x.last_qty),
            opt(&x.last_px),
            opt(&x.cum_qty),
            opt(&x.leaves_qty),
            opt(&x.avg_px),
            x.order_id,
            x.exec_id,
            opt(&x.account)
        ),
        Event::BookSnapshot(b) => {
            let levels: Vec<String> = b
                .entries
                .iter()
                .map(|l| {
                    format!(
                        "{} {}x{}",
                        l.side.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                        opt(&l.size),
                        opt(&l.price)
                    )
                })
                .collect();
            format!("{} [{}]", b.symbol, levels.join(", "))
        }
        Event::BookUpdate(u) => {
            let ch: Vec<String> = u
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}x{}",
                        c.action,
                        c.entry.side.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                        opt(&c.entry.size),
                        opt(&c.entry.price)
                    )
                })
                .collect();
            format!("{} [{}]", u.symbol, ch.join(", "))
        }
        Event::Trade(t) => format!(
            "{} {}@{} id {}",
            t.symbol,
            opt(&t.size),
            t.price,
            opt(&t.trade_id)
        ),
        Event::Quote(q) => format!(
            "{} bid {}x{} offer {}x{}",
            q.symbol,
            opt(&q.bid_size),
            opt(&q.bid_px),
            opt(&q.offer_size),
            opt(&q.offer_px)
        ),
        Event::SecurityStatus(s) => format!(
            "{} status {} halt {} last {}",
            s.symbol,
            opt(&s.trading_status),
            opt(&s.halt_reason),
            opt(&s.last_px)
        ),
        Event::TradingSessionStatus(h) => {
            format!(
                "{} status {} {}",
                h.trading_session_id,
                h.status,
                opt(&h.text)
            )
        }
        Event::MarketDataRequestReject(y) => {
            format!("{} reason {} {}", y.md_req_id, opt(&y.reason), opt(&y.text))
        }
        Event::Session(s) => {
            let st = serde_json::to_value(&s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{} {} {}", s.session, st, opt(&s.text))
        }
    };
    format!("{head} {body}")
}

/// The envelope as one JSON object with the topic added (decimals stay strings).
pub fn json_line(r: &Received) -> String {
    let mut v = serde_json::to_value(&r.envelope).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("topic".into(), serde_json::Value::String(r.topic.clone()));
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Envelope, VERSION};
    use crate::normalize::Quote;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    #[test]
    fn lines_keep_exact_decimals() {
        let r = Received {
            topic: "md.V.EUR/USD".into(),
            envelope: Envelope {
                version: VERSION,
                epoch: 1,
                seq: 3,
                received_ns: 2,
                venue: "V".into(),
                session: "A->B".into(),
                fix_seq: Some(9),
                event: Event::Quote(Quote {
                    symbol: "EUR/USD".into(),
                    quote_id: None,
                    bid_px: Some(Decimal::from_str("1.08760").unwrap()),
                    offer_px: Some(Decimal::from_str("1.08770").unwrap()),
                    bid_size: Some(Decimal::from(1_000_000)),
                    offer_size: None,
                    transact_time: None,
                    valid_until: None,
                }),
            },
        };
        assert_eq!(
            text_line(&r),
            "md.V.EUR/USD #3 quote EUR/USD bid 1000000x1.08760 offer -x1.08770"
        );
        let j: serde_json::Value = serde_json::from_str(&json_line(&r)).unwrap();
        assert_eq!(j["topic"], "md.V.EUR/USD");
        assert_eq!(j["body"]["bid_px"], "1.08760");
        assert_eq!(j["kind"], "quote");
        assert_eq!(j["seq"], 3);
    }
}
