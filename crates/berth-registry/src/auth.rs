//! Credentials and authentication challenges.
//!
//! Credentials come, in this order, from what the API caller sent
//! (`X-Registry-Auth`, decoded by [`AuthConfig::from_header`]), then from
//! docker's `config.json` files ([`CredentialStore`]: `auths`, `credHelpers`,
//! `credsStore`). A registry answers an unauthenticated request with `401`
//! and a `WWW-Authenticate` challenge ([`Challenge::parse`]); the client
//! answers Basic with the credentials, Bearer by fetching a token from the
//! realm (see `client.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::endpoint::{auth_key, normalize_server};
use berth_image::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid X-Registry-Auth header: {reason}")]
    Header { reason: String },
    #[error("read credentials {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid credentials file {path}: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("invalid auth entry for {server} in {path}: {reason}")]
    Entry { server: String, path: PathBuf, reason: String },
    #[error("credential helper docker-credential-{helper}: {message}")]
    Helper { helper: String, message: String },
    #[error("write credentials {path}: {message}")]
    Write { path: PathBuf, message: String },
}

impl AuthError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Header { .. } | AuthError::Entry { .. } | AuthError::Parse { .. } => ErrorKind::InvalidParameter,
            AuthError::Helper { .. } => ErrorKind::Unauthorized,
            AuthError::Read { .. } | AuthError::Write { .. } => ErrorKind::Internal,
        }
    }
}

/// docker's `registry.AuthConfig`: what `X-Registry-Auth` and `POST /auth`
/// carry, and what `config.json` stores per registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub password: String,
    /// base64 of `username:password`.
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub serveraddress: String,
    /// An OAuth refresh token, exchanged at the token realm.
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub identitytoken: String,
    /// A bearer token sent as is.
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_empty")]
    pub registrytoken: String,
}

/// Clients send `null` for fields they leave out (bollard does).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl AuthConfig {
    pub fn basic(username: &str, password: &str) -> AuthConfig {
        AuthConfig { username: username.into(), password: password.into(), ..Default::default() }
    }

    /// Decode an `X-Registry-Auth` header: base64url (or plain base64) of
    /// the JSON. An empty header or `{}` is no credentials.
    pub fn from_header(value: &str) -> Result<Option<AuthConfig>, AuthError> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(None);
        }
        let bytes = [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
            .iter()
            .find_map(|e| e.decode(v).ok())
            .ok_or_else(|| AuthError::Header { reason: "not base64".into() })?;
        let mut a: AuthConfig =
            serde_json::from_slice(&bytes).map_err(|e| AuthError::Header { reason: e.to_string() })?;
        a.fill_from_auth().map_err(|reason| AuthError::Header { reason })?;
        Ok((!a.is_empty()).then_some(a))
    }

    /// Encode as docker's CLI sends `X-Registry-Auth`.
    pub fn to_header(&self) -> String {
        URL_SAFE.encode(serde_json::to_vec(self).expect("auth config serializes"))
    }

    /// Whether there is nothing to authenticate with.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identitytoken.is_empty() && self.registrytoken.is_empty()
    }

    /// Split `auth` (base64 `user:password`) into username and password.
    fn fill_from_auth(&mut self) -> Result<(), String> {
        if self.auth.is_empty() || !self.username.is_empty() {
            return Ok(());
        }
        let raw = STANDARD.decode(self.auth.trim()).map_err(|e| format!("auth is not base64: {e}"))?;
        let s = String::from_utf8(raw).map_err(|_| "auth is not utf-8".to_owned())?;
        let (u, p) = s.split_once(':').ok_or_else(|| "auth is not user:password".to_owned())?;
        self.username = u.to_owned();
        self.password = p.to_owned();
        Ok(())
    }
}

/// docker's `config.json`, the parts about registries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DockerConfigFile {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthConfig>,
    #[serde(rename = "credsStore", default, skip_serializing_if = "Option::is_none")]
    pub creds_store: Option<String>,
    #[serde(rename = "credHelpers", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cred_helpers: BTreeMap<String, String>,
    /// Everything else in the file, kept on rewrite.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl DockerConfigFile {
    /// Read `path`; a missing file is an empty config.
    pub fn read(path: &Path) -> Result<DockerConfigFile, AuthError> {
        match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| AuthError::Parse { path: path.into(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfigFile::default()),
            Err(source) => Err(AuthError::Read { path: path.into(), source }),
        }
    }

    /// Credentials for registry `host`, from `auths` (keys in any of the
    /// forms docker writes) or a credential helper.
    pub fn lookup(&self, path: &Path, host: &str) -> Result<Option<AuthConfig>, AuthError> {
        let host = normalize_server(host);
        let helper = self.cred_helpers.iter().find(|(k, _)| normalize_server(k) == host).map(|(_, v)| v).or(self.creds_store.as_ref());
        if let Some(helper) = helper {
            return helper_get(helper, &auth_key(&host));
        }
        for (key, entry) in &self.auths {
            if normalize_server(key) == host {
                let mut a = entry.clone();
                a.fill_from_auth().map_err(|reason| AuthError::Entry { server: key.clone(), path: path.into(), reason })?;
                a.serveraddress = key.clone();
                return Ok((!a.is_empty()).then_some(a));
            }
        }
        Ok(None)
    }

    /// Store `auth` for `host` as `docker login` does (`auth` field only,
    /// or the identity token).
    pub fn store(&mut self, host: &str, auth: &AuthConfig) {
        let key = auth_key(&normalize_server(host));
        let entry = if !auth.identitytoken.is_empty() {
            AuthConfig { identitytoken: auth.identitytoken.clone(), auth: STANDARD.encode(format!("{}:", auth.username)), ..Default::default() }
        } else {
            AuthConfig { auth: STANDARD.encode(format!("{}:{}", auth.username, auth.password)), ..Default::default() }
        };
        self.auths.retain(|k, _| normalize_server(k) != normalize_server(host));
        self.auths.insert(key, entry);
    }

    /// Forget `host` (`docker logout`); whether there was an entry.
    pub fn erase(&mut self, host: &str) -> bool {
        let before = self.auths.len();
        self.auths.retain(|k, _| normalize_server(k) != normalize_server(host));
        before != self.auths.len()
    }

    /// Write atomically, mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), AuthError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AuthError::Write { path: path.into(), message: e.to_string() })?;
        }
        let data = serde_json::to_vec_pretty(self).expect("config serializes");
        berth_sys::fs::write_atomic_mode(path, &data, 0o600).map_err(|e| AuthError::Write { path: path.into(), message: e.to_string() })
    }
}

/// `docker-credential-<helper> get`.
fn helper_get(helper: &str, server: &str) -> Result<Option<AuthConfig>, AuthError> {
    let herr = |message: String| AuthError::Helper { helper: helper.to_owned(), message };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| herr(e.to_string()))?;
    child.stdin.take().expect("piped").write_all(server.as_bytes()).map_err(|e| herr(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| herr(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(herr(msg));
    }
    #[derive(Deserialize)]
    struct Reply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let r: Reply = serde_json::from_slice(&out.stdout).map_err(|e| herr(e.to_string()))?;
    Ok(Some(if r.username == "<token>" {
        AuthConfig { identitytoken: r.secret, serveraddress: server.into(), ..Default::default() }
    } else {
        AuthConfig { username: r.username, password: r.secret, serveraddress: server.into(), ..Default::default() }
    }))
}

/// Where credentials are looked up: the files given (the daemon's own,
/// `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`), first hit wins.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    pub files: Vec<PathBuf>,
}

impl CredentialStore {
    /// `path` (if given), then `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`.
    pub fn with_defaults(path: Option<&Path>) -> CredentialStore {
        let mut files: Vec<PathBuf> = path.into_iter().map(Path::to_owned).collect();
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            files.push(PathBuf::from(d).join("config.json"));
        } else if let Some(h) = std::env::var_os("HOME") {
            files.push(PathBuf::from(h).join(".docker/config.json"));
        }
        CredentialStore { files }
    }

    pub fn lookup(&self, host: &str) -> Result<Option<AuthConfig>, AuthError> {
        for f in &self.files {
            if let Some(a) = DockerConfigFile::read(f)?.lookup(f, host)? {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic { realm: String },
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// Parse a header value (`Bearer realm="...",service="...",scope="..."`).
    /// Unknown schemes give `None`.
    pub fn parse(value: &str) -> Option<Challenge> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        let params = parse_params(rest);
        let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic { realm: get("realm").unwrap_or_default() }),
            "bearer" => Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") }),
            _ => None,
        }
    }
}

/// `k="v", k2=v2` → pairs, with quoted strings and `\` escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == ',' || b[i].is_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != '=' && b[i] != ',' {
            i += 1;
        }
        let key: String = b[start..i].iter().collect::<String>().trim().to_owned();
        if i >= b.len() || b[i] != '=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != ',' {
                val.push(b[i]);
                i += 1;
            }
            val = val.trim().to_owned();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// The `scope` a token request asks for (`repository:<name>:pull,push`).
pub fn repository_scope(repository: &str, push: bool) -> String {
    format!("repository:{repository}:{}", if push { "pull,push" } else { "pull" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = Challenge::parse(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic { realm: "Registry Realm".into() }));
        assert_eq!(Challenge::parse("basic"), Some(Challenge::Basic { realm: String::new() }));
        assert_eq!(
            Challenge::parse(r#"bearer realm=http://x/token, scope="a:b:pull,push", error="insufficient_scope""#),
            Some(Challenge::Bearer { realm: "http://x/token".into(), service: None, scope: Some("a:b:pull,push".into()) })
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None, "a bearer challenge needs a realm");
    }

    #[test]
    fn null_fields_are_empty() {
        let h = URL_SAFE.encode(br#"{"username":"u","password":"p","auth":null,"email":null,"serveraddress":null,"identitytoken":null}"#);
        let a = AuthConfig::from_header(&h).unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str(), a.email.as_str()), ("u", "p", ""));
        let none = URL_SAFE.encode(br#"{"username":null,"password":null}"#);
        assert_eq!(AuthConfig::from_header(&none).unwrap(), None);
    }

    #[test]
    fn registry_auth_header_round_trips() {
        let a = AuthConfig { username: "u".into(), password: "p:w".into(), serveraddress: "localhost:5000".into(), ..Default::default() };
        assert_eq!(AuthConfig::from_header(&a.to_header()).unwrap(), Some(a.clone()));
        // docker's CLI pads; some SDKs use standard base64
        let std = STANDARD.encode(br#"{"auth":"dTpwOnc="}"#);
        let got = AuthConfig::from_header(&std).unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("u", "p:w"));
        assert_eq!(AuthConfig::from_header("").unwrap(), None);
        assert_eq!(AuthConfig::from_header(&URL_SAFE.encode("{}")).unwrap(), None);
        assert!(AuthConfig::from_header("%%%").is_err());
    }

    #[test]
    fn config_json_auths_decode_by_any_key_form() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                "http://localhost:5000/":{"auth":"bG9jYWw6cHc="},
                "tok.example":{"auth":"dTo=","identitytoken":"refresh"}},
               "psFormat":"table"}"#,
        )
        .unwrap();
        let f = DockerConfigFile::read(&p).unwrap();
        let hub = f.lookup(&p, "docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("hub", "secret"));
        let local = f.lookup(&p, "localhost:5000").unwrap().unwrap();
        assert_eq!((local.username.as_str(), local.password.as_str()), ("local", "pw"));
        assert_eq!(f.lookup(&p, "tok.example").unwrap().unwrap().identitytoken, "refresh");
        assert_eq!(f.lookup(&p, "other:5000").unwrap(), None);
        // store + write keeps other settings and replaces the old key form
        let mut f = f;
        f.store("localhost:5000", &AuthConfig::basic("new", "pw2"));
        assert!(f.erase("tok.example"));
        f.write(&p).unwrap();
        let back = DockerConfigFile::read(&p).unwrap();
        assert_eq!(back.other["psFormat"], "table");
        assert!(back.auths.contains_key("localhost:5000") && !back.auths.contains_key("http://localhost:5000/"));
        assert_eq!(back.lookup(&p, "localhost:5000").unwrap().unwrap().username, "new");
        let store = CredentialStore { files: vec![dir.path().join("missing.json"), p] };
        assert_eq!(store.lookup("https://index.docker.io/v1/").unwrap().unwrap().username, "hub");
        std::fs::write(dir.path().join("bad.json"), r#"{"auths":{"x":{"auth":"!!"}}}"#).unwrap();
        let bad = dir.path().join("bad.json");
        assert!(DockerConfigFile::read(&bad).unwrap().lookup(&bad, "x").is_err());
    }
}
