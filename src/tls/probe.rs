//! `fixcurve certs probe` (filled in below).
