//! Interop with the Python HomeKit stacks, without HTTP: `tests/interop/hap_peer.py` runs
//! aiohomekit's controller state machines and HAP-python's accessory request handler, talking to
//! our state machines over the child's stdin/stdout (kind | u32 BE length | payload).
//!
//! Needs `IRONCLAD_HAP_PYTHON` = a Python with HAP-python==5.0.0, aiohomekit==4.0.1 (and
//! homekit==0.19.0); skipped without it unless `IRONCLAD_REQUIRE_PEERS=1`.
//! `IRONCLAD_PAIR_ROUNDS` sets the number of full rounds per peer (default 20). The 500
//! consecutive pair-setups per peer of the acceptance run are ironclad-hap's interop tests, over
//! real HTTP. Randomness is real here, so leading-zero A/B/S/K cases occur.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ironclad_pair::pairings::{self, PairingsRequest};
use ironclad_pair::session::Session;
use ironclad_pair::setup::{self, SetupCode};
use ironclad_pair::tlv8::{Tlv8, types};
use ironclad_pair::{AttemptCounter, Identity, MemoryStore, PairingId, PairingStore, SystemRandom, verify};

use crate::common::{CODE, accessory_identity, controller_identity};

fn peer(mode: &str, rounds: usize) -> Option<Pipe> {
    let Some(python) = std::env::var_os("IRONCLAD_HAP_PYTHON") else {
        assert!(
            std::env::var("IRONCLAD_REQUIRE_PEERS").as_deref() != Ok("1"),
            "IRONCLAD_REQUIRE_PEERS=1 but IRONCLAD_HAP_PYTHON is not set"
        );
        eprintln!("skipped: set IRONCLAD_HAP_PYTHON to a Python with HAP-python and aiohomekit");
        return None;
    };
    // The manifest directory at run time: a binary built in another checkout still finds it.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let script = format!("{dir}/tests/interop/hap_peer.py");
    let mut child = Command::new(python)
        .args([script.as_str(), mode, &rounds.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the Python peer");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    Some(Pipe { child, stdin, stdout })
}

fn rounds() -> usize {
    std::env::var("IRONCLAD_PAIR_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20)
}

struct Pipe {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Pipe {
    fn send(&mut self, kind: u8, payload: &[u8]) {
        let mut frame = vec![kind];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.stdin.write_all(&frame).unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 5];
        self.stdout.read_exact(&mut head).expect("peer closed the pipe (see its stderr)");
        let mut body = vec![0u8; u32::from_be_bytes(head[1..].try_into().unwrap()) as usize];
        self.stdout.read_exact(&mut body).unwrap();
        (head[0], body)
    }

    fn call(&mut self, kind: u8, payload: &[u8]) -> Vec<u8> {
        self.send(kind, payload);
        let (k, body) = self.recv();
        assert_eq!(k, kind);
        body
    }

    fn finish(mut self) {
        drop(self.stdin);
        assert!(self.child.wait().unwrap().success(), "Python peer failed (see its stderr)");
    }
}

fn state_of(message: &[u8]) -> u8 {
    Tlv8::decode(message).unwrap().get_u8(types::STATE).unwrap().unwrap_or(0)
}

enum SetupStep {
    M3(Box<setup::accessory::ExpectM3>),
    M5(setup::accessory::ExpectM5),
}

/// aiohomekit's controller against our accessory: a wrong code, then pair-setup, pair-verify,
/// an encrypted exchange, list and remove over the session, `rounds` times.
#[test]
fn aiohomekit_controller_against_our_accessory() {
    serve_accessory("aiohomekit-controller");
}

/// The same with homekit_python, which strips leading zeros from A, S and K.
#[test]
fn homekit_python_controller_against_our_accessory() {
    serve_accessory("homekit-python-controller");
}

fn serve_accessory(mode: &str) {
    let rounds = rounds();
    let Some(mut pipe) = peer(mode, rounds) else { return };
    let identity = accessory_identity();
    let code = SetupCode::parse(CODE).unwrap();
    let store = MemoryStore::new();
    let mut rng = SystemRandom;
    let mut setup_step: Option<SetupStep> = None;
    let mut verify_step: Option<verify::accessory::ExpectM3> = None;
    let mut session: Option<(Session, PairingId)> = None;
    let mut ends = 0;
    loop {
        let (kind, body) = pipe.recv();
        let reply = match kind {
            b'P' => match (state_of(&body), setup_step.take()) {
                (1, _) => {
                    let step =
                        setup::accessory::ExpectM1::new(identity.clone(), code.verifier(&mut rng).unwrap());
                    let r = step.handle(&body, &store, &store, &mut rng).unwrap();
                    setup_step = Some(SetupStep::M3(Box::new(r.next)));
                    r.message
                }
                (3, Some(SetupStep::M3(step))) => match step.handle(&body, &store) {
                    Ok(r) => {
                        setup_step = Some(SetupStep::M5(r.next));
                        r.message
                    }
                    Err(rejected) => {
                        assert_eq!(ends, 0, "only the first round uses a wrong code: {}", rejected.error);
                        assert_eq!(store.failed_attempts().unwrap(), 1);
                        rejected.reply
                    }
                },
                (5, Some(SetupStep::M5(step))) => {
                    let r = step.handle(&body, &store, &store).unwrap();
                    assert_eq!(store.list().unwrap(), std::slice::from_ref(&r.next.peer));
                    r.message
                }
                (state, _) => panic!("pair-setup state {state} out of order"),
            },
            b'V' => match (state_of(&body), verify_step.take()) {
                (1, _) => {
                    let r =
                        verify::accessory::ExpectM1::new(identity.clone()).handle(&body, &mut rng).unwrap();
                    verify_step = Some(r.next);
                    r.message
                }
                (3, Some(step)) => {
                    let r = step.handle(&body, &store).unwrap();
                    let peer = r.next.peer.id.clone();
                    session = Some((r.next.into_session(), peer));
                    r.message
                }
                (state, _) => panic!("pair-verify state {state} out of order"),
            },
            b'S' | b'R' => {
                let (session, peer) = session.as_mut().expect("verified session");
                let request = session.decrypt(&body).unwrap();
                let response = if kind == b'S' {
                    [b"pong:".as_slice(), &request].concat()
                } else {
                    match pairings::handle_request(&request, peer, &store) {
                        Ok(r) => r.message,
                        Err(rejected) => panic!("{}", rejected.error),
                    }
                };
                session.encrypt(&response).unwrap()
            }
            b'X' => {
                ends += 1;
                session = None;
                continue;
            }
            b'Q' => break,
            other => panic!("unexpected message kind {other}"),
        };
        pipe.send(kind, &reply);
    }
    pipe.finish();
    assert_eq!(ends, rounds + 1);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.failed_attempts().unwrap(), 0);
}

/// Our controller against HAP-python's accessory handler: pair-setup (restarting when B has a
/// leading zero), pair-verify, an encrypted exchange, list and remove ourselves, `rounds` times.
#[test]
fn our_controller_against_hap_python_accessory() {
    let rounds = rounds();
    let Some(mut pipe) = peer("hap-python-accessory", rounds) else { return };
    let mut rng = SystemRandom;
    let code = SetupCode::parse(CODE).unwrap();
    let mut restarts = 0;
    for round in 0..rounds {
        // hap-python requires a UUID as the controller's pairing identifier.
        let base = controller_identity(round as u8);
        let uuid = format!("6A0C4B0F-5C31-4F1D-9A38-{round:012X}");
        let controller = Identity::new(uuid.parse().unwrap(), base.key.clone());
        let store = MemoryStore::new();
        let paired = loop {
            let c1 = setup::controller::start(controller.clone(), code.clone());
            let m2 = pipe.call(b'P', &c1.message);
            let c3 = match c1.next.handle(&m2, &mut rng) {
                Err(e) if e.is_restart() => {
                    restarts += 1;
                    continue;
                }
                other => other.unwrap(),
            };
            let m4 = pipe.call(b'P', &c3.message);
            let c5 = c3.next.handle(&m4).unwrap_or_else(|e| panic!("round {round}: M4: {e}"));
            let m6 = pipe.call(b'P', &c5.message);
            break c5.next.handle(&m6).unwrap();
        };
        assert_eq!(paired.peer.id.as_bytes(), b"AA:BB:CC:DD:EE:FF");
        store.put(&paired.peer).unwrap();

        let v1 = verify::controller::start(controller.clone(), &mut rng).unwrap();
        let m2 = pipe.call(b'V', &v1.message);
        let v3 = v1.next.handle(&m2, &store).unwrap();
        let m4 = pipe.call(b'V', &v3.message);
        let mut session = v3.next.handle(&m4).unwrap().into_session();

        let payload =
            [b"GET /accessories HTTP/1.1\r\n\r\n".repeat(round % 70 + 1), round.to_le_bytes().to_vec()]
                .concat();
        let frames = session.encrypt(&payload).unwrap();
        let reply = session.decrypt(&pipe.call(b'S', &frames)).unwrap();
        assert_eq!(reply, [b"pong:".as_slice(), &payload].concat());

        let list = session.encrypt(&PairingsRequest::List.encode()).unwrap();
        let listed =
            pairings::parse_list_response(&session.decrypt(&pipe.call(b'R', &list)).unwrap()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, controller.id);
        assert_eq!(listed[0].public_key, controller.key.public_key());
        assert!(listed[0].permissions.is_admin());

        let remove = session.encrypt(&PairingsRequest::Remove(controller.id.clone()).encode()).unwrap();
        pairings::parse_response(&session.decrypt(&pipe.call(b'R', &remove)).unwrap()).unwrap();
        pipe.send(b'X', &[]);
    }
    pipe.send(b'Q', &[]);
    pipe.finish();
    eprintln!("{rounds} rounds against hap-python, {restarts} restarts for a leading-zero B");
}
