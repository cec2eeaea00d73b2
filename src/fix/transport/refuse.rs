//! The Logout an acceptor sends when it refuses a Logon before any session exists. Its Text
//! is deliberately plain ("Logon refused"): the reason goes to the audit log, never to an
//! unauthenticated peer.

use crate::fix::codec::Encoder;
use crate::fix::codec::LogonInfo;
use crate::fix::Field;

pub(crate) const REFUSED_TEXT: &str = "Logon refused";

/// SendingTime (52) in the FIX UTCTimestamp format with milliseconds.
pub(crate) fn sending_time() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}-{:02}:{:02}:{:02}.{:03}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// A Logout answering `logon`, CompIDs swapped, MsgSeqNum 1.
pub(crate) fn logout_for(logon: &LogonInfo) -> Vec<u8> {
    let ts = sending_time();
    Encoder::new(logon.begin_string.clone()).to_vec(
        "5",
        &[
            Field::new(49, logon.target_comp_id.as_bytes()),
            Field::new(56, logon.sender_comp_id.as_bytes()),
            Field::new(34, b"1"),
            Field::new(52, ts.as_bytes()),
            Field::new(58, REFUSED_TEXT.as_bytes()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_swaps_comp_ids_and_says_nothing_more() {
        let logon = LogonInfo {
            begin_string: "FIX.4.4".into(),
            sender_comp_id: "CLIENT1".into(),
            target_comp_id: "BRIDGE".into(),
            username: None,
            password: None,
            heartbeat_secs: Some(30),
            reset_seq_num: false,
            default_appl_ver_id: None,
            seq_num: Some(1),
        };
        let wire = logout_for(&logon);
        let mut d = crate::fix::codec::Decoder::new(Default::default());
        d.feed(&wire);
        let m = d.decode_next().unwrap().unwrap();
        assert_eq!(m.msg_type(), b"5");
        assert_eq!(m.get_str(49), Some("BRIDGE"));
        assert_eq!(m.get_str(56), Some("CLIENT1"));
        assert_eq!(m.get_str(58), Some(REFUSED_TEXT));
    }
}
