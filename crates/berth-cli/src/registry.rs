//! Registry commands: `pull`, `push`, `login`, `logout`, `search` (over the
//! daemon's API, with credentials from the client's `config.json` sent as
//! `X-Registry-Auth`), `manifest create/annotate/inspect/push/rm` (client
//! side, as docker's CLI does them), and `registry serve` / `registry gc`
//! (berth's own registry server).
//!
//! Credentials live in docker's `config.json` format: `auths` of the berth
//! config dir (`--config`, default `~/.berth`) first, then docker's own
//! (`$DOCKER_CONFIG` or `~/.docker`).

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use berth_image::reference::Reference;
use berth_registry::auth::{AuthConfig, CredentialStore, DockerConfigFile};
use berth_registry::endpoint::{DOCKER_HUB_AUTH_KEY, auth_key, normalize_server};
use berth_registry::lists::{Annotation, ManifestLists};
use berth_registry::progress::{ProgressMessage, render_bar};
use berth_registry::server::{AuthMode, GcOptions, ServerConfig, TlsFiles};
use clap::{Args, Subcommand};

use crate::app::{Ctx, errln, out, outln};
use crate::client::{ApiError, Client, percent_encode, query};
use crate::format::{self, TemplateErrorKind, template};
use crate::opts::{self, Filters};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Template(#[from] TemplateErrorKind),
    /// The error line a progress stream ended with.
    #[error("{0}")]
    Stream(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Registry(#[from] berth_registry::Error),
    #[error("{0}")]
    Auth(#[from] berth_registry::auth::AuthError),
    #[error("{0}")]
    Server(#[from] berth_registry::server::ServerError),
    #[error("{0}")]
    Storage(#[from] berth_registry::server::storage::StorageError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

// ---------------------------------------------------------------- flags

#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Pretty-print search using a Go template
    #[arg(long = "format", value_name = "string")]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long = "limit", value_name = "int")]
    pub limit: Option<usize>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "TERM")]
    pub term: String,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCmd {
    /// Serve an OCI distribution registry
    Serve(ServeArgs),
    /// Remove blobs no manifest references from a registry's storage
    Gc(GcArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long = "addr", value_name = "string", default_value = "0.0.0.0:5000")]
    pub addr: String,
    /// Storage directory
    #[arg(long = "root", value_name = "string", default_value = "/var/lib/berth-registry")]
    pub root: PathBuf,
    /// Authentication: none, basic or token (both read --htpasswd)
    #[arg(long = "auth", value_name = "string", default_value = "none")]
    pub auth: String,
    /// htpasswd file (bcrypt) of the users for --auth basic|token
    #[arg(long = "htpasswd", value_name = "string")]
    pub htpasswd: Option<PathBuf>,
    /// Realm (basic) or service (token) name
    #[arg(long = "realm", value_name = "string", default_value = "berth-registry")]
    pub realm: String,
    /// TLS certificate (PEM chain); serve HTTPS
    #[arg(long = "tls-cert", value_name = "string", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS key (PEM)
    #[arg(long = "tls-key", value_name = "string", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse pushes and deletes
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Refuse deletes of manifests, tags and blobs
    #[arg(long = "no-delete")]
    pub no_delete: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Storage directory
    #[arg(long = "root", value_name = "string", default_value = "/var/lib/berth-registry")]
    pub root: PathBuf,
    /// Only report what would be deleted
    #[arg(short = 'd', long = "dry-run")]
    pub dry_run: bool,
    /// Also delete manifests that no tag points at
    #[arg(short = 'm', long = "delete-untagged")]
    pub delete_untagged: bool,
}

#[derive(Debug, Subcommand)]
pub enum ManifestCmd {
    /// Add additional information to a local image manifest
    Annotate(AnnotateArgs),
    /// Create a local manifest list for annotating and pushing to a registry
    Create(ManifestCreateArgs),
    /// Display an image manifest, or manifest list
    Inspect(ManifestInspectArgs),
    /// Push a manifest list to a repository
    Push(ManifestPushArgs),
    /// Delete one or more manifest lists from local storage
    Rm {
        #[arg(value_name = "MANIFEST_LIST", required = true)]
        lists: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct AnnotateArgs {
    /// Set architecture
    #[arg(long = "arch", value_name = "string")]
    pub arch: Option<String>,
    /// Set operating system
    #[arg(long = "os", value_name = "string")]
    pub os: Option<String>,
    /// Set operating system version
    #[arg(long = "os-version", value_name = "string")]
    pub os_version: Option<String>,
    /// Set architecture variant
    #[arg(long = "variant", value_name = "string")]
    pub variant: Option<String>,
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    #[arg(value_name = "MANIFEST")]
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct ManifestCreateArgs {
    /// Amend an existing manifest list
    #[arg(short = 'a', long = "amend")]
    pub amend: bool,
    /// Allow communication with an insecure registry
    #[arg(long = "insecure")]
    pub insecure: bool,
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    #[arg(value_name = "MANIFEST", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ManifestInspectArgs {
    /// Allow communication with an insecure registry
    #[arg(long = "insecure")]
    pub insecure: bool,
    /// Output additional info including layers and platform
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    #[arg(value_name = "MANIFEST_LIST | MANIFEST", num_args = 1..=2, required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ManifestPushArgs {
    /// Allow push to an insecure registry
    #[arg(long = "insecure")]
    pub insecure: bool,
    /// Remove the local manifest list after push
    #[arg(short = 'p', long = "purge")]
    pub purge: bool,
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
}

// ---------------------------------------------------------- credentials

static CONFIG_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Remember `--config` for the commands that read credentials.
pub fn set_config_dir(dir: Option<&str>) {
    if let Some(d) = crate::config::dir(dir) {
        let _ = CONFIG_DIR.set(d);
    }
}

/// berth's `config.json`, where `login` stores credentials.
fn config_file() -> Result<PathBuf, RegistryError> {
    CONFIG_DIR
        .get()
        .map(|d| d.join("config.json"))
        .ok_or_else(|| RegistryError::Usage("no config directory: set --config or HOME".into()))
}

fn credentials() -> CredentialStore {
    CredentialStore::with_defaults(CONFIG_DIR.get().map(|d| d.join("config.json")).as_deref())
}

/// `X-Registry-Auth` for the registry of `image`, when credentials are stored.
pub fn auth_header_for(image: &str) -> Vec<(&'static str, String)> {
    let host = Reference::parse_named(image).map(|r| r.domain().to_owned()).unwrap_or_default();
    match credentials().lookup(&host) {
        Ok(Some(a)) => vec![("X-Registry-Auth", a.to_header())],
        _ => Vec::new(),
    }
}

fn parse_ref(s: &str) -> Result<Reference, RegistryError> {
    Reference::parse_named(s).map_err(|e| RegistryError::Usage(format!("invalid reference format: {e}")))
}

/// `docker info`'s insecure registries and mirrors, from `RegistryConfig`.
pub fn info_lines(rc: Option<&serde_json::Value>) -> String {
    let Some(rc) = rc else { return String::new() };
    let mut insecure: Vec<String> = rc["IndexConfigs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v["Secure"] == false)
        .map(|(k, _)| k.clone())
        .collect();
    insecure.sort();
    insecure.extend(rc["InsecureRegistryCIDRs"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)));
    let mut s = String::new();
    if !insecure.is_empty() {
        s.push_str(" Insecure Registries:\n");
        for r in insecure {
            s.push_str(&format!("  {r}\n"));
        }
    }
    let mirrors: Vec<&str> = rc["Mirrors"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    if !mirrors.is_empty() {
        s.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            s.push_str(&format!("  {m}\n"));
        }
    }
    s
}

// -------------------------------------------------------------- progress

/// docker's JSON progress display: per-id lines redrawn in place on a
/// terminal; without one, every line that is not a byte count.
pub struct JsonDisplay<W: Write> {
    out: W,
    tty: bool,
    quiet: bool,
    ids: HashMap<String, usize>,
    buf: Vec<u8>,
}

impl<W: Write> JsonDisplay<W> {
    pub fn new(out: W, tty: bool, quiet: bool) -> JsonDisplay<W> {
        JsonDisplay { out, tty, quiet, ids: HashMap::new(), buf: Vec::new() }
    }

    /// Feed bytes of the stream; complete lines are shown.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), RegistryError> {
        self.buf.extend_from_slice(chunk);
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            self.line(&line)?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<(), RegistryError> {
        let rest = std::mem::take(&mut self.buf);
        self.line(&rest)?;
        let _ = self.out.flush();
        Ok(())
    }

    fn line(&mut self, line: &[u8]) -> Result<(), RegistryError> {
        let Ok(m) = serde_json::from_slice::<ProgressMessage>(line) else { return Ok(()) };
        if !m.error.is_empty() || m.error_detail.as_ref().is_some_and(|d| !d.message.is_empty()) {
            let msg = if m.error.is_empty() { m.error_detail.map(|d| d.message).unwrap_or_default() } else { m.error };
            return Err(RegistryError::Stream(msg));
        }
        if self.quiet || m.aux.is_some() {
            return Ok(());
        }
        let detail = m.progress_detail.clone();
        let bar = detail.as_ref().map(|d| render_bar(d.current, d.total)).filter(|_| detail.as_ref().is_some_and(|d| d.current > 0 || d.total > 0));
        let mut diff = 0;
        if !m.id.is_empty() && detail.is_some() {
            let n = self.ids.len();
            let line = *self.ids.entry(m.id.clone()).or_insert(n);
            if line == n && self.tty {
                let _ = self.out.write_all(b"\n");
            }
            diff = self.ids.len() - line;
            if self.tty && diff > 0 {
                let _ = write!(self.out, "\x1b[{diff}A");
            }
        } else {
            self.ids.clear();
        }
        let mut endl = "";
        if self.tty && detail.is_some() {
            let _ = self.out.write_all(b"\x1b[2K\r");
            endl = "\r";
        } else if bar.is_some() {
            // No bars without a terminal.
            return Ok(());
        }
        if !m.id.is_empty() {
            let _ = write!(self.out, "{}: ", m.id);
        }
        if self.tty && detail.is_some() {
            let _ = write!(self.out, "{} {}{endl}", m.status, bar.unwrap_or_default());
        } else {
            let _ = writeln!(self.out, "{}{endl}", m.status);
        }
        if self.tty && diff > 0 {
            let _ = write!(self.out, "\x1b[{diff}B");
        }
        let _ = self.out.flush();
        Ok(())
    }
}

/// Stream a progress response into a display.
async fn show_stream<W: Write>(mut resp: crate::client::RawResponse, d: &mut JsonDisplay<W>) -> Result<(), RegistryError> {
    while let Some(chunk) = resp.chunk().await? {
        d.feed(&chunk)?;
    }
    d.finish()
}

/// `POST /images/create?fromImage=&tag=&platform=` with the stored
/// credentials; progress on stdout (`pull`) or stderr (`run`, `create`).
pub async fn pull_stream(c: &Client, image: &str, platform: Option<&str>, quiet: bool, to_stderr: bool) -> Result<(), RegistryError> {
    let r = parse_ref(image)?;
    let tag = r.digest().map(|d| d.to_string()).or(r.tag().map(str::to_owned)).unwrap_or_default();
    let mut q = vec![("fromImage", r.familiar_name()), ("tag", tag)];
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        q.push(("platform", p.to_owned()));
    }
    let resp = c.raw_with_headers("POST", &format!("/images/create{}", query(&q)), &auth_header_for(image), None).await?;
    if to_stderr {
        let tty = std::io::stderr().is_terminal();
        show_stream(resp, &mut JsonDisplay::new(std::io::stderr(), tty, quiet)).await
    } else {
        let tty = std::io::stdout().is_terminal();
        show_stream(resp, &mut JsonDisplay::new(std::io::stdout(), tty, quiet)).await
    }
}

// -------------------------------------------------------------- commands

pub async fn pull(ctx: &Ctx, a: &crate::later::PullArgs) -> Result<(), RegistryError> {
    let mut r = parse_ref(&a.image)?;
    if a.all_tags && (r.tag().is_some() || r.digest().is_some()) {
        return Err(RegistryError::Usage("tag can't be used with --all-tags/-a".into()));
    }
    if !a.all_tags && r.tag().is_none() && r.digest().is_none() {
        r = r.with_tag("latest");
        if !a.quiet {
            outln("Using default tag: latest");
        }
    }
    pull_stream(ctx.client()?, &r.to_string(), a.platform.as_deref(), a.quiet, false).await?;
    outln(&r.to_string());
    Ok(())
}

pub async fn push(ctx: &Ctx, a: &crate::later::PushArgs) -> Result<(), RegistryError> {
    let mut r = parse_ref(&a.image)?;
    if r.digest().is_some() {
        return Err(RegistryError::Usage("cannot push a digest reference".into()));
    }
    if a.all_tags && r.tag().is_some() {
        return Err(RegistryError::Usage("tag can't be used with --all-tags/-a".into()));
    }
    if !a.all_tags && r.tag().is_none() {
        r = r.with_tag("latest");
        if !a.quiet {
            outln("Using default tag: latest");
        }
    }
    let q = query(&[("tag", r.tag().unwrap_or_default().to_owned())]);
    let path = format!("/images/{}/push{q}", percent_encode(&r.familiar_name()));
    let resp = ctx.client()?.raw_with_headers("POST", &path, &auth_header_for(&r.to_string()), None).await?;
    let tty = std::io::stdout().is_terminal();
    show_stream(resp, &mut JsonDisplay::new(std::io::stdout(), tty, a.quiet)).await?;
    if a.quiet {
        outln(&r.to_string());
    }
    Ok(())
}

fn read_line_prompt(prompt: &str, echo: bool) -> Result<String, RegistryError> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    out(prompt);
    let stdin = std::io::stdin();
    let saved = if echo { None } else { termios::tcgetattr(&stdin).ok() };
    if let Some(t) = &saved {
        let mut t2 = t.clone();
        t2.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &t2);
    }
    let mut line = String::new();
    let r = stdin.read_line(&mut line);
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, t);
        outln("");
    }
    r.map_err(|source| RegistryError::Io { what: "read from the terminal".into(), source })?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub async fn login(ctx: &Ctx, a: &crate::later::LoginArgs) -> Result<(), RegistryError> {
    let server = a.server.clone().unwrap_or_else(|| DOCKER_HUB_AUTH_KEY.to_owned());
    let host = normalize_server(&server);
    let mut password = a.password.clone();
    if password.is_some() {
        errln("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        if password.is_some() {
            return Err(RegistryError::Usage("--password and --password-stdin are mutually exclusive".into()));
        }
        if a.username.is_none() {
            return Err(RegistryError::Usage("Must provide --username with --password-stdin".into()));
        }
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|source| RegistryError::Io { what: "read the password from stdin".into(), source })?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_owned());
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match &a.username {
        Some(u) => u.clone(),
        None if interactive => read_line_prompt("Username: ", true)?,
        None => return Err(RegistryError::Usage("Error: Cannot perform an interactive login from a non TTY device".into())),
    };
    let password = match password {
        Some(p) => p,
        None if interactive => read_line_prompt("Password: ", false)?,
        None => return Err(RegistryError::Usage("Error: Cannot perform an interactive login from a non TTY device".into())),
    };
    if username.is_empty() {
        return Err(RegistryError::Usage("Error: Non-null Username Required".into()));
    }
    if password.is_empty() {
        return Err(RegistryError::Usage("Error: Password Required".into()));
    }
    let auth = AuthConfig { username, password, serveraddress: auth_key(&host), ..Default::default() };
    let body = serde_json::to_vec(&auth).unwrap_or_default();
    let mut resp = ctx.client()?.raw("POST", "/auth", false, Some(&body)).await?;
    let reply: serde_json::Value = serde_json::from_slice(&resp.read_to_end().await?).unwrap_or_default();
    let mut stored = auth.clone();
    if let Some(t) = reply.get("IdentityToken").and_then(|t| t.as_str()).filter(|t| !t.is_empty()) {
        stored.identitytoken = t.to_owned();
    }
    let path = config_file()?;
    let mut file = DockerConfigFile::read(&path)?;
    file.store(&host, &stored);
    file.write(&path)?;
    outln(reply.get("Status").and_then(|s| s.as_str()).filter(|s| !s.is_empty()).unwrap_or("Login Succeeded"));
    Ok(())
}

pub fn logout(a: &crate::later::LogoutArgs) -> Result<(), RegistryError> {
    let host = normalize_server(a.server.as_deref().unwrap_or(""));
    let key = auth_key(&host);
    let path = config_file()?;
    let mut file = DockerConfigFile::read(&path)?;
    if file.erase(&host) {
        file.write(&path)?;
        outln(&format!("Removing login credentials for {key}"));
    } else {
        outln(&format!("Not logged in to {key}"));
    }
    Ok(())
}

pub async fn search(ctx: &Ctx, a: &SearchArgs) -> Result<(), RegistryError> {
    use template::s;
    let f = Filters::from_pairs(&a.filter);
    let mut q = vec![("term", a.term.clone())];
    if let Some(l) = a.limit {
        q.push(("limit", l.to_string()));
    }
    if !f.is_empty() {
        q.push(("filters", f.to_json()));
    }
    let headers = auth_header_for(&a.term);
    let mut resp = ctx.client()?.raw_with_headers("GET", &format!("/images/search{}", query(&q)), &headers, None).await?;
    let results: Vec<serde_json::Value> = serde_json::from_slice(&resp.read_to_end().await?).unwrap_or_default();
    let rows: Vec<gotmpl::Value> = results
        .iter()
        .map(|r| {
            let desc = r["description"].as_str().unwrap_or("").replace('\n', " ");
            let desc = if !a.no_trunc && desc.chars().count() > 45 { format!("{}…", desc.chars().take(44).collect::<String>()) } else { desc };
            let ok = |b: bool| s(if b { "[OK]" } else { "" });
            template::map([
                ("Name", s(r["name"].as_str().unwrap_or(""))),
                ("Description", s(desc)),
                ("StarCount", s(r["star_count"].as_i64().unwrap_or(0).to_string())),
                ("IsOfficial", ok(r["is_official"].as_bool().unwrap_or(false))),
                ("IsAutomated", ok(r["is_automated"].as_bool().unwrap_or(false))),
            ])
        })
        .collect();
    let header = template::map([
        ("Name", s("NAME")),
        ("Description", s("DESCRIPTION")),
        ("StarCount", s("STARS")),
        ("IsOfficial", s("OFFICIAL")),
        ("IsAutomated", s("AUTOMATED")),
    ]);
    let fmt = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some("table") => "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}".to_owned(),
        Some(f) => f.to_owned(),
    };
    out(&format::render(&fmt, &rows, &header)?);
    Ok(())
}

pub fn registry(cmd: &RegistryCmd) -> Result<(), RegistryError> {
    match cmd {
        RegistryCmd::Serve(a) => {
            let auth = match (a.auth.as_str(), &a.htpasswd) {
                ("none", _) => AuthMode::None,
                ("basic", Some(h)) => AuthMode::Basic { htpasswd: h.clone(), realm: a.realm.clone() },
                ("token", Some(h)) => AuthMode::Token { htpasswd: h.clone(), service: a.realm.clone() },
                ("basic" | "token", None) => return Err(RegistryError::Usage(format!("--auth {} needs --htpasswd", a.auth))),
                (other, _) => return Err(RegistryError::Usage(format!("invalid --auth {other:?}: none, basic or token"))),
            };
            let tls = match (&a.tls_cert, &a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
                _ => None,
            };
            let cfg = ServerConfig {
                addr: a.addr.clone(),
                root: a.root.clone(),
                tls,
                auth,
                read_only: a.read_only,
                delete_enabled: !a.no_delete,
                ..Default::default()
            };
            // The server gets a runtime of its own with a thread per core;
            // the command line's is single threaded.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|source| RegistryError::Io { what: "start the server runtime".into(), source })?;
            let h = std::thread::spawn(move || {
                rt.block_on(async move {
                    let addr = cfg.addr.clone();
                    let bound = berth_registry::server::bind(cfg).await?;
                    errln(&format!("berth registry listening on {}", bound.local_addr()));
                    tokio::select! {
                        r = bound.run() => r.map_err(|source| berth_registry::server::ServerError::Listen { addr, source }),
                        _ = shutdown() => Ok(()),
                    }
                })
            });
            h.join().map_err(|_| RegistryError::Usage("registry server panicked".into()))??;
            Ok(())
        }
        RegistryCmd::Gc(a) => {
            let opts = GcOptions { delete_untagged: a.delete_untagged, dry_run: a.dry_run, ..Default::default() };
            let report = berth_registry::server::gc(&a.root, &opts)?;
            let verb = if a.dry_run { "would delete" } else { "deleted" };
            for (repo, d) in &report.manifests_deleted {
                outln(&format!("{repo}: manifest {verb}: {d}"));
            }
            for d in &report.blobs_deleted {
                outln(&format!("blob {verb}: {d}"));
            }
            outln(&format!(
                "{} blobs and {} manifests {verb}, {} freed, {} stale uploads removed",
                report.blobs_deleted.len(),
                report.manifests_deleted.len(),
                crate::units::human_size(report.bytes_freed as f64),
                report.uploads_removed
            ));
            Ok(())
        }
    }
}

/// SIGTERM or SIGINT.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A client of the registries themselves (manifest commands run client
/// side); `--insecure` makes the registry of `name` an insecure one.
fn direct_client(name: &str, insecure: bool) -> berth_registry::Client {
    let host = Reference::parse_named(name).map(|r| r.domain().to_owned()).unwrap_or_default();
    let opts = berth_registry::RegistryOptions { insecure_registries: if insecure { vec![host] } else { Vec::new() }, ..Default::default() };
    berth_registry::Client::new(opts, credentials())
}

fn lists() -> Result<ManifestLists, RegistryError> {
    let dir = CONFIG_DIR.get().ok_or_else(|| RegistryError::Usage("no config directory: set --config or HOME".into()))?;
    Ok(ManifestLists::open(&dir.join("manifests")))
}

pub async fn manifest(cmd: &ManifestCmd) -> Result<(), RegistryError> {
    match cmd {
        ManifestCmd::Create(a) => {
            let c = direct_client(&a.list, a.insecure);
            outln(&lists()?.create(&c, &a.list, &a.images, a.amend, None).await?);
        }
        ManifestCmd::Annotate(a) => {
            let ann = Annotation { os: a.os.clone(), arch: a.arch.clone(), variant: a.variant.clone(), os_version: a.os_version.clone() };
            lists()?.annotate(&a.list, &a.image, &ann)?;
        }
        ManifestCmd::Inspect(a) => {
            let local = lists()?;
            let v = match a.names.as_slice() {
                [list] if local.entries(list).is_ok_and(|e| !e.is_empty()) => serde_json::to_value(local.inspect(list)?).unwrap_or_default(),
                [list, image] => {
                    let want = parse_ref(image)?.to_string();
                    let e = local.entries(list)?.into_iter().find(|e| e.reference == want).ok_or_else(|| RegistryError::Usage(format!("No such manifest: {image}")))?;
                    serde_json::from_str(&e.raw).unwrap_or_default()
                }
                [name] => {
                    let c = direct_client(name, a.insecure);
                    let m = c.inspect(name, None).await?;
                    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap_or_default();
                    if a.verbose {
                        serde_json::json!({"Ref": parse_ref(name)?.to_string(), "Descriptor": {"mediaType": m.media_type, "digest": m.digest.to_string(), "size": m.bytes.len()}, "SchemaV2Manifest": v})
                    } else {
                        v
                    }
                }
                _ => return Err(RegistryError::Usage("\"berth manifest inspect\" requires at least 1 and at most 2 arguments".into())),
            };
            outln(&serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        ManifestCmd::Push(a) => {
            let c = direct_client(&a.list, a.insecure);
            let d = lists()?.push(&c, &a.list, a.purge, None).await?;
            outln(&d.to_string());
        }
        ManifestCmd::Rm { lists: names } => {
            let l = lists()?;
            let mut errs = Vec::new();
            for n in names {
                if let Err(e) = l.remove(n) {
                    errs.push(e.to_string());
                }
            }
            if !errs.is_empty() {
                return Err(RegistryError::Usage(errs.join("\n")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(lines: &[&str], tty: bool) -> String {
        let mut d = JsonDisplay::new(Vec::new(), tty, false);
        for l in lines {
            d.feed(format!("{l}\r\n").as_bytes()).unwrap();
        }
        d.finish().unwrap();
        String::from_utf8(d.out).unwrap()
    }

    const PULL: &[&str] = &[
        r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}"#,
        r#"{"status":"Downloading","progressDetail":{"current":5,"total":10},"progress":"[==>]","id":"aaa"}"#,
        r#"{"status":"Pull complete","progressDetail":{},"id":"aaa"}"#,
        r#"{"status":"Digest: sha256:abc"}"#,
        r#"{"status":"Status: Downloaded newer image for busybox:latest"}"#,
    ];

    #[test]
    fn without_a_terminal_byte_counts_are_left_out() {
        assert_eq!(
            show(PULL, false),
            "latest: Pulling from library/busybox\naaa: Pulling fs layer\naaa: Pull complete\nDigest: sha256:abc\nStatus: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn on_a_terminal_layer_lines_are_redrawn_in_place() {
        let s = show(PULL, true);
        assert!(s.contains("\x1b[1Aaaa: ") || s.contains("\x1b[1A\x1b[2K\raaa: Downloading"), "{s:?}");
        assert!(s.contains("Downloading [") && s.contains("5B/10B"), "{s:?}");
        assert!(s.ends_with("Status: Downloaded newer image for busybox:latest\n"));
    }

    #[test]
    fn info_lists_insecure_registries_then_mirrors() {
        let rc = serde_json::json!({
            "IndexConfigs": {"docker.io": {"Secure": true}, "reg.example:5000": {"Secure": false}},
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "Mirrors": ["https://m.example/"]
        });
        assert_eq!(info_lines(Some(&rc)), " Insecure Registries:\n  reg.example:5000\n  127.0.0.0/8\n Registry Mirrors:\n  https://m.example/\n");
        assert_eq!(info_lines(None), "");
    }

    #[test]
    fn an_error_line_is_the_commands_error() {
        let mut d = JsonDisplay::new(Vec::new(), false, false);
        let e = d.feed(b"{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\r\n").unwrap_err();
        assert_eq!(e.to_string(), "manifest unknown");
    }
}
