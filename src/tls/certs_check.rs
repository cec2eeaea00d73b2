//! `fixcurve certs check` (filled in below).
