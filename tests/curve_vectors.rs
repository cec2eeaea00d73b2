//! Replay vectors captured on the wire against libzmq 4.3.5 (pyzmq 27), with our side's
//! randomness fixed. Because our bytes depend only on the peer's bytes and our RNG, replaying
//! libzmq's side into a fresh session must reproduce exactly the bytes libzmq accepted, and
//! decode exactly what libzmq sent: a byte-for-byte wire-compatibility check that needs no
//! network. Keys are libzmq's own test keypairs (tests/testutil_security.hpp).

use bytes::{Bytes, BytesMut};
use fixcurve::curve::{ClientEvent, ClientSession, ServerEvent, ServerSession};
use fixcurve::keys::{Keypair, SecretKey};

/// The deterministic byte stream the captures used for our side's randomness.
struct Det(u8);
impl rand_core::RngCore for Det {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        for x in d {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            *x = self.0;
        }
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}

fn server_keys() -> Keypair {
    Keypair::from_secret(SecretKey::from_z85("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6").unwrap())
}

fn client_keys() -> Keypair {
    Keypair::from_secret(SecretKey::from_z85("D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs").unwrap())
}

/// A libzmq SUB (CURVE client, subscribing "md.") talking to our ServerSession, which
/// answered with `[md.A, hello]`; libzmq received it.
#[test]
fn libzmq_sub_against_our_server_replays_exactly() {
    replay_libzmq_sub(vec![server_keys()]);
}

/// During a server key rotation the server also holds another key, tried first: the libzmq
/// client, which knows only the one key, gets exactly the same bytes.
#[test]
fn libzmq_sub_against_our_server_with_a_second_key_replays_exactly() {
    let other = Keypair::from_secret(SecretKey::from_bytes([7u8; 32]));
    replay_libzmq_sub(vec![other, server_keys()]);
}

fn replay_libzmq_sub(keys: Vec<Keypair>) {
    let from_libzmq = hex::decode(LIBZMQ_SUB_TO_US).unwrap();
    let expected = hex::decode(US_TO_LIBZMQ_SUB).unwrap();
    // libzmq's greeting: signature with 0x01 in the last padding byte, 3.1, CURVE, as-server 0.
    assert_eq!(
        &from_libzmq[..12],
        &[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1]
    );
    let mut s = ServerSession::with_keys(keys, 1 << 20, Box::new(Det(2)));
    let mut out = BytesMut::from(&s.greeting()[..]);
    s.input().extend_from_slice(&from_libzmq);
    let mut events = Vec::new();
    while let Some(ev) = s.poll(&mut out).unwrap() {
        match &ev {
            ServerEvent::Authenticate {
                client_key,
                metadata,
                server_key,
            } => {
                assert_eq!(*client_key, client_keys().public);
                assert_eq!(*server_key, server_keys().public);
                assert_eq!(metadata.get("Socket-Type"), Some(&b"SUB"[..]));
                s.accept(&mut out).unwrap();
            }
            ServerEvent::Subscribe(_) => {
                s.send_part(true, b"md.A", &mut out).unwrap();
                s.send_part(false, b"hello", &mut out).unwrap();
            }
            ServerEvent::Cancel(_) => {}
            ServerEvent::Message(_) => panic!("a PUB session delivers no data messages"),
        }
        events.push(ev);
    }
    assert_eq!(
        events.last(),
        Some(&ServerEvent::Subscribe(Bytes::from_static(b"md.")))
    );
    assert_eq!(hex::encode(&out), hex::encode(&expected));
    // Frame sizes as libzmq sends them: HELLO 200 (short frame), INITIATE long (0x06).
    assert_eq!(&from_libzmq[64..66], &[0x04, 200]);
    assert_eq!(&from_libzmq[66..72], b"\x05HELLO");
    let initiate_at = 64 + 2 + 200;
    assert_eq!(from_libzmq[initiate_at], 0x06);
}

/// Our ClientSession against a libzmq PUB (CURVE server): our bytes reproduce exactly, and
/// libzmq's messages decode to `[md.A, hello]` twice.
#[test]
fn our_client_against_libzmq_pub_replays_exactly() {
    let from_libzmq = hex::decode(LIBZMQ_PUB_TO_US).unwrap();
    let expected = hex::decode(US_TO_LIBZMQ_PUB).unwrap();
    let mut c = ClientSession::new(
        client_keys(),
        server_keys().public,
        1 << 20,
        Box::new(Det(1)),
    );
    let mut out = BytesMut::from(&c.greeting()[..]);
    c.input().extend_from_slice(&from_libzmq);
    let mut messages = Vec::new();
    while messages.len() < 2 {
        match c.poll(&mut out).unwrap() {
            Some(ClientEvent::Ready(md)) => {
                assert_eq!(md.get("Socket-Type"), Some(&b"PUB"[..]));
                c.subscribe(b"md.", &mut out).unwrap();
            }
            Some(ClientEvent::Message(parts)) => messages.push(parts),
            None => panic!("transcript ended early"),
        }
    }
    assert_eq!(hex::encode(&out), hex::encode(&expected));
    for m in messages {
        assert_eq!(
            m,
            vec![Bytes::from_static(b"md.A"), Bytes::from_static(b"hello")]
        );
    }
    // libzmq's WELCOME is a 168-byte command.
    assert_eq!(&from_libzmq[64..68], &[0x04, 168, 7, b'W']);
}

const LIBZMQ_SUB_TO_US: &str = concat!(
    "ff00000000000000017f0301435552564500000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000004c80548454c4c4f010000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "0000f9bff18b1e83c60ed7c3b785216d55a0cbf8ff0f38c273d3bbc158a4158fa34a000000000000000163d4278b08db",
    "bb725639604c50c095b7fa9e8ea1471b2b3149624f09355509a35a4f868e9f395c3568edf86d29f96b19862b7aaebb5b",
    "1bf4d92e6208e13f068f1da83491af299150727f9ba714c7e44706000000000000011408494e4954494154454562e5c2",
    "85222582c5e2654205a2a5029e6aa069d8203c61721c90156f15207d1dd744e3429e3754c9f16a27b1978b6d10c5cc01",
    "c2ace30c0acd218ce1c844f115aacecc049ce4d5103db6bd30118d17b1f39f1825f61feb9d7aec91e1eefa2c00000000",
    "00000002ae009f29d1ad33b92e85efcd6d4337bd05ddf8b818baddc6ec79ab010b65f109bb68fe54d65f7980ec49aebc",
    "522848db3d2b551e912b237a4c0b69e3a349dedbc50d1ee853753c2d2622015f512632c1635a06f365e380fce24d9ed8",
    "00d29dabf0901ae79df72efe1f8a5716e8815e0d441ea64cf56c3b049bfea1878f283d2496253c3fc8364a6185b2f421",
    "34979db2f85256118bb479f139045efa88bf013ba4fdad002e074d4553534147450000000000000003f0644a654a0f77",
    "27ae52d0a56454738d0675284bea9b97a0ff28368a3fca",
);
const US_TO_LIBZMQ_SUB: &str = concat!(
    "ff00000000000000017f0301435552564500000000000000000000000000000001000000000000000000000000000000",
    "0000000000000000000000000000000004a80757454c434f4d454562e5c285222582c5e2654205a2a5025a7eecec05a5",
    "fbba7fdf58e3fe0c1f74e76736b8f492b942aa1e201500f734e8e963bb73ed6014383c19562eb4dfeb0464a685929778",
    "b97041778994b7ed6a5fdcce37cb5c656d06f68ba39428e03a76ccb0aecc8781fdc83fda80cd9afc8ee04277839a0e96",
    "af7d51204f98de0c32b01298ebeb72e443a782173a741fadc30bf158091814e8d3759ca241b34813c20b043105524541",
    "445900000000000000015a76010e88ee7ea94523f732ce5e4eee49828802f048f5aa1007ed7e9dd38ceae53149002507",
    "4d4553534147450000000000000002714766f7c09f40800fe1a509d478cb439086a7ee560026074d4553534147450000",
    "00000000000380cf83306378d813f936e8016d8d5a821136684ab04a",
);
const LIBZMQ_PUB_TO_US: &str = concat!(
    "ff00000000000000017f0301435552564500000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000004a80757454c434f4d45fcac746a475658e85347dd0c531eb69bf74f53ee0d6c",
    "0730c29d8234daf2dc67f2e93157c2716163420f3324447f95d5dd291cd0cead11a09f8a17296d553aaacb8626e0656d",
    "a45f7726d9da001f315ed9907bfc9e25aa42c47920687bdabeaad298f387efbd16e7b46cab8a96ce7d35a272ab23f536",
    "ca2ec14d14f61f26818a4493266cae1a3a0be1c798eb943c3f0a5ee055bb68b51ee56efb79c3f3b49dd7043105524541",
    "44590000000000000001e9df24f1437b26670966200b90eb5992c1c07da74238c5108aaa508470365256941e57002507",
    "4d455353414745000000000000000291ec3730cb14993614075272c55a11d6e6403627d20026074d4553534147450000",
    "000000000003086ce3ac1ecae92fd142ef346ac36ae77a8124e0a7260025074d455353414745000000000000000457eb",
    "db8acc85ec201a8363873bcdb675d412c4b5960026074d4553534147450000000000000005caeba64b27b306152aa0e1",
    "0f03d7c3d92f506a654f91",
);
const US_TO_LIBZMQ_PUB: &str = concat!(
    "ff00000000000000017f0301435552564500000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000004c80548454c4c4f010000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "00002df7335daf3d9ddb333424eddd910079ce5a23eb0bf9029a39703f6dabc0721400000000000000014dd14aff60ea",
    "c9d3e9de26700b2a6d29a490acd9621afed1cba33402f431a5bded2802357520a8e65cbf4963d8959589b41c52d3f6b9",
    "45f7b76d2cf97c8ea369125143baba8a90f86fb1dd7b3646517806000000000000011408494e495449415445ceb4e6b7",
    "208e9ddd5981523e5a12b81cb0829c4ef19c69a719ed251fb7e96489395cbc876a2c67118b60592e8633735f4af22116",
    "bcc1ca0bcae42d81561f379aa65b380857eb10453d88d8aaccd633cca4c37db0474a91ae0d9ef864e5ba4d0a00000000",
    "000000020680968b1ca3fe154444f859f7aa65509b1ed82026dc88d699330662661c7ce97be0d7dbe37fbb6c0548dda1",
    "8adf6f5a5b93d297a3205094f8c0c6b021cf73b20c71576b22284faf3c387a40baa090caf73b22e1f5cc9ea2948fd9e5",
    "622de76e80264aa1b0f651647f6627ea386d209006df61e2ee13c9649584504cdb41acb24b24116ccf1429a40a899ec9",
    "ecf5f5e35bb59729803cc1d4431100f0eb04250b02f4a1002e074d4553534147450000000000000003c4eb503ba2c703",
    "1db47dd1e0378304713af6644c06017e336083470161bf",
);
