//! The committee: its members (a name, an X25519 key for the batch data, an Ethereum address
//! for attestations) and the threshold of attestations L1 asks for.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::PublicKey;

use crate::DacError;

/// The committee file's format version.
pub const COMMITTEE_VERSION: u32 = 1;
/// The most members a committee has (the sealed header lists one wrapped key each).
pub const MAX_MEMBERS: usize = 64;

/// One member, as `committee.json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Its name: `[A-Za-z0-9_-]{1,64}` (a hospital).
    pub name: String,
    /// Its X25519 public key, hex (64 digits): batch data keys are wrapped for it.
    pub x25519: String,
    /// The Ethereum address its attestations are signed with (`0x` and 40 hex digits).
    pub address: String,
}

/// A reader: a party that batch data keys are also wrapped for, but that does not attest
/// (the operator, which sequences every transaction in plaintext anyway and needs the data
/// to rebuild its state after losing its disk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reader {
    /// Its name: `[A-Za-z0-9_-]{1,64}`, distinct from every member's.
    pub name: String,
    /// Its X25519 public key, hex (64 digits).
    pub x25519: String,
}

/// The committee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Committee {
    /// [`COMMITTEE_VERSION`].
    pub version: u32,
    /// Attestations L1 requires per batch (`1 ≤ k ≤ members`).
    pub threshold: u32,
    /// The members, in order.
    pub members: Vec<Member>,
    /// Readers (not members: no attestation, not counted by L1), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<Reader>,
}

/// Whether `name` is a member name: 1 to 64 of `A-Z a-z 0-9 - _`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An X25519 public key from 64 hex digits.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_public_key(text: &str) -> Result<PublicKey, String> {
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{text:?} is not an X25519 public key (64 hex digits)"))?;
    Ok(PublicKey::from(bytes))
}

impl Committee {
    /// A committee of `members` with threshold `threshold`, checked.
    ///
    /// # Errors
    /// As [`Committee::check`].
    pub fn new(threshold: u32, members: Vec<Member>) -> Result<Self, DacError> {
        let c = Self {
            version: COMMITTEE_VERSION,
            threshold,
            members,
            readers: Vec::new(),
        };
        c.check("the new committee")?;
        Ok(c)
    }

    /// Parses and checks `committee.json` (`source_name` names it in errors).
    ///
    /// # Errors
    /// [`DacError::Committee`] naming the field and the problem.
    pub fn from_json(text: &str, source_name: &str) -> Result<Self, DacError> {
        let c: Self = serde_json::from_str(text).map_err(|e| DacError::Committee {
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
        c.check(source_name)?;
        Ok(c)
    }

    /// Reads and checks a committee file.
    ///
    /// # Errors
    /// [`DacError::Committee`] naming the file: unreadable, or not a valid committee.
    pub fn load(path: &std::path::Path) -> Result<Self, DacError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DacError::Committee {
            source_name: name.clone(),
            reason: format!(
                "cannot read it ({e}); give the committee.json `pulse committee init` wrote"
            ),
        })?;
        Self::from_json(&text, &name)
    }

    /// The committee as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the version, the threshold, and that every member is well formed and
    /// distinct in name, key and address.
    ///
    /// # Errors
    /// [`DacError::Committee`].
    pub fn check(&self, source_name: &str) -> Result<(), DacError> {
        let bad = |reason: String| DacError::Committee {
            source_name: source_name.to_owned(),
            reason,
        };
        if self.version != COMMITTEE_VERSION {
            return Err(bad(format!(
                "version {} (this build reads version {COMMITTEE_VERSION})",
                self.version
            )));
        }
        let n = self.members.len();
        if n == 0 || n > MAX_MEMBERS {
            return Err(bad(format!(
                "{n} members: a committee has 1 to {MAX_MEMBERS}"
            )));
        }
        if self.threshold == 0 || self.threshold as usize > n {
            return Err(bad(format!(
                "threshold {} with {n} members: it must be between 1 and {n}",
                self.threshold
            )));
        }
        for (i, m) in self.members.iter().enumerate() {
            if !valid_name(&m.name) {
                return Err(bad(format!(
                    "member {i}: name {:?} must be 1 to 64 of A-Z a-z 0-9 - _",
                    m.name.chars().take(64).collect::<String>()
                )));
            }
            parse_public_key(&m.x25519).map_err(|e| bad(format!("member {}: {e}", m.name)))?;
            let addr_ok = m.address.len() == 42
                && m.address.starts_with("0x")
                && m.address[2..].chars().all(|c| c.is_ascii_hexdigit());
            if !addr_ok {
                return Err(bad(format!(
                    "member {}: address {:?} is not an Ethereum address (0x and 40 hex digits)",
                    m.name, m.address
                )));
            }
            for other in &self.members[..i] {
                let clash = if other.name == m.name {
                    Some("name")
                } else if other.x25519.eq_ignore_ascii_case(&m.x25519) {
                    Some("X25519 key")
                } else if other.address.eq_ignore_ascii_case(&m.address) {
                    Some("address")
                } else {
                    None
                };
                if let Some(what) = clash {
                    return Err(bad(format!(
                        "members {} and {} share a {what}: each member needs its own",
                        other.name, m.name
                    )));
                }
            }
        }
        if n + self.readers.len() > MAX_MEMBERS {
            return Err(bad(format!(
                "{n} members and {} readers: at most {MAX_MEMBERS} in all",
                self.readers.len()
            )));
        }
        for (i, r) in self.readers.iter().enumerate() {
            if !valid_name(&r.name) {
                return Err(bad(format!(
                    "reader {i}: name {:?} must be 1 to 64 of A-Z a-z 0-9 - _",
                    r.name.chars().take(64).collect::<String>()
                )));
            }
            parse_public_key(&r.x25519).map_err(|e| bad(format!("reader {}: {e}", r.name)))?;
            let earlier = self
                .members
                .iter()
                .map(|m| (&m.name, &m.x25519))
                .chain(self.readers[..i].iter().map(|o| (&o.name, &o.x25519)));
            for (name, key) in earlier {
                if *name == r.name || key.eq_ignore_ascii_case(&r.x25519) {
                    return Err(bad(format!(
                        "reader {} shares a name or an X25519 key with {name}: each needs its own",
                        r.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The committee's id: SHA-256 over its version, threshold and members (names, keys,
    /// addresses, lowercased), so a sealed batch names the member set it was sealed for.
    pub fn id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"pulse-dac committee v1");
        h.update(self.version.to_le_bytes());
        h.update(self.threshold.to_le_bytes());
        for m in &self.members {
            for field in [&m.name, &m.x25519, &m.address] {
                let lower = field.to_ascii_lowercase();
                h.update((lower.len() as u32).to_le_bytes());
                h.update(lower.as_bytes());
            }
        }
        // Readers only when there are some: a committee without readers keeps its id.
        if !self.readers.is_empty() {
            h.update(b"readers");
            for r in &self.readers {
                for field in [&r.name, &r.x25519] {
                    let lower = field.to_ascii_lowercase();
                    h.update((lower.len() as u32).to_le_bytes());
                    h.update(lower.as_bytes());
                }
            }
        }
        h.finalize().into()
    }

    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Every party data keys are wrapped for (members, then readers): name and X25519
    /// public key (hex).
    pub fn recipients(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members
            .iter()
            .map(|m| (m.name.as_str(), m.x25519.as_str()))
            .chain(
                self.readers
                    .iter()
                    .map(|r| (r.name.as_str(), r.x25519.as_str())),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, key: u8, addr: u8) -> Member {
        Member {
            name: name.into(),
            x25519: hex::encode([key; 32]),
            address: format!("0x{}", hex::encode([addr; 20])),
        }
    }

    #[test]
    fn a_committee_file_is_checked() {
        let good = Committee::new(
            2,
            vec![member("a", 1, 1), member("b", 2, 2), member("c", 3, 3)],
        )
        .expect("good");
        let back = Committee::from_json(&good.to_json(), "committee.json").expect("round trip");
        assert_eq!(back, good);
        assert_eq!(back.id(), good.id());
        let cases: Vec<(Committee, &str)> = vec![
            (
                Committee {
                    threshold: 0,
                    ..good.clone()
                },
                "threshold 0 with 3 members",
            ),
            (
                Committee {
                    threshold: 4,
                    ..good.clone()
                },
                "between 1 and 3",
            ),
            (
                Committee {
                    version: 2,
                    ..good.clone()
                },
                "version 2",
            ),
            (
                Committee {
                    members: vec![],
                    ..good.clone()
                },
                "0 members",
            ),
            (
                Committee {
                    members: vec![member("a", 1, 1), member("a", 2, 2)],
                    threshold: 1,
                    ..good.clone()
                },
                "share a name",
            ),
            (
                Committee {
                    members: vec![member("a", 1, 1), member("b", 1, 2)],
                    threshold: 1,
                    ..good.clone()
                },
                "share a X25519 key",
            ),
            (
                Committee {
                    members: vec![member("a", 1, 1), member("b", 2, 1)],
                    threshold: 1,
                    ..good.clone()
                },
                "share a address",
            ),
            (
                Committee {
                    members: vec![member("a b", 1, 1)],
                    threshold: 1,
                    ..good.clone()
                },
                "must be 1 to 64",
            ),
        ];
        for (c, expect) in cases {
            let e = c.check("committee.json").expect_err(expect).to_string();
            assert!(
                e.contains(expect) && e.starts_with("committee committee.json"),
                "{e}"
            );
        }
        let mut bad_key = good.clone();
        bad_key.members[1].x25519 = "zz".into();
        let e = bad_key.check("c").expect_err("key").to_string();
        assert!(e.contains("member b") && e.contains("64 hex digits"), "{e}");
        let mut bad_addr = good.clone();
        bad_addr.members[2].address = "0x1234".into();
        let e = bad_addr.check("c").expect_err("address").to_string();
        assert!(e.contains("not an Ethereum address"), "{e}");
        let e = Committee::from_json("{\"version\":1}", "c.json")
            .expect_err("missing")
            .to_string();
        assert!(e.contains("missing field"), "{e}");
        // The id changes with any member or the threshold.
        let mut other = good.clone();
        other.threshold = 3;
        assert_ne!(other.id(), good.id());
    }
}
