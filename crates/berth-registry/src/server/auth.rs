//! Access control for `berth registry serve`: none, HTTP basic against an
//! htpasswd file (bcrypt entries, as `htpasswd -B` writes them), or bearer
//! tokens that the server issues itself at `/token` to users of that file
//! (the flow docker's token auth uses: `401` with a `Bearer` challenge, the
//! client trades its credentials for a token scoped to the repository).
//!
//! Tokens are `base64url(claims).base64url(hmac-sha256(claims))` under a
//! key made at start, so they die with the server process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// How the server authenticates clients.
#[derive(Debug, Clone, Default)]
pub enum AuthMode {
    #[default]
    None,
    /// HTTP basic against an htpasswd file.
    Basic { htpasswd: PathBuf, realm: String },
    /// Bearer tokens issued at `<server>/token` against an htpasswd file.
    Token { htpasswd: PathBuf, service: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("read htpasswd file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("htpasswd file {path} line {line}: only bcrypt entries (htpasswd -B) are supported")]
    Entry { path: PathBuf, line: usize },
}

/// Users and their bcrypt hashes.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    pub fn read(path: &Path) -> Result<Htpasswd, AuthSetupError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthSetupError::Read { path: path.into(), source })?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((u, h)) if h.starts_with("$2") => {
                    users.insert(u.to_owned(), h.to_owned());
                }
                _ => return Err(AuthSetupError::Entry { path: path.into(), line: i + 1 }),
            }
        }
        Ok(Htpasswd { users })
    }

    /// A bcrypt htpasswd line for `user` (what `htpasswd -Bbn` prints).
    pub fn entry(user: &str, password: &str) -> String {
        format!("{user}:{}", bcrypt::hash(password, 5).expect("bcrypt hash"))
    }

    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.users.get(user).is_some_and(|h| bcrypt::verify(password, h).unwrap_or(false))
    }
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `repository` or `registry`.
    pub kind: &'static str,
    pub name: String,
    /// `pull`, `push`, `delete`, or `*`.
    pub action: &'static str,
}

impl Access {
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.action)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    access: Vec<Granted>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Granted {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

/// The running authenticator.
pub struct Authenticator {
    pub mode: AuthMode,
    users: Htpasswd,
    key: ring::hmac::Key,
}

pub const TOKEN_LIFETIME_SECS: u64 = 300;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Basic credentials from an `Authorization` header.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

impl Authenticator {
    pub fn new(mode: AuthMode) -> Result<Authenticator, AuthSetupError> {
        let users = match &mode {
            AuthMode::None => Htpasswd::default(),
            AuthMode::Basic { htpasswd, .. } | AuthMode::Token { htpasswd, .. } => Htpasswd::read(htpasswd)?,
        };
        let mut k = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut k);
        Ok(Authenticator { mode, users, key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k) })
    }

    /// Whether a request with this `Authorization` header may do `access`
    /// (`None`: the ping, which needs only a valid identity).
    pub fn allowed(&self, authorization: Option<&str>, access: Option<&Access>) -> bool {
        match &self.mode {
            AuthMode::None => true,
            AuthMode::Basic { .. } => {
                authorization.and_then(basic_credentials).is_some_and(|(u, p)| self.users.verify(&u, &p))
            }
            AuthMode::Token { .. } => {
                let Some(tok) = authorization.and_then(|h| h.trim().strip_prefix("Bearer ").or_else(|| h.trim().strip_prefix("bearer "))) else {
                    return false;
                };
                let Some(claims) = self.verify_token(tok.trim()) else { return false };
                match access {
                    None => true,
                    Some(a) => claims.access.iter().any(|g| {
                        g.kind == a.kind && g.name == a.name && g.actions.iter().any(|x| x == a.action || x == "*")
                    }),
                }
            }
        }
    }

    /// The `WWW-Authenticate` challenge for a refused request.
    pub fn challenge(&self, realm_base: &str, access: &[Access]) -> String {
        match &self.mode {
            AuthMode::None => String::new(),
            AuthMode::Basic { realm, .. } => format!("Basic realm=\"{realm}\""),
            AuthMode::Token { service, .. } => {
                let mut c = format!("Bearer realm=\"{realm_base}/token\",service=\"{service}\"");
                if !access.is_empty() {
                    let scopes: Vec<String> = access.iter().map(Access::scope).collect();
                    c.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
                }
                c
            }
        }
    }

    /// Answer a token request: the user's basic credentials (or none, for
    /// which nothing is granted) and the scopes asked for.
    pub fn issue_token(&self, authorization: Option<&str>, scopes: &[String]) -> Option<String> {
        let (user, pass) = authorization.and_then(basic_credentials)?;
        if !self.users.verify(&user, &pass) {
            return None;
        }
        let access = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let kind = parts.next()?;
                // repository names hold no ':', but registry:catalog:* does
                let (name, actions) = match (parts.next(), parts.next()) {
                    (Some(n), Some(a)) => (n, a),
                    _ => return None,
                };
                Some(Granted { kind: kind.into(), name: name.into(), actions: actions.split(',').map(str::to_owned).collect() })
            })
            .collect();
        let claims = Claims { sub: user, exp: now() + TOKEN_LIFETIME_SECS, access };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let sig = ring::hmac::sign(&self.key, body.as_bytes());
        Some(format!("{body}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    fn verify_token(&self, tok: &str) -> Option<Claims> {
        let (body, sig) = tok.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        ring::hmac::verify(&self.key, body.as_bytes(), &sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (claims.exp > now()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(dir: &Path) -> PathBuf {
        let p = dir.join("htpasswd");
        std::fs::write(&p, format!("# users\n{}\n", Htpasswd::entry("alice", "s3cret"))).unwrap();
        p
    }

    #[test]
    fn basic_auth_checks_bcrypt_entries() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authenticator::new(AuthMode::Basic { htpasswd: users(dir.path()), realm: "r".into() }).unwrap();
        let hdr = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        assert!(a.allowed(Some(&hdr("alice", "s3cret")), None));
        assert!(!a.allowed(Some(&hdr("alice", "nope")), None));
        assert!(!a.allowed(None, None));
        assert_eq!(a.challenge("http://x", &[]), "Basic realm=\"r\"");
        std::fs::write(dir.path().join("plain"), "bob:plain\n").unwrap();
        assert!(Htpasswd::read(&dir.path().join("plain")).is_err());
    }

    #[test]
    fn tokens_grant_what_was_asked_for_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authenticator::new(AuthMode::Token { htpasswd: users(dir.path()), service: "berth".into() }).unwrap();
        let basic = format!("Basic {}", STANDARD.encode("alice:s3cret"));
        assert!(a.issue_token(Some(&format!("Basic {}", STANDARD.encode("alice:x"))), &[]).is_none());
        let tok = a.issue_token(Some(&basic), &["repository:a/b:pull,push".into()]).unwrap();
        let bearer = format!("Bearer {tok}");
        let acc = |name: &str, action| Access { kind: "repository", name: name.into(), action };
        assert!(a.allowed(Some(&bearer), Some(&acc("a/b", "push"))));
        assert!(!a.allowed(Some(&bearer), Some(&acc("a/b", "delete"))));
        assert!(!a.allowed(Some(&bearer), Some(&acc("a/c", "pull"))));
        assert!(a.allowed(Some(&bearer), None));
        let forged = format!("Bearer {}x", tok);
        assert!(!a.allowed(Some(&forged), None));
        assert_eq!(
            a.challenge("http://127.0.0.1:5000", &[acc("a/b", "push"), acc("c", "pull")]),
            "Bearer realm=\"http://127.0.0.1:5000/token\",service=\"berth\",scope=\"repository:a/b:push repository:c:pull\""
        );
    }
}
