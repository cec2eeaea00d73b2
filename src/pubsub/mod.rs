//! tokio PUB/SUB over ZMTP 3.1 + CURVE: the `Publisher` and the `Subscriber`.
