//! TOML configuration (`fixcurve run --config FILE`), validated at start-up.
