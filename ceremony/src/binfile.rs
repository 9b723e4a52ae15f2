//! The sectioned binary container of iden3's files (`.ptau`, `.r1cs`, `.zkey`, `.wtns`), as
//! `@iden3/binfileutils` reads and writes it.
//!
//! A file is a four-byte magic (`ptau`, `r1cs`, `zkey`, `wtns`), a version (`u32`), the
//! number of sections (`u32`), then each section as its type (`u32`), its length in bytes
//! (`u64`) and its bytes. All integers are little-endian. Readers find sections by type;
//! a type may occur once.

use std::io::{self, Write};
use std::ops::Range;

use crate::FormatError;

/// A parsed container: the whole file in memory and where each section lies in it.
#[derive(Debug, Clone)]
pub struct BinFile {
    bytes: Vec<u8>,
    version: u32,
    sections: Vec<(u32, Range<usize>)>,
}

impl BinFile {
    /// Parses `bytes` as a container with magic `magic`, checking that the sections tile
    /// the file exactly.
    ///
    /// # Errors
    /// [`FormatError`] naming what is wrong: another magic, a section running past the end,
    /// a repeated section type, bytes after the last section.
    pub fn parse(bytes: Vec<u8>, magic: &[u8; 4]) -> Result<Self, FormatError> {
        if bytes.len() < 12 || &bytes[..4] != magic {
            return Err(FormatError::new(format!(
                "not a {} file (it does not start with the magic {:?})",
                String::from_utf8_lossy(magic),
                String::from_utf8_lossy(magic)
            )));
        }
        let version = u32_at(&bytes, 4);
        let count = u32_at(&bytes, 8) as usize;
        let mut sections = Vec::with_capacity(count.min(64));
        let mut at = 12usize;
        for i in 0..count {
            if bytes.len() - at < 12 {
                return Err(FormatError::new(format!(
                    "section {i} of {count}: its header runs past the end of the file"
                )));
            }
            let kind = u32_at(&bytes, at);
            let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("8 bytes"));
            at += 12;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= bytes.len() - at)
                .ok_or_else(|| {
                    FormatError::new(format!(
                        "section of type {kind} declares {len} bytes, more than the file holds"
                    ))
                })?;
            if sections.iter().any(|(k, _)| *k == kind) {
                return Err(FormatError::new(format!(
                    "section type {kind} occurs twice"
                )));
            }
            sections.push((kind, at..at + len));
            at += len;
        }
        if at != bytes.len() {
            return Err(FormatError::new(format!(
                "{} bytes follow the last section",
                bytes.len() - at
            )));
        }
        Ok(Self {
            bytes,
            version,
            sections,
        })
    }

    /// The file's version field.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The bytes of section `kind`, if present.
    pub fn section(&self, kind: u32) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| &self.bytes[r.clone()])
    }

    /// The bytes of section `kind` (named `what` in the error).
    ///
    /// # Errors
    /// [`FormatError`] when the file has no such section.
    pub fn required(&self, kind: u32, what: &str) -> Result<&[u8], FormatError> {
        self.section(kind)
            .ok_or_else(|| FormatError::new(format!("section {kind} ({what}) is missing")))
    }
}

/// Writes a container: the header, then each `(type, bytes)` section in order.
///
/// # Errors
/// Whatever `w` returns.
pub fn write<W: Write>(
    w: &mut W,
    magic: &[u8; 4],
    version: u32,
    sections: &[(u32, &[u8])],
) -> io::Result<()> {
    w.write_all(magic)?;
    w.write_all(&version.to_le_bytes())?;
    w.write_all(&(sections.len() as u32).to_le_bytes())?;
    for (kind, bytes) in sections {
        w.write_all(&kind.to_le_bytes())?;
        w.write_all(&(bytes.len() as u64).to_le_bytes())?;
        w.write_all(bytes)?;
    }
    Ok(())
}

/// A little-endian `u32` at `at` (the caller has checked the length).
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// A cursor over a section's bytes whose reads fail with a message naming the section.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Self { bytes, at: 0, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.bytes.len() - self.at < n {
            return Err(FormatError::new(format!(
                "{} ends early (needed {n} more bytes at offset {})",
                self.what, self.at
            )));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(crate) fn finish(&self) -> Result<(), FormatError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(FormatError::new(format!(
                "{} has {} unexpected bytes at its end",
                self.what,
                self.remaining()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut out = Vec::new();
        write(&mut out, b"zkey", 1, &[(1, &[1, 2, 3]), (2, &[])]).unwrap();
        let f = BinFile::parse(out.clone(), b"zkey").unwrap();
        assert_eq!(f.version(), 1);
        assert_eq!(f.section(1), Some(&[1u8, 2, 3][..]));
        assert_eq!(f.section(2), Some(&[][..]));
        assert!(
            f.required(3, "H")
                .unwrap_err()
                .to_string()
                .contains("section 3 (H)")
        );
        assert!(BinFile::parse(out.clone(), b"ptau").is_err());
        let mut extra = out.clone();
        extra.push(0);
        assert!(
            BinFile::parse(extra, b"zkey")
                .unwrap_err()
                .to_string()
                .contains("follow")
        );
        let mut short = out.clone();
        short.truncate(out.len() - 1);
        assert!(BinFile::parse(short, b"zkey").is_err());
        let mut twice = Vec::new();
        write(&mut twice, b"zkey", 1, &[(1, &[]), (1, &[])]).unwrap();
        assert!(
            BinFile::parse(twice, b"zkey")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
