//! The shapes of the node's answers, read leniently where Kubo and js-ipfs differ.
//!
//! Kubo encodes some numbers as strings (`"Size":"12"`, `"Repo":"15"`) where js-ipfs
//! writes JSON numbers; every such field accepts both.

use serde::Deserialize;

use crate::IpfsError;

/// A JSON value that Kubo writes as a string and js-ipfs as a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Lenient {
    Number(u64),
    Text(String),
}

impl Lenient {
    fn into_text(self) -> String {
        match self {
            Lenient::Number(n) => n.to_string(),
            Lenient::Text(s) => s,
        }
    }
}

/// One line of `/api/v0/add`'s answer.
#[derive(Debug, Deserialize)]
struct AddLine {
    #[serde(rename = "Hash")]
    hash: Option<String>,
    #[serde(rename = "Size")]
    size: Option<Lenient>,
}

/// What `/api/v0/add` reported for the one file sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Added {
    pub(crate) hash: String,
    pub(crate) size: Option<u64>,
}

/// Reads `/api/v0/add`'s newline-delimited JSON: the last object with a `Hash` is the
/// file's (progress objects, if any, have none).
pub(crate) fn parse_add(body: &[u8]) -> Result<Added, IpfsError> {
    const ENDPOINT: &str = "/api/v0/add";
    let bad = |detail: String| IpfsError::BadAnswer {
        endpoint: ENDPOINT,
        detail,
    };
    let text = std::str::from_utf8(body).map_err(|_| bad("the answer is not UTF-8".into()))?;
    let mut found = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parsed: AddLine =
            serde_json::from_str(line).map_err(|e| bad(format!("{e} in {}", excerpt(line))))?;
        if let Some(hash) = parsed.hash {
            let size = match parsed.size {
                None => None,
                Some(size) => {
                    let size = size.into_text();
                    Some(size.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "Size {size:?} is not a number in {}",
                            excerpt(line)
                        ))
                    })?)
                }
            };
            found = Some(Added { hash, size });
        }
    }
    found.ok_or_else(|| bad(format!("no Hash in {}", excerpt(text))))
}

/// The node's software and repository versions, from `/api/v0/version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeVersion {
    /// The implementation's version (`0.29.0` for Kubo, `0.18.1` for js-ipfs 0.66's core).
    pub version: String,
    /// The source commit, when the node says.
    pub commit: Option<String>,
    /// The repository format version (Kubo sends a string, js-ipfs a number).
    pub repo: Option<String>,
    /// The platform, such as `amd64/linux`.
    pub system: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VersionAnswer {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Commit")]
    commit: Option<Lenient>,
    #[serde(rename = "Repo")]
    repo: Option<Lenient>,
    #[serde(rename = "System")]
    system: Option<String>,
}

pub(crate) fn parse_version(body: &[u8]) -> Result<NodeVersion, IpfsError> {
    let answer: VersionAnswer = serde_json::from_slice(body).map_err(|e| IpfsError::BadAnswer {
        endpoint: "/api/v0/version",
        detail: format!("{e} in {}", excerpt(&String::from_utf8_lossy(body))),
    })?;
    let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
    Ok(NodeVersion {
        version: answer.version,
        commit: answer.commit.map(Lenient::into_text).and_then(non_empty),
        repo: answer.repo.map(Lenient::into_text).and_then(non_empty),
        system: answer.system.and_then(non_empty),
    })
}

#[derive(Debug, Deserialize)]
struct PinAnswer {
    #[serde(rename = "Pins")]
    pins: Vec<String>,
}

/// The CIDs (as text) that `/api/v0/pin/add` says it pinned.
pub(crate) fn parse_pins(body: &[u8]) -> Result<Vec<String>, IpfsError> {
    // With progress off the answer is one object; take the last line to be safe.
    let text = String::from_utf8_lossy(body);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let answer: PinAnswer = serde_json::from_str(last).map_err(|e| IpfsError::BadAnswer {
        endpoint: "/api/v0/pin/add",
        detail: format!("{e} in {}", excerpt(&text)),
    })?;
    Ok(answer.pins)
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    #[serde(rename = "Message")]
    message: String,
}

/// The message of an error answer: Kubo's (and js-ipfs's) `{"Message":…,"Code":…,"Type":…}`,
/// or else the text itself.
pub(crate) fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(answer) => answer.message,
        Err(_) => excerpt(String::from_utf8_lossy(body).trim()),
    }
}

/// At most 300 characters of an answer, for messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_accepts_size_as_string_or_number() {
        let kubo = parse_add(b"{\"Name\":\"data\",\"Hash\":\"bafkx\",\"Size\":\"12\"}\n")
            .expect("Kubo's answer");
        assert_eq!(
            kubo,
            Added {
                hash: "bafkx".into(),
                size: Some(12)
            }
        );
        let js = parse_add(b"{\"Name\":\"bafkx\",\"Hash\":\"bafkx\",\"Size\":12}")
            .expect("js-ipfs's answer");
        assert_eq!(
            js,
            Added {
                hash: "bafkx".into(),
                size: Some(12)
            }
        );
    }

    #[test]
    fn add_takes_the_last_hash_and_skips_progress() {
        let body = b"{\"Name\":\"data\",\"Bytes\":262144}\n{\"Name\":\"data\",\"Hash\":\"b1\"}\n";
        assert_eq!(parse_add(body).expect("answer").hash, "b1");
    }

    #[test]
    fn add_rejects_what_it_cannot_read() {
        for body in [
            &b""[..],
            b"{\"Name\":\"data\"}",
            b"<html>",
            b"{\"Hash\":\"b\",\"Size\":\"twelve\"}",
            b"{\"Hash\":\"b\",\"Size\":-1}",
            b"{\"Hash\":7}",
        ] {
            let err = parse_add(body).expect_err("unreadable");
            assert!(
                matches!(
                    err,
                    IpfsError::BadAnswer {
                        endpoint: "/api/v0/add",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn version_of_kubo_and_js_ipfs() {
        let kubo = parse_version(
            br#"{"Version":"0.29.0","Commit":"3f0947b","Repo":"15","System":"amd64/linux","Golang":"go1.22.4"}"#,
        )
        .expect("Kubo's answer");
        assert_eq!(kubo.repo.as_deref(), Some("15"));
        assert_eq!(kubo.commit.as_deref(), Some("3f0947b"));
        let js = parse_version(
            br#"{"Version":"0.18.1","Commit":"","Repo":12,"System":"x64/linux","Golang":"Node.js v20"}"#,
        )
        .expect("js-ipfs's answer");
        assert_eq!(
            js,
            NodeVersion {
                version: "0.18.1".into(),
                commit: None,
                repo: Some("12".into()),
                system: Some("x64/linux".into()),
            }
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"Message":"invalid path","Code":0,"Type":"error"}"#),
            "invalid path"
        );
        assert_eq!(
            error_message(b"404 page not found\n"),
            "\"404 page not found\""
        );
    }

    #[test]
    fn excerpts_are_bounded() {
        let long = "é".repeat(1000);
        assert!(excerpt(&long).chars().count() < 310);
    }
}
