//! Topic names: `md.<VENUE>.<SYMBOL>`, `exec.<VENUE>.<ACCOUNT>`, `status.<VENUE>`.
//!
//! Each component is escaped so that a topic splits back into exactly the components it was
//! built from: `%`, `.` and bytes below 0x21 become `%XX` (uppercase hex), everything else is
//! verbatim. Without this, symbol `BRK.B` or account `ACC1.X` would look like deeper topics,
//! and an ACL entry or subscription meant for one account could reach another. Prefix
//! subscriptions and ACL entries that end in `.` therefore always stop at a component
//! boundary (`exec.VENUE1.` is every account of VENUE1, nothing else).

/// Escapes one topic component (see the module doc).
pub fn escape(component: &str) -> std::borrow::Cow<'_, str> {
    if !component.bytes().any(needs_escape) {
        return std::borrow::Cow::Borrowed(component);
    }
    let mut out = String::with_capacity(component.len().saturating_add(8));
    for c in component.chars() {
        if c.is_ascii() && needs_escape(c as u8) {
            out.push('%');
            out.push(hex_digit((c as u8) >> 4));
            out.push(hex_digit((c as u8) & 0x0f));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(b: u8) -> bool {
    b < 0x21 || b == b'%' || b == b'.'
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0x0f)])
}

/// Undoes `escape`; `None` for a malformed `%` sequence or one that does not decode to UTF-8.
pub fn unescape(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes
                .get(i.saturating_add(1))
                .and_then(|c| (*c as char).to_digit(16))?;
            let lo = bytes
                .get(i.saturating_add(2))
                .and_then(|c| (*c as char).to_digit(16))?;
            out.push(u8::try_from((hi << 4) | lo).ok()?);
            i = i.saturating_add(3);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    String::from_utf8(out).ok()
}

/// Splits a topic into its unescaped components; `None` if any component is malformed.
pub fn split(topic: &str) -> Option<Vec<String>> {
    topic.split('.').map(unescape).collect()
}

/// Topic for market data of `symbol` at `venue`.
pub fn md_topic(venue: &str, symbol: &str) -> String {
    format!("md.{}.{}", escape(venue), escape(symbol))
}

/// Topic for executions of `account` (tag 1, else the sender CompID) at `venue`.
pub fn exec_topic(venue: &str, account: &str) -> String {
    format!("exec.{}.{}", escape(venue), escape(account))
}

/// Topic for session and venue status.
pub fn status_topic(venue: &str) -> String {
    format!("status.{}", escape(venue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators_percent_and_controls_only() {
        assert_eq!(md_topic("VENUE1", "BRK.B"), "md.VENUE1.BRK%2EB");
        assert_eq!(md_topic("VENUE1", "EUR/USD"), "md.VENUE1.EUR/USD");
        assert_eq!(exec_topic("V", "ACC 1"), "exec.V.ACC%201");
        assert_eq!(exec_topic("V", "50%"), "exec.V.50%25");
        assert_eq!(exec_topic("V", "a\x01b"), "exec.V.a%01b");
        assert_eq!(md_topic("V", "Zürich"), "md.V.Zürich");
        assert_eq!(status_topic("V.1"), "status.V%2E1");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn splits_back_into_the_components() {
        for (venue, sym) in [("V", "BRK.B"), ("V.X", "a b%c"), ("V", ""), ("V", "é.\x7f")] {
            let t = md_topic(venue, sym);
            assert_eq!(split(&t).unwrap(), vec!["md", venue, sym], "{t}");
        }
        assert_eq!(unescape("%2"), None);
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%FF"), None); // not UTF-8 on its own
        assert_eq!(unescape("%2e").as_deref(), Some("."));
    }

    #[test]
    fn an_account_prefix_never_matches_another_account() {
        let acc1 = exec_topic("V", "ACC1");
        let acc1x = exec_topic("V", "ACC1.X");
        assert!(!acc1x.starts_with(&format!("{acc1}.")));
        assert_ne!(acc1, acc1x);
    }
}
