//! Topics as JetStream subjects, and the ids JetStream de-duplicates by.
//!
//! Topic components are already escaped (`%`, `.` and bytes below `!` as `%XX`, see
//! `normalize::topic`), so a `%` in a topic is always followed by two hex digits. The three
//! tokens a subject cannot carry verbatim use a `%` that never occurs that way: a component
//! that is exactly `*` or `>` (wildcards in NATS) becomes `%*` / `%>`, an empty one `%`.
//! Mapping back is exact, so an edge republishes the topic the bridge published.

/// `<prefix>.<topic>` with the wildcard and empty tokens escaped.
pub fn subject(prefix: &str, topic: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + topic.len() + 2);
    s.push_str(prefix);
    for token in topic.split('.') {
        s.push('.');
        match token {
            "" => s.push('%'),
            "*" => s.push_str("%*"),
            ">" => s.push_str("%>"),
            t => s.push_str(t),
        }
    }
    s
}

/// The topic a subject under `prefix` carries; `None` if it is not one of ours.
pub fn topic(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let mut t = String::with_capacity(rest.len());
    for (i, token) in rest.split('.').enumerate() {
        if i > 0 {
            t.push('.');
        }
        match token {
            "%" => {}
            "%*" => t.push('*'),
            "%>" => t.push('>'),
            "" | "*" | ">" => return None,
            tok => t.push_str(tok),
        }
    }
    Some(t)
}

/// `Nats-Msg-Id` of an envelope: its epoch, topic and per-topic sequence number identify it
/// (the same event resent after a bridge crash gets the same id, and is dropped as a
/// duplicate within the stream's duplicate window).
pub fn message_id(epoch: u64, topic: &str, seq: u64) -> String {
    format!("{epoch}:{seq}:{topic}")
}

/// Header carrying the number of the last journal record at or before this envelope: after a
/// crash the bridge republishes the journal from there.
pub const JOURNAL_HEADER: &str = "Fixcurve-Journal";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_subjects() {
        for t in [
            "exec.V.ACC1",
            "md.V.EUR/USD",
            "md.V.*",
            "md.V.>",
            "md.V.A%2EB",
            "md..X",
            "md.V.",
            "status.V",
        ] {
            let s = subject("fixcurve", t);
            assert!(
                !s.split('.')
                    .any(|tok| tok.is_empty() || tok == "*" || tok == ">"),
                "{s}"
            );
            assert_eq!(topic("fixcurve", &s).as_deref(), Some(t), "{s}");
        }
        assert_eq!(subject("a.b", "exec.V.X"), "a.b.exec.V.X");
        assert_eq!(topic("fixcurve", "other.exec.V"), None);
        assert_eq!(topic("fixcurve", "fixcurveexec.V"), None);
        assert_eq!(topic("fixcurve", "fixcurve.exec.*"), None);
        assert_eq!(topic("fixcurve", "fixcurve"), None);
    }
}
