//! One type for secret text (Logon passwords): it never shows in `Debug` output, so no log
//! line or test failure can carry it, and its memory is zeroed when it is dropped. Everything
//! that held a password used to carry its own hand-written redacting `Debug`.

use zeroize::Zeroizing;

/// Secret text. Compare and clone freely; read it only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps secret text.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(text.into()))
    }

    /// The text itself, for the one place that must use it (the wire, a hash check).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(
            format!("{s:?} {:?}", Some(s.clone())),
            "<redacted> Some(<redacted>)"
        );
        assert_eq!(s.expose(), "hunter2");
    }
}
