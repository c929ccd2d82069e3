//! Bearer tokens: the API server's audit webhook (and an admission webhook's kubeconfig) can
//! send `Authorization: Bearer TOKEN`. The accepted tokens are the non-empty lines of a file, so
//! that a new token can be added before the old one is removed; the file is read again when
//! it changes.
//!
//! Tokens are compared by their SHA-256 digests in constant time: neither the content nor the
//! length of a token leaks through timing.

use ring::digest::{digest, SHA256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no token in it (one per line)")]
    Empty { path: String },
}

/// The accepted tokens, as digests.
#[derive(Clone)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Tokens {
    pub fn parse(text: &str, path: &Path) -> Result<Tokens, TokenError> {
        let digests: Vec<[u8; 32]> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| sha256(l.as_bytes()))
            .collect();
        if digests.is_empty() {
            return Err(TokenError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(Tokens { digests })
    }

    pub fn from_file(path: &Path) -> Result<Tokens, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Tokens::parse(&text, path)
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(token) = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
        else {
            return false;
        };
        let presented = sha256(token.trim_ascii());
        // Every digest is compared, so the position of a match does not show either.
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&presented))
            .into()
    }
}

/// Tokens read from a file, replaced when [`TokenFile::reload`] finds it changed.
#[derive(Clone)]
pub struct TokenFile {
    pub path: PathBuf,
    current: Arc<RwLock<Tokens>>,
}

impl TokenFile {
    pub fn open(path: &Path) -> Result<TokenFile, TokenError> {
        Ok(TokenFile {
            path: path.to_path_buf(),
            current: Arc::new(RwLock::new(Tokens::from_file(path)?)),
        })
    }

    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        self.current
            .read()
            .map(|t| t.allows(authorization))
            .unwrap_or(false)
    }

    /// Reads the file again; on error the tokens in use stay.
    pub fn reload(&self) -> Result<(), TokenError> {
        let t = Tokens::from_file(&self.path)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = t;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listed_token_passes() {
        let t = Tokens::parse(
            "# audit webhook\nold-token\n\n  new-token  \n",
            Path::new("t"),
        )
        .unwrap();
        assert!(t.allows(Some(b"Bearer old-token")));
        assert!(t.allows(Some(b"Bearer new-token")));
        assert!(!t.allows(Some(b"Bearer new-toke")));
        assert!(!t.allows(Some(b"Bearer ")));
        assert!(!t.allows(Some(b"Basic bmV3LXRva2Vu")));
        assert!(!t.allows(Some(b"new-token")));
        assert!(!t.allows(Some(b"Bearer # audit webhook")));
        assert!(!t.allows(None));
        let e = Tokens::parse("\n# nothing\n", Path::new("tokens.txt"))
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "tokens.txt: no token in it (one per line)");
    }
}
