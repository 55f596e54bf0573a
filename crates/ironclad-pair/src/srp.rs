//! HAP-SRP: SRP-6a over the RFC 5054 3072-bit group with SHA-512, as HomeKitADK computes it,
//! on crypto-bigint (constant-time modular exponentiation).
//!
//! Apple's conventions (research/pairing.md §1, §6):
//! `k = H(N ‖ PAD(g))`, `x = H(s ‖ H(I ":" P))`, `v = g^x`, `B = k·v + g^b`,
//! `u = H(PAD(A) ‖ PAD(B))`, `S = (A·v^u)^b = (B − k·g^x)^(a + u·x)`, `K = H(strip(S))`,
//! `M1 = H(H(N) xor H(g) ‖ H(I) ‖ s ‖ strip(A) ‖ strip(B) ‖ K)` with `H(g)` over the single byte
//! 0x05, and `M2 = H(PAD(A) ‖ M1 ‖ K)`.
//!
//! Peers disagree on where leading zero bytes are stripped (§2 "the padding trap"), so
//! [`SrpServer::verify_client`] accepts a proof under every convention measured in the wild and
//! answers in the one that matched; the controller side avoids the ambiguity by re-drawing `a`
//! ([`ClientSession::is_unambiguous`]) and restarting when B has a leading zero.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::SHA512;
use crypto_bigint::modular::{ConstMontyForm, ConstMontyParams};
use crypto_bigint::{U3072, const_monty_params};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The SRP username HAP uses.
pub const USERNAME: &[u8] = b"Pair-Setup";
/// Bytes of N (and of every padded group element).
pub const GROUP_LEN: usize = 384;
/// Bytes of the salt the accessory generates.
pub const SALT_LEN: usize = 16;
/// Bytes of the private exponents a and b.
pub const SECRET_LEN: usize = 32;
/// Bytes of a SHA-512 output (K, M1, M2).
pub const HASH_LEN: usize = 64;

const_monty_params!(
    N3072,
    U3072,
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    "The RFC 5054 3072-bit SRP group modulus"
);

type Fe = ConstMontyForm<N3072, { U3072::LIMBS }>;
type Hash = [u8; HASH_LEN];
type Padded = [u8; GROUP_LEN];

const G: u8 = 5;

fn h(parts: &[&[u8]]) -> Hash {
    let mut ctx = aws_lc_rs::digest::Context::new(&SHA512);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn strip(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}

/// Big-endian bytes (at most 384) to an integer.
fn to_uint(bytes: &[u8]) -> Option<U3072> {
    if bytes.len() > GROUP_LEN {
        return None;
    }
    let mut buf = Zeroizing::new([0u8; GROUP_LEN]);
    buf[GROUP_LEN - bytes.len()..].copy_from_slice(bytes);
    Some(U3072::from_be_slice(&buf[..]))
}

fn pad(x: &U3072) -> Padded {
    let mut out = [0u8; GROUP_LEN];
    out.copy_from_slice(&x.to_be_bytes());
    out
}

fn n_padded() -> Padded {
    pad(N3072::PARAMS.modulus().as_ref())
}

fn g() -> Fe {
    Fe::new(&U3072::from_u8(G))
}

/// `k = H(N ‖ PAD(g))`.
fn k() -> Fe {
    let mut g_padded = [0u8; GROUP_LEN];
    g_padded[GROUP_LEN - 1] = G;
    let k = h(&[&n_padded(), &g_padded]);
    Fe::new(&to_uint(&k).expect("64 bytes"))
}

/// `H(N) xor H(g)`, with g hashed as the single byte 0x05 (ADK).
fn hn_xor_hg() -> Hash {
    let hn = h(&[&n_padded()]);
    let hg = h(&[&[G]]);
    std::array::from_fn(|i| hn[i] ^ hg[i])
}

fn x_of(salt: &[u8], username: &[u8], password: &[u8]) -> Zeroizing<U3072> {
    let inner = Zeroizing::new(h(&[username, b":", password]));
    let x = Zeroizing::new(h(&[salt, &inner[..]]));
    Zeroizing::new(to_uint(&x[..]).expect("64 bytes"))
}

/// A public value from the peer: 1..=384 bytes, below N and not zero.
fn parse_public(bytes: &[u8], what: &'static str) -> Result<U3072> {
    let value = to_uint(bytes).ok_or(Error::SrpPublicValue(what))?;
    let padded = pad(&value);
    if padded >= n_padded() || padded.iter().all(|b| *b == 0) {
        return Err(Error::SrpPublicValue(what));
    }
    Ok(value)
}

fn proof_m1(username: &[u8], salt: &[u8], a: &[u8], b: &[u8], key: &[u8]) -> Hash {
    h(&[&hn_xor_hg(), &h(&[username]), salt, a, b, key])
}

/// The password verifier `v = g^x` with its salt: what an accessory stores instead of the code.
#[derive(Clone)]
pub struct Verifier {
    salt: [u8; SALT_LEN],
    v: Zeroizing<U3072>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("salt", &self.salt).finish_non_exhaustive()
    }
}

impl Verifier {
    /// Computes `v` from the setup code (about 3 ms; cache the result as ADK does).
    pub fn new(username: &[u8], password: &[u8], salt: [u8; SALT_LEN]) -> Self {
        let x = x_of(&salt, username, password);
        let v = g().pow_bounded_exp(&*x, 512).retrieve();
        Verifier { salt, v: Zeroizing::new(v) }
    }

    /// A verifier provisioned in the factory (salt and padded or unpadded `v`), so that no setup
    /// code ships in the firmware.
    pub fn from_parts(salt: [u8; SALT_LEN], v: &[u8]) -> Result<Self> {
        let v = parse_public(v, "v")?;
        Ok(Verifier { salt, v: Zeroizing::new(v) })
    }

    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// `PAD(v)`, for provisioning.
    pub fn verifier_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(pad(&self.v).to_vec())
    }
}

/// How a controller's M1 was computed, as found by [`SrpServer::verify_client`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Convention {
    /// `u` was computed over A without leading zeros (homekit_python).
    pub u_strips_a: bool,
    /// `K = H(PAD(S))` instead of `H(strip(S))` (aiohomekit, fast-srp-hap).
    pub k_over_padded_s: bool,
    /// How A appears inside M1.
    pub a_in_m1: AForm,
    /// B appeared inside M1 padded to 384 bytes (only differs when B has a leading zero).
    pub b_padded_in_m1: bool,
    /// K was used without its leading zero bytes in M1, M2 and the session keys.
    pub k_stripped: bool,
}

impl Convention {
    /// Apple's HomeKitADK convention.
    pub const ADK: Convention = Convention {
        u_strips_a: false,
        k_over_padded_s: false,
        a_in_m1: AForm::Stripped,
        b_padded_in_m1: false,
        k_stripped: false,
    };
}

/// A byte form of A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AForm {
    Stripped,
    Padded,
    AsSent,
}

/// The accessory's side of one SRP exchange.
pub struct SrpServer {
    username: Vec<u8>,
    verifier: Verifier,
    b: Zeroizing<U3072>,
    public: Padded,
}

impl std::fmt::Debug for SrpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrpServer").field("verifier", &self.verifier).finish_non_exhaustive()
    }
}

/// The result of a verified M1: the proof M2 to send and the shared key K (in the byte form the
/// controller uses, for the HKDF of pair-setup M5/M6).
pub struct ServerSession {
    pub proof: [u8; HASH_LEN],
    pub key: Zeroizing<Vec<u8>>,
    pub convention: Convention,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession").field("convention", &self.convention).finish_non_exhaustive()
    }
}

impl SrpServer {
    /// Starts an exchange with the private exponent `b` (32 random bytes). HAP accessories
    /// should draw again while [`SrpServer::public_key`] starts with 0x00.
    pub fn new(username: &[u8], verifier: Verifier, b: &[u8; SECRET_LEN]) -> Self {
        let b = Zeroizing::new(to_uint(b).expect("32 bytes"));
        let gb = g().pow_bounded_exp(&*b, 256);
        let public = pad(&k().mul(&Fe::new(&verifier.v)).add(&gb).retrieve());
        SrpServer { username: username.to_vec(), verifier, b, public }
    }

    /// B, padded to 384 bytes (the form to send).
    pub fn public_key(&self) -> &[u8; GROUP_LEN] {
        &self.public
    }

    pub fn salt(&self) -> &[u8; SALT_LEN] {
        self.verifier.salt()
    }

    /// Checks the controller's proof `m1` (64 bytes, or fewer when a peer strips its leading
    /// zeros) for its public value `a_wire` under every padding convention peers use, ADK's
    /// first. Fails with [`Error::SrpProof`] on a wrong code.
    pub fn verify_client(&self, a_wire: &[u8], m1: &[u8]) -> Result<ServerSession> {
        let a = parse_public(a_wire, "A")?;
        // homekit_python sends M1 without its leading zero bytes (and hashes it so into M2).
        if m1.is_empty() || m1.len() > HASH_LEN {
            return Err(Error::SrpProof);
        }
        let mut m1_padded = [0u8; HASH_LEN];
        m1_padded[HASH_LEN - m1.len()..].copy_from_slice(m1);
        let a_pad = pad(&a);
        let b_pad = self.public;
        let mut u_forms = vec![(false, h(&[&a_pad, &b_pad]))];
        if a_pad[0] == 0 {
            u_forms.push((true, h(&[strip(&a_pad), &b_pad])));
        }
        let salt = self.verifier.salt;
        let av = Fe::new(&a);
        for (u_strips_a, u) in u_forms {
            let u = to_uint(&u).expect("64 bytes");
            let base = av.mul(&Fe::new(&self.verifier.v).pow_bounded_exp(&u, 512));
            let s = Zeroizing::new(pad(&base.pow_bounded_exp(&*self.b, 256).retrieve()));
            for k_over_padded_s in [false, true] {
                let k_full = Zeroizing::new(if k_over_padded_s { h(&[&s[..]]) } else { h(&[strip(&s[..])]) });
                for k_stripped in [false, true] {
                    if k_stripped && k_full[0] != 0 {
                        continue;
                    }
                    let key: &[u8] = if k_stripped { strip(&k_full[..]) } else { &k_full[..] };
                    for a_in_m1 in [AForm::Stripped, AForm::Padded, AForm::AsSent] {
                        let a_bytes: &[u8] = match a_in_m1 {
                            AForm::Stripped => strip(&a_pad),
                            AForm::Padded => &a_pad,
                            AForm::AsSent => a_wire,
                        };
                        if a_in_m1 != AForm::Stripped && a_bytes == strip(&a_pad) {
                            continue; // same bytes as a form already tried
                        }
                        for b_padded_in_m1 in [false, true] {
                            let b_bytes: &[u8] = if b_padded_in_m1 { &b_pad } else { strip(&b_pad) };
                            if b_padded_in_m1 && b_pad[0] != 0 {
                                continue;
                            }
                            let expected = proof_m1(&self.username, &salt, a_bytes, b_bytes, key);
                            if verify_slices_are_equal(&expected, &m1_padded).is_ok() {
                                // ADK hashes PAD(A) into M2; a client that strips A everywhere
                                // (homekit_python) expects the stripped form.
                                let m2_a: &[u8] = if u_strips_a && a_in_m1 == AForm::Stripped {
                                    strip(&a_pad)
                                } else {
                                    &a_pad
                                };
                                let proof = h(&[m2_a, m1, key]);
                                let convention = Convention {
                                    u_strips_a,
                                    k_over_padded_s,
                                    a_in_m1,
                                    b_padded_in_m1,
                                    k_stripped,
                                };
                                return Ok(ServerSession {
                                    proof,
                                    key: Zeroizing::new(key.to_vec()),
                                    convention,
                                });
                            }
                        }
                    }
                }
            }
        }
        Err(Error::SrpProof)
    }
}

/// The controller's side of one SRP exchange.
pub struct SrpClient {
    a: Zeroizing<U3072>,
    public: Padded,
}

impl std::fmt::Debug for SrpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrpClient").finish_non_exhaustive()
    }
}

/// The controller's values after processing B: its proof M1, the key K and the expected M2.
pub struct ClientSession {
    public: Padded,
    proof: Hash,
    key: Zeroizing<Hash>,
    expected_m2: Hash,
    s_leading_zero: bool,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession").finish_non_exhaustive()
    }
}

impl SrpClient {
    /// Starts with the private exponent `a` (32 random bytes).
    pub fn new(a: &[u8; SECRET_LEN]) -> Self {
        let a = Zeroizing::new(to_uint(a).expect("32 bytes"));
        let public = pad(&g().pow_bounded_exp(&*a, 256).retrieve());
        SrpClient { a, public }
    }

    /// A, padded to 384 bytes.
    pub fn public_key(&self) -> &[u8; GROUP_LEN] {
        &self.public
    }

    /// Computes M1 and K (ADK conventions) from the accessory's salt and B, which may arrive
    /// padded or stripped.
    pub fn process(
        &self,
        username: &[u8],
        password: &[u8],
        salt: &[u8],
        b_wire: &[u8],
    ) -> Result<ClientSession> {
        let b = parse_public(b_wire, "B")?;
        let b_pad = pad(&b);
        let u = to_uint(&h(&[&self.public, &b_pad])).expect("64 bytes");
        let x = x_of(salt, username, password);
        let base = Fe::new(&b).sub(&k().mul(&g().pow_bounded_exp(&*x, 512)));
        let exponent = Zeroizing::new(u.wrapping_mul(&*x).wrapping_add(&*self.a));
        let s = Zeroizing::new(pad(&base.pow_bounded_exp(&*exponent, 1040).retrieve()));
        let key = Zeroizing::new(h(&[strip(&s[..])]));
        let proof = proof_m1(username, salt, strip(&self.public), strip(&b_pad), &key[..]);
        let expected_m2 = h(&[&self.public, &proof, &key[..]]);
        Ok(ClientSession { public: self.public, proof, key, expected_m2, s_leading_zero: s[0] == 0 })
    }
}

impl ClientSession {
    /// A in the form to send (padded; the controller draws a until it has no leading zero).
    pub fn public_key(&self) -> &[u8; GROUP_LEN] {
        &self.public
    }

    /// The proof M1.
    pub fn proof(&self) -> &[u8; HASH_LEN] {
        &self.proof
    }

    /// The shared key K (64 bytes).
    pub fn key(&self) -> &[u8; HASH_LEN] {
        &self.key
    }

    /// True when none of A, S, K has a leading zero byte, so every accessory convention computes
    /// the same proof (research/pairing.md §2). Draw a new `a` otherwise.
    pub fn is_unambiguous(&self) -> bool {
        self.public[0] != 0 && !self.s_leading_zero && self.key[0] != 0
    }

    /// Checks the accessory's proof M2 in constant time (64 bytes, or fewer from a peer that
    /// strips leading zeros).
    pub fn verify_server(&self, m2: &[u8]) -> Result<()> {
        if m2.is_empty() || m2.len() > HASH_LEN {
            return Err(Error::SrpServerProof);
        }
        let mut padded = [0u8; HASH_LEN];
        padded[HASH_LEN - m2.len()..].copy_from_slice(m2);
        verify_slices_are_equal(&self.expected_m2, &padded).map_err(|_| Error::SrpServerProof)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn k_matches_research() {
        let k = pad(&k().retrieve());
        let k = strip(&k);
        assert!(hex::encode(k).starts_with("a9c2e2559bf0ebb5"));
        assert!(hex::encode(k).ends_with("8c3659e0"));
    }

    #[test]
    fn rejects_zero_and_oversized_public_values() {
        assert!(matches!(parse_public(&[0; 384], "A"), Err(Error::SrpPublicValue("A"))));
        assert!(matches!(parse_public(&n_padded(), "A"), Err(Error::SrpPublicValue("A"))));
        assert!(matches!(parse_public(&[1; 385], "A"), Err(Error::SrpPublicValue("A"))));
        assert!(parse_public(&[1], "A").is_ok());
    }
}
