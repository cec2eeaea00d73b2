//! Prints a fresh NATS user nkey as `<public key> <seed>`: the JetStream tests authorize the
//! public key on their `nats-server` and hand the seed to the bridge (`[sink.nats] nkey`).

fn main() {
    let kp = nkeys::KeyPair::new_user();
    match kp.seed() {
        Ok(seed) => println!("{} {}", kp.public_key(), seed),
        Err(e) => {
            eprintln!("nkey_user: {e}");
            std::process::exit(1);
        }
    }
}
