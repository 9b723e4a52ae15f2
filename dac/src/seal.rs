//! Sealed batch data: the plaintext encrypted once under a fresh data key, the data key
//! wrapped for every member.
//!
//! ```text
//! magic "PDAC" | version u32 | batch u64 | committee id [32] | ephemeral X25519 key [32]
//! | body nonce [12] | members u16 | per member: name length u8, name, wrapped key [48]
//! | body: ChaCha20-Poly1305(data key, nonce, plaintext, aad = everything above)
//! ```
//! (integers little-endian). A member's wrapping key is HKDF-SHA-256 over the X25519
//! shared secret of the ephemeral key and the member's key (salt: the committee id; info:
//! the batch, both public keys and the member's name); the data key is wrapped with
//! ChaCha20-Poly1305 under it. The header is the body's associated data, so changing the
//! batch number, the committee or any wrapped key makes the body fail to authenticate.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use crate::committee::{Committee, parse_public_key};
use crate::{DacError, MemberKey};

/// The magic bytes.
pub const MAGIC: &[u8; 4] = b"PDAC";
/// The format version written.
pub const SEALED_VERSION: u32 = 1;
const WRAPPED: usize = 48;
const WRAP_AAD: &[u8] = b"pulse-dac v1 data key";

/// A parsed sealed object (the body still encrypted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The batch it holds.
    pub batch: u64,
    /// The committee it was sealed for ([`Committee::id`]).
    pub committee: [u8; 32],
    /// The ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The body's nonce.
    pub nonce: [u8; 12],
    /// Each member's name and wrapped data key.
    pub keys: Vec<(String, [u8; WRAPPED])>,
    /// The encrypted body.
    pub body: Vec<u8>,
}

fn header(s: &Sealed) -> Vec<u8> {
    let mut h = Vec::with_capacity(96 + s.keys.len() * (WRAPPED + 17));
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&SEALED_VERSION.to_le_bytes());
    h.extend_from_slice(&s.batch.to_le_bytes());
    h.extend_from_slice(&s.committee);
    h.extend_from_slice(&s.ephemeral);
    h.extend_from_slice(&s.nonce);
    h.extend_from_slice(&(s.keys.len() as u16).to_le_bytes());
    for (name, wrapped) in &s.keys {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(wrapped);
    }
    h
}

fn wrapping_cipher(
    shared: &[u8; 32],
    committee: &[u8; 32],
    batch: u64,
    ephemeral: &[u8; 32],
    member: &[u8; 32],
    name: &str,
) -> ChaCha20Poly1305 {
    let hk = Hkdf::<Sha256>::new(Some(committee), shared);
    let mut info = Vec::with_capacity(128);
    info.extend_from_slice(b"pulse-dac v1 wrap");
    info.extend_from_slice(&batch.to_le_bytes());
    info.extend_from_slice(ephemeral);
    info.extend_from_slice(member);
    info.extend_from_slice(name.as_bytes());
    let mut kek = Zeroizing::new([0u8; 32]);
    // 32 bytes is within HKDF-SHA-256's output limit.
    let _ = hk.expand(&info, kek.as_mut());
    ChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
}

impl Sealed {
    /// The object's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(self);
        out.extend_from_slice(&self.body);
        out
    }

    /// Parses an object (from IPFS: outside input).
    ///
    /// # Errors
    /// [`DacError::Malformed`] naming what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, DacError> {
        let bad = |what: &str| DacError::Malformed(what.to_owned());
        let mut r = bytes;
        let mut take = |n: usize, what: &str| -> Result<&[u8], DacError> {
            if r.len() < n {
                return Err(bad(&format!("it ends inside {what}")));
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(4, "the magic")? != MAGIC {
            return Err(bad(
                "it does not start with PDAC (is it plaintext batch data, or another file?)",
            ));
        }
        let version = u32::from_le_bytes(take(4, "the version")?.try_into().unwrap_or_default());
        if version != SEALED_VERSION {
            return Err(bad(&format!(
                "version {version} (this build reads version {SEALED_VERSION})"
            )));
        }
        let arr32 = |b: &[u8]| -> [u8; 32] { b.try_into().unwrap_or([0; 32]) };
        let batch = u64::from_le_bytes(take(8, "the batch")?.try_into().unwrap_or_default());
        let committee = arr32(take(32, "the committee id")?);
        let ephemeral = arr32(take(32, "the ephemeral key")?);
        let nonce: [u8; 12] = take(12, "the nonce")?.try_into().unwrap_or_default();
        let n = u16::from_le_bytes(take(2, "the member count")?.try_into().unwrap_or_default());
        if n == 0 || usize::from(n) > crate::committee::MAX_MEMBERS {
            return Err(bad(&format!(
                "{n} wrapped keys (1 to {} expected)",
                crate::committee::MAX_MEMBERS
            )));
        }
        let mut keys = Vec::with_capacity(usize::from(n));
        for i in 0..n {
            let len = take(1, "a member name's length")?[0];
            let name = std::str::from_utf8(take(usize::from(len), "a member name")?)
                .map_err(|_| bad(&format!("member name {i} is not UTF-8")))?
                .to_owned();
            let wrapped: [u8; WRAPPED] = take(WRAPPED, "a wrapped key")?
                .try_into()
                .unwrap_or([0; WRAPPED]);
            keys.push((name, wrapped));
        }
        if r.len() < 16 {
            return Err(bad("the body is shorter than its authentication tag"));
        }
        Ok(Self {
            batch,
            committee,
            ephemeral,
            nonce,
            keys,
            body: r.to_vec(),
        })
    }
}

/// Seals `plaintext` (batch `batch`'s data) for every member of `committee`.
///
/// # Errors
/// [`DacError::Committee`] for a member key that gives no shared secret (a low-order
/// point: nobody could open what is sealed for it).
pub fn seal(plaintext: &[u8], batch: u64, committee: &Committee) -> Result<Vec<u8>, DacError> {
    let mut rng = rand::rngs::OsRng;
    // One ephemeral key for every member of this batch (a static secret type so that it
    // serves several exchanges; zeroed when dropped at the end of this call).
    let eph = x25519_dalek::StaticSecret::random_from_rng(rng);
    let ephemeral = PublicKey::from(&eph);
    let id = committee.id();
    let mut data_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(data_key.as_mut());
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut keys = Vec::with_capacity(committee.members.len() + committee.readers.len());
    for (name, x25519) in committee.recipients() {
        let pk = parse_public_key(x25519).map_err(|reason| DacError::Committee {
            source_name: "the committee".into(),
            reason,
        })?;
        let shared = eph.diffie_hellman(&pk);
        if !shared.was_contributory() {
            return Err(DacError::Committee {
                source_name: "the committee".into(),
                reason: format!(
                    "{name}'s X25519 key is a low-order point: replace it with a key from `pulse committee key new`"
                ),
            });
        }
        let cipher = wrapping_cipher(
            shared.as_bytes(),
            &id,
            batch,
            ephemeral.as_bytes(),
            pk.as_bytes(),
            name,
        );
        let wrapped = cipher
            .encrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: data_key.as_ref(),
                    aad: WRAP_AAD,
                },
            )
            .map_err(|_| DacError::Refused("wrapping a data key failed".into()))?;
        let wrapped: [u8; WRAPPED] = wrapped
            .try_into()
            .map_err(|_| DacError::Refused("a wrapped key has the wrong length".into()))?;
        keys.push((name.to_owned(), wrapped));
    }
    drop(eph);
    let mut sealed = Sealed {
        batch,
        committee: id,
        ephemeral: *ephemeral.as_bytes(),
        nonce,
        keys,
        body: Vec::new(),
    };
    let aad = header(&sealed);
    sealed.body = ChaCha20Poly1305::new(Key::from_slice(data_key.as_ref()))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| DacError::Refused("encrypting the batch data failed".into()))?;
    Ok(sealed.to_bytes())
}

/// Opens sealed batch data with a member's key: checks that it was sealed for `committee`
/// and for batch `batch`, that the key is the member's the committee lists, unwraps the
/// data key and decrypts.
///
/// # Errors
/// [`DacError::Malformed`], or [`DacError::Refused`] saying why this key cannot open it
/// (another committee, another batch, not a member, a key that is not the member's, or
/// data that does not authenticate).
pub fn open(
    bytes: &[u8],
    batch: u64,
    committee: &Committee,
    key: &MemberKey,
) -> Result<Vec<u8>, DacError> {
    let s = Sealed::parse(bytes)?;
    if s.committee != committee.id() {
        return Err(DacError::Refused(format!(
            "batch {} was sealed for committee {}, not this one ({}): use the committee file in force when it was sealed",
            s.batch,
            hex::encode(&s.committee[..8]),
            hex::encode(&committee.id()[..8])
        )));
    }
    if s.batch != batch {
        return Err(DacError::Refused(format!(
            "the object holds batch {}, not batch {batch}",
            s.batch
        )));
    }
    let name = key.name();
    let (_, listed) = committee
        .recipients()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| {
            DacError::Refused(format!(
                "{name:?} is neither a member nor a reader of this committee"
            ))
        })?;
    if !listed.eq_ignore_ascii_case(&key.public_hex()) {
        return Err(DacError::Refused(format!(
            "this key is not the one the committee lists for {name} (its public key is {}…)",
            &key.public_hex()[..16]
        )));
    }
    let wrapped = s
        .keys
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, w)| w)
        .ok_or_else(|| DacError::Refused(format!("batch {batch} holds no key for {name}")))?;
    let ephemeral = PublicKey::from(s.ephemeral);
    let shared = key.secret().diffie_hellman(&ephemeral);
    let cipher = wrapping_cipher(
        shared.as_bytes(),
        &s.committee,
        s.batch,
        &s.ephemeral,
        key.public().as_bytes(),
        name,
    );
    let refused = || {
        DacError::Refused(format!(
            "batch {batch}'s data does not authenticate for {name}: it was altered, or sealed with another key"
        ))
    };
    let data_key = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: wrapped,
                    aad: WRAP_AAD,
                },
            )
            .map_err(|_| refused())?,
    );
    if data_key.len() != 32 {
        return Err(refused());
    }
    ChaCha20Poly1305::new(Key::from_slice(&data_key))
        .decrypt(
            Nonce::from_slice(&s.nonce),
            Payload {
                msg: &s.body,
                aad: &header(&s),
            },
        )
        .map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Member;

    fn committee(keys: &[&MemberKey], threshold: u32) -> Committee {
        let members = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                name: k.name().to_owned(),
                x25519: k.public_hex(),
                address: format!("0x{:040x}", i + 1),
            })
            .collect();
        Committee::new(threshold, members).expect("committee")
    }

    fn refused(r: Result<Vec<u8>, DacError>, expect: &str) {
        match r {
            Err(e) => assert!(e.to_string().contains(expect), "{e}"),
            Ok(_) => panic!("opened; expected a refusal naming {expect:?}"),
        }
    }

    #[test]
    fn every_member_opens_what_is_sealed_and_nobody_else() {
        let keys: Vec<MemberKey> = ["st-mary", "city-clinic", "north"]
            .iter()
            .map(|n| MemberKey::generate(n))
            .collect();
        let c = committee(&keys.iter().collect::<Vec<_>>(), 2);
        let data = br#"{"version":2,"batch":7,"chunks":[]}"#.repeat(50);
        let sealed = seal(&data, 7, &c).expect("seal");
        assert!(
            !sealed.windows(9).any(|w| w == b"\"version\""),
            "plaintext visible in the sealed object"
        );
        for k in &keys {
            assert_eq!(open(&sealed, 7, &c, k).expect("a member opens it"), data);
        }
        // Another batch number asked for, another committee, a non-member, a key that is
        // not the member's listed one.
        refused(open(&sealed, 8, &c, &keys[0]), "holds batch 7, not batch 8");
        let other = committee(&[&keys[0], &keys[1]], 1);
        refused(
            open(&sealed, 7, &other, &keys[0]),
            "was sealed for committee",
        );
        let outsider = MemberKey::generate("outsider");
        refused(
            open(&sealed, 7, &c, &outsider),
            "neither a member nor a reader",
        );
        let impostor = MemberKey::generate("north");
        refused(
            open(&sealed, 7, &c, &impostor),
            "not the one the committee lists",
        );
    }

    #[test]
    fn a_reader_opens_what_is_sealed_and_changes_the_committee_id() {
        let keys = [MemberKey::generate("a"), MemberKey::generate("b")];
        let plain = committee(&[&keys[0], &keys[1]], 1);
        let operator = MemberKey::generate("operator");
        let with_reader = Committee {
            readers: vec![crate::committee::Reader {
                name: "operator".into(),
                x25519: operator.public_hex(),
            }],
            ..plain.clone()
        };
        with_reader.check("test").expect("valid");
        assert_ne!(with_reader.id(), plain.id());
        let sealed = seal(b"slot data", 4, &with_reader).expect("seal");
        assert_eq!(
            open(&sealed, 4, &with_reader, &operator).expect("the reader opens it"),
            b"slot data"
        );
        assert_eq!(
            open(&sealed, 4, &with_reader, &keys[1]).expect("a member still does"),
            b"slot data"
        );
        // Sealed without the reader, the reader cannot open it.
        let members_only = seal(b"slot data", 4, &plain).expect("seal");
        refused(
            open(&members_only, 4, &plain, &operator),
            "neither a member nor a reader",
        );
        // A reader named as a member, or with a member's key, is refused.
        for (name, key) in [("a", operator.public_hex()), ("x", keys[0].public_hex())] {
            let bad = Committee {
                readers: vec![crate::committee::Reader {
                    name: name.into(),
                    x25519: key,
                }],
                ..plain.clone()
            };
            let e = bad.check("test").expect_err("clash");
            assert!(
                e.to_string().contains("shares a name or an X25519 key"),
                "{e}"
            );
        }
    }

    #[test]
    fn any_change_fails_to_authenticate_or_parse() {
        let keys = [MemberKey::generate("a"), MemberKey::generate("b")];
        let c = committee(&[&keys[0], &keys[1]], 1);
        let sealed = seal(b"slot data", 3, &c).expect("seal");
        let s = Sealed::parse(&sealed).expect("parse");
        assert_eq!(s.to_bytes(), sealed);
        // A flipped bit in the body, in b's wrapped key (a still opens: its own is intact;
        // b does not), in the nonce, in the ephemeral key.
        let mut body = sealed.clone();
        *body.last_mut().expect("bytes") ^= 1;
        refused(open(&body, 3, &c, &keys[0]), "does not authenticate for a");
        let mut t = s.clone();
        t.keys[1].1[0] ^= 1;
        refused(
            open(&t.to_bytes(), 3, &c, &keys[1]),
            "does not authenticate for b",
        );
        refused(
            open(&t.to_bytes(), 3, &c, &keys[0]),
            "does not authenticate for a",
        );
        let mut t = s.clone();
        t.nonce[0] ^= 1;
        refused(
            open(&t.to_bytes(), 3, &c, &keys[0]),
            "does not authenticate",
        );
        let mut t = s.clone();
        t.ephemeral[0] ^= 1;
        refused(
            open(&t.to_bytes(), 3, &c, &keys[0]),
            "does not authenticate",
        );
        // The batch number rewritten in the header (and asked for as such).
        let mut t = s.clone();
        t.batch = 4;
        refused(
            open(&t.to_bytes(), 4, &c, &keys[0]),
            "does not authenticate",
        );
        // Truncation anywhere, plaintext, another version.
        for n in [0, 3, 20, 90, sealed.len() - 17] {
            assert!(Sealed::parse(&sealed[..n]).is_err(), "{n} bytes parsed");
        }
        let e = Sealed::parse(br#"{"version":2}"#).expect_err("plaintext");
        assert!(e.to_string().contains("PDAC"), "{e}");
        let mut v = sealed.clone();
        v[4] = 9;
        let e = Sealed::parse(&v).expect_err("version");
        assert!(e.to_string().contains("version 9"), "{e}");
    }

    #[test]
    fn a_low_order_member_key_is_refused_when_sealing() {
        let k = MemberKey::generate("a");
        let mut c = committee(&[&k], 1);
        c.members.push(Member {
            name: "zero".into(),
            x25519: "00".repeat(32),
            address: format!("0x{:040x}", 9),
        });
        let e = seal(b"x", 1, &c).expect_err("low order");
        assert!(
            e.to_string()
                .contains("zero's X25519 key is a low-order point"),
            "{e}"
        );
    }
}
