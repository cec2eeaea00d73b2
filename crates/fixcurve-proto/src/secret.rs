//! One self-redacting wrapper for secrets (Logon passwords, the contents of secret files): it
//! never shows in `Debug` output, so no log line or test failure can carry it, and its memory
//! is zeroed when it is dropped. Everything that held a secret used to carry its own
//! hand-written redacting `Debug`.

use zeroize::{Zeroize, Zeroizing};

/// A secret value. Compare and clone freely; read it only through [`Redacted::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted<T: Zeroize>(Zeroizing<T>);

/// Secret text, the common case (passwords).
pub type Secret = Redacted<String>;

impl<T: Zeroize> Redacted<T> {
    /// Wraps a secret value.
    pub fn from_value(value: T) -> Self {
        Redacted(Zeroizing::new(value))
    }

    /// The value itself, for the one place that must use it (the wire, a hash check).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Redacted<String> {
    /// Wraps secret text.
    pub fn new(text: impl Into<String>) -> Self {
        Redacted::from_value(text.into())
    }
}

impl<T: Zeroize> std::fmt::Debug for Redacted<T> {
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
        let bytes = Redacted::from_value(vec![1u8, 2, 3]);
        assert_eq!(format!("{bytes:?}"), "<redacted>");
        assert_eq!(bytes.expose(), &[1, 2, 3]);
    }
}
