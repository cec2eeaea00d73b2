//! Properties that must hold for any input, checked on generated cases (proptest): topic
//! escaping splits back into its components and never lets a separator or a control byte
//! through; the FIX encoder's frames decode to exactly the fields given.

use fixcurve::fix::codec::{data_tag_for_length, encode, Decoder, DecoderLimits};
use fixcurve::fix::Field;
use fixcurve::normalize::topic::{escape, exec_topic, md_topic, split, unescape};
use proptest::prelude::*;

proptest! {
    #[test]
    fn topic_components_split_back(venue in "\\PC{0,12}", symbol in "\\PC{0,24}") {
        let t = md_topic(&venue, &symbol);
        prop_assert_eq!(split(&t), Some(vec!["md".to_owned(), venue.clone(), symbol.clone()]));
        // two dots per topic, exactly: the components carry none
        prop_assert_eq!(t.matches('.').count(), 2);
        prop_assert!(!t.bytes().any(|b| b < 0x21), "{:?}", t);
        let e = exec_topic(&venue, &symbol);
        prop_assert_eq!(split(&e), Some(vec!["exec".to_owned(), venue, symbol]));
    }

    #[test]
    fn escape_round_trips_arbitrary_text(s in any::<String>()) {
        prop_assert_eq!(unescape(&escape(&s)), Some(s));
    }

    #[test]
    fn an_exact_acl_entry_never_grants_a_longer_account(a in "[A-Za-z0-9 ./%]{1,8}", b in "[A-Za-z0-9 ./%]{1,8}") {
        let acl = fixcurve::auth::TopicAcl(Some(vec![exec_topic("V", &a)]));
        let other = exec_topic("V", &b);
        prop_assert_eq!(acl.allows(other.as_bytes()), a == b);
    }

    #[test]
    fn encoded_frames_decode_to_the_same_fields(
        fields in proptest::collection::vec((100u32..6000, "[ -~]{1,24}"), 0..24)
    ) {
        // Header/trailer and length-prefixed data tags have their own rules; leave them out.
        let data_tags: Vec<u32> = (1..10_000).filter_map(data_tag_for_length).collect();
        let fields: Vec<(u32, String)> = fields
            .into_iter()
            .filter(|(t, _)| data_tag_for_length(*t).is_none() && !data_tags.contains(t))
            .collect();
        let mut header = vec![
            Field::new(49, b"A"),
            Field::new(56, b"B"),
            Field::new(34, b"7"),
            Field::new(52, b"20260101-00:00:00.000"),
        ];
        header.extend(fields.iter().map(|(t, v)| Field::new(*t, v.as_bytes())));
        let mut raw = Vec::new();
        encode("FIX.4.4", "D", &header, &mut raw);
        let mut d = Decoder::new(DecoderLimits::default());
        d.feed(&raw);
        let m = d.decode_next().expect("a whole frame").expect("a valid frame");
        let got: Vec<(u32, Vec<u8>)> = m
            .fields()
            .filter(|f| !matches!(f.tag, 8 | 9 | 10 | 35))
            .map(|f| (f.tag, f.value.to_vec()))
            .collect();
        let want: Vec<(u32, Vec<u8>)> =
            header.iter().map(|f| (f.tag, f.value.to_vec())).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(m.as_bytes().len(), raw.len());
    }
}

proptest! {
    /// Prices survive FIX text -> normalizer -> envelope -> subscriber exactly, scale included
    /// (`1.50` stays `1.50`): no float anywhere on the way.
    #[test]
    fn decimals_cross_the_wire_exactly(
        bid in "-?(0|[1-9][0-9]{0,11})(\\.[0-9]{1,8})?",
        size in "(0|[1-9][0-9]{0,9})(\\.[0-9]{1,6})?",
        symbol in "[A-Z./ ]{1,10}",
    ) {
        // A negative zero is the same number: it reads back as zero (documented).
        prop_assume!(!(bid.starts_with('-') && bid[1..].bytes().all(|b| b == b'0' || b == b'.')));
        use fixcurve::envelope::{Envelope, VERSION};
        use fixcurve::normalize::{Event, Normalizer};
        let raw = format!("8=FIX.4.4|9=1|35=S|49=V|56=B|34=2|52=20260101-00:00:00|55={symbol}|132={bid}|134={size}|10=000|");
        let owned: Vec<(u32, Vec<u8>)> = raw
            .split('|')
            .filter(|s| !s.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.parse().unwrap_or(0), v.as_bytes().to_vec()))
            .collect();
        let fields: Vec<Field<'_>> = owned.iter().map(|(t, v)| Field::new(*t, v)).collect();
        let out = Normalizer::new("V").normalize(&fields).expect("a valid quote");
        let env = Envelope {
            version: VERSION,
            epoch: 1,
            seq: 1,
            received_ns: 2,
            venue: "V".into(),
            session: "B->V".into(),
            fix_seq: Some(2),
            event: out[0].event.clone(),
        };
        let back = Envelope::decode(&env.encode().expect("encodes")).expect("decodes");
        prop_assert_eq!(&back, &env);
        let Event::Quote(q) = back.event else { panic!("not a quote") };
        prop_assert_eq!(q.bid_px.map(|d| d.to_string()), Some(bid));
        prop_assert_eq!(q.bid_size.map(|d| d.to_string()), Some(size));
        prop_assert_eq!(q.symbol, symbol);
    }
}
