//! Dictionary files: the bounded read in front of `fixcurve-proto`'s XML parser.

use std::path::Path;

pub use fixcurve_proto::fix::dictionary::*;

/// Dictionaries are a few MB at most (FIX 5.0 SP2 is about 3 MB).
const MAX_FILE: u64 = 32 * 1024 * 1024;

/// Reads a QuickFIX-format XML dictionary.
pub fn load(path: &Path) -> Result<Dictionary, DictionaryError> {
    let bytes = crate::keys::fsutil::read_bounded(path, MAX_FILE)
        .map_err(|source| DictionaryError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| DictionaryError::Format {
            path: path.to_path_buf(),
            reason: "larger than 32 MiB".into(),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| DictionaryError::Format {
        path: path.to_path_buf(),
        reason: "not UTF-8 text".into(),
    })?;
    Dictionary::parse(path, &text)
}
