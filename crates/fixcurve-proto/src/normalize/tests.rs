use std::str::FromStr;

use super::*;

/// Fields of a `|`-separated FIX message (tests only).
fn owned(msg: &str) -> Vec<(u32, Vec<u8>)> {
    msg.split('|')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.parse().unwrap(), v.as_bytes().to_vec())
        })
        .collect()
}

fn norm(msg: &str) -> Result<Vec<Normalized>, NormalizeError> {
    let o = owned(msg);
    let fields: Vec<Field<'_>> = o.iter().map(|(t, v)| Field::new(*t, v)).collect();
    Normalizer::new("VENUE1").normalize(&fields)
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const HDR: &str = "8=FIX.4.4|9=100|35=";
const SENDER: &str = "|49=CLIENT1|56=BRIDGE|34=7|52=20240102-10:00:00.000|";

#[test]
fn execution_report_every_field_exact() {
    let msg = format!(
        "{HDR}8{SENDER}37=O-1|11=C-1|41=C-0|17=E-1|150=F|39=1|54=2|55=EUR/USD|31=1.08765|32=1000000.00|14=1000000.00|151=4000000|6=1.087650|44=1.0877|38=5000000|1=ACC-9|15=EUR|60=20240102-10:00:00.123|58=part fill|10=000|"
    );
    let out = norm(&msg).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "exec.VENUE1.ACC-9");
    let Event::Execution(e) = &out[0].event else {
        panic!("{:?}", out[0].event)
    };
    assert_eq!(e.order_id, "O-1");
    assert_eq!(e.cl_ord_id.as_deref(), Some("C-1"));
    assert_eq!(e.orig_cl_ord_id.as_deref(), Some("C-0"));
    assert_eq!(e.exec_id, "E-1");
    assert_eq!(e.exec_type, ExecType::Trade);
    assert_eq!(e.ord_status, OrdStatus::PartiallyFilled);
    assert_eq!(e.side, Side::Sell);
    assert_eq!(e.symbol, "EUR/USD");
    // Scale is preserved: the string form is exactly what the venue sent.
    assert_eq!(e.last_px.unwrap().to_string(), "1.08765");
    assert_eq!(e.last_qty.unwrap().to_string(), "1000000.00");
    assert_eq!(e.cum_qty.unwrap().to_string(), "1000000.00");
    assert_eq!(e.leaves_qty, Some(d("4000000")));
    assert_eq!(e.avg_px.unwrap().to_string(), "1.087650");
    assert_eq!(e.price.unwrap().to_string(), "1.0877");
    assert_eq!(e.order_qty, Some(d("5000000")));
    assert_eq!(e.account.as_deref(), Some("ACC-9"));
    assert_eq!(e.currency.as_deref(), Some("EUR"));
    assert_eq!(e.transact_time.as_deref(), Some("20240102-10:00:00.123"));
    assert_eq!(e.text.as_deref(), Some("part fill"));
}

#[test]
fn execution_without_account_goes_to_sender_compid_topic() {
    let msg = format!("{HDR}8{SENDER}37=O|17=E|150=0|39=0|54=1|55=AAPL|10=000|");
    let out = norm(&msg).unwrap();
    assert_eq!(out[0].topic, "exec.VENUE1.CLIENT1");
    let Event::Execution(e) = &out[0].event else {
        panic!()
    };
    assert_eq!(e.exec_type, ExecType::New);
    assert_eq!(e.side, Side::Buy);
    assert_eq!(e.last_px, None);
}

#[test]
fn execution_missing_exec_id_names_the_tag() {
    let msg = format!("{HDR}8{SENDER}37=O|150=0|39=0|54=1|55=AAPL|10=000|");
    assert_eq!(
        norm(&msg).unwrap_err(),
        NormalizeError::Missing {
            msg_type: "8".into(),
            tag: 17
        }
    );
}

#[test]
fn unknown_codes_are_kept_verbatim() {
    let msg = format!("{HDR}8{SENDER}37=O|17=E|150=Z|39=Q|54=9|55=X|10=000|");
    let out = norm(&msg).unwrap();
    let Event::Execution(e) = &out[0].event else {
        panic!()
    };
    assert_eq!(e.exec_type, ExecType::Other("Z".into()));
    assert_eq!(e.ord_status.as_str(), "Q");
    assert_eq!(e.side.as_str(), "9");
}

#[test]
fn decimals_refuse_floats_syntax_and_precision_loss() {
    assert_eq!(parse_decimal(b"1.5").unwrap().to_string(), "1.5");
    assert_eq!(
        parse_decimal(b"-0.000001").unwrap().to_string(),
        "-0.000001"
    );
    assert_eq!(parse_decimal(b"100").unwrap().to_string(), "100");
    for bad in [
        &b"1e5"[..],
        b"NaN",
        b"inf",
        b"+1",
        b"1.2.3",
        b"",
        b".",
        b"-",
        b" 1",
        b"1,5",
        b"123456789012345678901234567890.123456789",
    ] {
        assert_eq!(
            parse_decimal(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let msg = format!("{HDR}8{SENDER}37=O|17=E|150=0|39=0|54=1|55=X|31=1e3|10=000|");
    assert_eq!(
        norm(&msg).unwrap_err(),
        NormalizeError::BadDecimal {
            msg_type: "8".into(),
            tag: 31,
            value: "1e3".into()
        }
    );
}

#[test]
fn snapshot_w_with_group() {
    let msg = format!(
        "{HDR}W{SENDER}262=REQ1|55=EUR/USD|268=3|269=0|270=1.08760|271=1000000|290=1|269=1|270=1.08770|271=2000000|346=3|269=2|270=1.08765|271=500000|10=000|"
    );
    let out = norm(&msg).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "md.VENUE1.EUR/USD");
    let Event::BookSnapshot(b) = &out[0].event else {
        panic!()
    };
    assert_eq!(b.symbol, "EUR/USD");
    assert_eq!(b.md_req_id.as_deref(), Some("REQ1"));
    assert_eq!(b.entries.len(), 3);
    assert_eq!(b.entries[0].side, Some(EntryType::Bid));
    assert_eq!(b.entries[0].price.unwrap().to_string(), "1.08760");
    assert_eq!(b.entries[0].position, Some(1));
    assert_eq!(b.entries[1].side, Some(EntryType::Offer));
    assert_eq!(b.entries[1].size, Some(d("2000000")));
    assert_eq!(b.entries[1].orders, Some(3));
    assert_eq!(b.entries[2].side, Some(EntryType::Trade));
}

#[test]
fn snapshot_group_count_mismatch_is_refused() {
    let short = format!("{HDR}W{SENDER}55=X|268=3|269=0|270=1|269=1|270=2|10=000|");
    assert!(matches!(
        norm(&short).unwrap_err(),
        NormalizeError::Group { count_tag: 268, .. }
    ));
    let long = format!("{HDR}W{SENDER}55=X|268=1|269=0|270=1|269=1|270=2|10=000|");
    assert!(matches!(
        norm(&long).unwrap_err(),
        NormalizeError::Group { count_tag: 268, .. }
    ));
    let huge = format!("{HDR}W{SENDER}55=X|268=99999999|269=0|10=000|");
    assert!(matches!(
        norm(&huge).unwrap_err(),
        NormalizeError::Group { .. }
    ));
    let empty = format!("{HDR}W{SENDER}55=X|268=0|10=000|");
    let out = norm(&empty).unwrap();
    let Event::BookSnapshot(b) = &out[0].event else {
        panic!()
    };
    assert!(b.entries.is_empty());
}

#[test]
fn incremental_x_splits_symbols_and_trades_in_wire_order() {
    let msg = format!(
        "{HDR}X{SENDER}262=R|268=5|279=0|269=0|55=EUR/USD|270=1.1|271=5|278=b1|279=1|269=1|55=EUR/USD|270=1.2|271=6|279=0|269=2|55=EUR/USD|270=1.15|271=2|278=T1|273=10:00:00.001|279=2|55=EUR/USD|278=b1|279=0|269=0|55=GBP/USD|270=1.30|271=1|10=000|"
    );
    let out = norm(&msg).unwrap();
    let kinds: Vec<(&str, &str)> = out
        .iter()
        .map(|n| (n.topic.as_str(), n.event.kind()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("md.VENUE1.EUR/USD", "book_update"),
            ("md.VENUE1.EUR/USD", "trade"),
            ("md.VENUE1.EUR/USD", "book_update"),
            ("md.VENUE1.GBP/USD", "book_update"),
        ]
    );
    let Event::BookUpdate(u) = &out[0].event else {
        panic!()
    };
    assert_eq!(u.changes.len(), 2);
    assert_eq!(u.changes[0].action, UpdateAction::New);
    assert_eq!(u.changes[0].entry.side, Some(EntryType::Bid));
    assert_eq!(u.changes[0].entry.entry_id.as_deref(), Some("b1"));
    assert_eq!(u.changes[1].action, UpdateAction::Change);
    assert_eq!(u.changes[1].entry.price.unwrap().to_string(), "1.2");
    let Event::Trade(t) = &out[1].event else {
        panic!()
    };
    assert_eq!(t.price.to_string(), "1.15");
    assert_eq!(t.size, Some(d("2")));
    assert_eq!(t.trade_id.as_deref(), Some("T1"));
    assert_eq!(t.time.as_deref(), Some("10:00:00.001"));
    let Event::BookUpdate(del) = &out[2].event else {
        panic!()
    };
    assert_eq!(del.changes[0].action, UpdateAction::Delete);
    assert_eq!(del.changes[0].entry.side, None);
    assert_eq!(del.changes[0].entry.price, None);
    let Event::BookUpdate(g) = &out[3].event else {
        panic!()
    };
    assert_eq!(g.changes[0].entry.price.unwrap().to_string(), "1.30");
}

#[test]
fn incremental_entry_inherits_symbol_and_requires_one() {
    let msg = format!("{HDR}X{SENDER}268=2|279=0|269=0|55=AAA|270=1|279=0|269=1|270=2|10=000|");
    let out = norm(&msg).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "md.VENUE1.AAA");
    let none = format!("{HDR}X{SENDER}268=1|279=0|269=0|270=1|10=000|");
    assert_eq!(
        norm(&none).unwrap_err(),
        NormalizeError::Missing {
            msg_type: "X".into(),
            tag: 55
        }
    );
    let trade_no_px = format!("{HDR}X{SENDER}268=1|279=0|269=2|55=A|271=1|10=000|");
    assert_eq!(
        norm(&trade_no_px).unwrap_err(),
        NormalizeError::Missing {
            msg_type: "X".into(),
            tag: 270
        }
    );
}

#[test]
fn quote_s() {
    let msg = format!(
        "{HDR}S{SENDER}117=Q1|55=USD/JPY|132=151.230|133=151.250|134=1000000|135=2000000|60=20240102-10:00:00|62=20240102-10:00:05|10=000|"
    );
    let out = norm(&msg).unwrap();
    assert_eq!(out[0].topic, "md.VENUE1.USD/JPY");
    let Event::Quote(q) = &out[0].event else {
        panic!()
    };
    assert_eq!(q.quote_id.as_deref(), Some("Q1"));
    assert_eq!(q.bid_px.unwrap().to_string(), "151.230");
    assert_eq!(q.offer_px.unwrap().to_string(), "151.250");
    assert_eq!(q.bid_size, Some(d("1000000")));
    assert_eq!(q.offer_size, Some(d("2000000")));
    assert_eq!(q.valid_until.as_deref(), Some("20240102-10:00:05"));
}

#[test]
fn security_status_f() {
    let msg = format!(
        "{HDR}f{SENDER}55=AAPL|326=2|327=I|332=190.50|333=185.25|31=188.00|58=halt|10=000|"
    );
    let out = norm(&msg).unwrap();
    assert_eq!(out[0].topic, "md.VENUE1.AAPL");
    let Event::SecurityStatus(s) = &out[0].event else {
        panic!()
    };
    assert_eq!(s.trading_status.as_deref(), Some("2"));
    assert_eq!(s.halt_reason.as_deref(), Some("I"));
    assert_eq!(s.high_px.unwrap().to_string(), "190.50");
    assert_eq!(s.low_px.unwrap().to_string(), "185.25");
    assert_eq!(s.last_px.unwrap().to_string(), "188.00");
    assert_eq!(s.text.as_deref(), Some("halt"));
}

#[test]
fn trading_session_status_h() {
    let msg = format!("{HDR}h{SENDER}336=DAY|340=2|58=open|10=000|");
    let out = norm(&msg).unwrap();
    assert_eq!(out[0].topic, "status.VENUE1");
    assert_eq!(
        out[0].event,
        Event::TradingSessionStatus(TradingSessionStatus {
            trading_session_id: "DAY".into(),
            status: "2".into(),
            text: Some("open".into())
        })
    );
}

#[test]
fn md_request_reject_y() {
    let msg = format!("{HDR}Y{SENDER}262=REQ9|281=0|58=unknown symbol|10=000|");
    let out = norm(&msg).unwrap();
    assert_eq!(out[0].topic, "status.VENUE1");
    assert_eq!(
        out[0].event,
        Event::MarketDataRequestReject(MarketDataRequestReject {
            md_req_id: "REQ9".into(),
            reason: Some("0".into()),
            text: Some("unknown symbol".into())
        })
    );
}

#[test]
fn session_status_goes_to_status_topic() {
    let n = Normalizer::new("V").session_status(SessionStatus {
        state: SessionState::Gap,
        session: "BRIDGE->CLIENT1".into(),
        gap_from: Some(5),
        gap_to: Some(9),
        text: None,
    });
    assert_eq!(n.topic, "status.V");
    assert_eq!(n.event.kind(), "session");
}

#[test]
fn admin_and_unknown_messages_give_nothing() {
    for t in ["0", "A", "5", "2", "4", "D", "ZZ"] {
        let msg = format!("{HDR}{t}{SENDER}10=000|");
        assert_eq!(norm(&msg).unwrap(), vec![], "{t}");
    }
    assert_eq!(
        norm("8=FIX.4.4|9=5|10=000|").unwrap_err(),
        NormalizeError::NoMsgType
    );
}

#[test]
fn non_utf8_text_is_an_error_not_a_panic() {
    let mut o = owned(&format!(
        "{HDR}8{SENDER}37=O|17=E|150=0|39=0|54=1|55=X|10=000|"
    ));
    for (t, v) in o.iter_mut() {
        if *t == 55 {
            *v = vec![0xff, 0xfe];
        }
    }
    let fields: Vec<Field<'_>> = o.iter().map(|(t, v)| Field::new(*t, v)).collect();
    assert_eq!(
        Normalizer::new("V").normalize(&fields).unwrap_err(),
        NormalizeError::NotText {
            msg_type: "8".into(),
            tag: 55
        }
    );
}

#[test]
fn unknown_code_that_looks_like_a_name_round_trips() {
    // Found by fuzzing: a venue sending 269=trade_volume must not decode as 269=B.
    for code in ["trade_volume", "?x", "B", "Z"] {
        let e = EntryType::from_fix(code);
        let bytes = rmp_serde::to_vec(&e).unwrap();
        let back: EntryType = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, e, "{code}");
    }
    assert_eq!(EntryType::from_fix("B"), EntryType::TradeVolume);
    let wire: String =
        rmp_serde::from_slice(&rmp_serde::to_vec(&EntryType::from_fix("trade_volume")).unwrap())
            .unwrap();
    assert_eq!(wire, "?trade_volume");
    let wire: String =
        rmp_serde::from_slice(&rmp_serde::to_vec(&EntryType::from_fix("Z")).unwrap()).unwrap();
    assert_eq!(wire, "Z");
}

#[test]
fn what_cannot_be_validated_maps_to_the_fix_reject_reason() {
    let cases = [
        // group count wrong: 373=16 on 268
        (
            format!("{HDR}W{SENDER}55=X|268=5|269=0|270=1|269=1|270=2|10=000|"),
            16,
            268,
        ),
        // a tag twice in one entry: 373=13
        (
            format!("{HDR}W{SENDER}55=X|268=1|269=0|270=1|270=2|10=000|"),
            13,
            270,
        ),
        // an MDUpdateAction FIX does not define: 373=5
        (
            format!("{HDR}X{SENDER}268=1|279=9|269=0|55=X|270=1|10=000|"),
            5,
            279,
        ),
        (
            format!("{HDR}W{SENDER}55=X|268=1|269=ZZ|270=1|10=000|"),
            5,
            269,
        ),
        // a price that is not a number: 373=6
        (
            format!("{HDR}W{SENDER}55=X|268=1|269=0|270=1.2.3|10=000|"),
            6,
            270,
        ),
        (
            format!("{HDR}8{SENDER}37=O|17=E|150=0|39=0|54=1|55=X|44=abc|10=000|"),
            6,
            44,
        ),
        // a required tag missing: 373=1
        (format!("{HDR}W{SENDER}268=0|10=000|"), 1, 55),
    ];
    for (msg, reason, tag) in cases {
        let e = norm(&msg).unwrap_err();
        let r = e.rejection();
        assert_eq!((r.reason, r.tag), (reason, Some(tag)), "{msg}: {e}");
        assert!(r.text.len() <= 120);
    }
    // entries of a nested group may repeat tags the normalizer does not read
    let ok = format!("{HDR}W{SENDER}55=X|268=1|269=0|270=1|453=2|448=A|448=B|10=000|");
    assert!(norm(&ok).is_ok());
}
