//! The daemon: wires FIX sessions through the normalizer into the CURVE publisher.
