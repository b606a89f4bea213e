//! `berth build` (and `berth image build`): the context as a tar (a
//! directory with its `.dockerignore` applied, a tar on stdin, or a
//! Dockerfile alone on stdin), `POST /build`, and the classic builder's
//! output: the `stream` text as it comes, errors with docker's exit codes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::app::{Ctx, errln};
use crate::client::{ApiError, query};

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub build_arg: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings")]
    pub cache_from: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub file: Option<String>,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Write the image ID to the file
    #[arg(long = "iidfile", value_name = "string")]
    pub iidfile: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long = "network", value_name = "string", default_value = "default")]
    pub network: String,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set target platform for build
    #[arg(long = "platform", value_name = "string", env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Set type of progress output (auto, plain, tty)
    #[arg(long = "progress", value_name = "string", default_value = "auto")]
    pub progress: String,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long = "rm", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub rm: bool,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub tag: Vec<String>,
    /// Set the target build stage to build
    #[arg(long = "target", value_name = "string")]
    pub target: Option<String>,
    #[arg(value_name = "PATH | URL | -")]
    pub context: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildCliError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("unable to prepare context: {0}")]
    Context(String),
    #[error("{message}")]
    Failed { message: String, code: i32 },
    #[error("invalid argument \"{0}\" for \"--label\" flag: label must be key=value")]
    Label(String),
    #[error("invalid progress mode {0:?}: use auto, plain or tty")]
    Progress(String),
}

impl BuildCliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildCliError::Failed { code, .. } => *code,
            _ => 1,
        }
    }
}

fn ctx_err(e: impl std::fmt::Display) -> BuildCliError {
    BuildCliError::Context(e.to_string())
}

/// The context tar and the `dockerfile` parameter.
fn context_tar(a: &BuildArgs) -> Result<(Vec<u8>, Option<String>), BuildCliError> {
    let stdin_all = || -> Result<Vec<u8>, BuildCliError> {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).map_err(ctx_err)?;
        Ok(v)
    };
    let random_name = format!(".dockerfile.{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) & 0xffff_ffff_ffff);
    if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            return Err(BuildCliError::Context("invalid argument: can't use stdin for both build context and dockerfile".into()));
        }
        let data = stdin_all()?;
        let is_tar = data.len() >= 262 && &data[257..262] == b"ustar" || data.starts_with(&[0x1f, 0x8b]) || data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        if is_tar {
            return Ok((data, a.file.clone()));
        }
        // A Dockerfile alone: an empty context with it.
        let mut tar = Vec::new();
        let empty = std::env::temp_dir();
        let mut b = tar::Builder::new(&mut tar);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &data[..]).map_err(ctx_err)?;
        b.finish().map_err(ctx_err)?;
        drop(b);
        let _ = empty;
        return Ok((tar, None));
    }
    if a.context.starts_with("http://") || a.context.starts_with("https://") || a.context.starts_with("git@") {
        return Err(BuildCliError::Context(format!("remote build contexts are not supported yet: {}", a.context)));
    }
    let dir = PathBuf::from(&a.context);
    if !dir.is_dir() {
        return Err(BuildCliError::Context(format!("path \"{}\" not found", a.context)));
    }
    let mut tar = Vec::new();
    match a.file.as_deref() {
        Some("-") => {
            let df = stdin_all()?;
            berth_build::context::write_tar(&dir, &random_name, Some((&random_name, &df)), &mut tar).map_err(ctx_err)?;
            Ok((tar, Some(random_name)))
        }
        Some(f) => {
            let path = Path::new(f);
            let abs = if path.is_absolute() { path.to_owned() } else { std::env::current_dir().map_err(ctx_err)?.join(path) };
            let abs_dir = std::fs::canonicalize(&dir).map_err(ctx_err)?;
            let abs_file = std::fs::canonicalize(&abs).map_err(|_| BuildCliError::Context(format!("Cannot locate specified Dockerfile: {f}")))?;
            match abs_file.strip_prefix(&abs_dir) {
                Ok(rel) => {
                    let rel = rel.to_string_lossy().into_owned();
                    berth_build::context::write_tar(&dir, &rel, None, &mut tar).map_err(ctx_err)?;
                    Ok((tar, Some(rel)))
                }
                Err(_) => {
                    let df = std::fs::read(&abs_file).map_err(ctx_err)?;
                    berth_build::context::write_tar(&dir, &random_name, Some((&random_name, &df)), &mut tar).map_err(ctx_err)?;
                    Ok((tar, Some(random_name)))
                }
            }
        }
        None => {
            berth_build::context::write_tar(&dir, "Dockerfile", None, &mut tar).map_err(ctx_err)?;
            Ok((tar, None))
        }
    }
}

/// `--build-arg k=v` (or `k`, taking the value from the environment).
fn build_args(list: &[String]) -> BTreeMap<String, Option<String>> {
    list.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (a.clone(), std::env::var(a).ok()),
        })
        .collect()
}

pub async fn build(ctx: &Ctx, a: &BuildArgs) -> Result<(), BuildCliError> {
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty") {
        return Err(BuildCliError::Progress(a.progress.clone()));
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(BuildCliError::Label(l.clone()));
        }
        labels.insert(k.to_owned(), v.to_owned());
    }
    let (tar, dockerfile) = context_tar(a)?;
    let mut q: Vec<(&str, String)> = Vec::new();
    for t in &a.tag {
        q.push(("t", t.clone()));
    }
    if let Some(f) = dockerfile {
        q.push(("dockerfile", f));
    }
    q.push(("buildargs", serde_json::to_string(&build_args(&a.build_arg)).expect("args serialize")));
    q.push(("labels", serde_json::to_string(&labels).expect("labels serialize")));
    if !a.cache_from.is_empty() {
        q.push(("cachefrom", serde_json::to_string(&a.cache_from).expect("list serializes")));
    }
    if let Some(t) = &a.target {
        q.push(("target", t.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    let flag = |b: bool| if b { "1".to_owned() } else { "0".to_owned() };
    q.push(("nocache", flag(a.no_cache)));
    q.push(("pull", flag(a.pull)));
    q.push(("q", flag(a.quiet)));
    q.push(("rm", flag(a.rm)));
    q.push(("forcerm", flag(a.force_rm)));
    q.push(("networkmode", a.network.clone()));
    if !a.quiet {
        // As docker's classic builder client says it (to stdout).
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "Sending build context to Docker daemon  {}", crate::units::human_size(tar.len() as f64));
        let _ = o.flush();
    }
    let c = ctx.client().map_err(BuildCliError::Api)?;
    let mut src: &[u8] = &tar;
    let headers = crate::registry::build_config_header();
    let mut r = c.upload_with_headers("POST", &format!("/build{}", query(&q)), "application/x-tar", &headers, &mut src).await?;
    let mut id = None;
    let mut buf = Vec::new();
    let mut handle = |line: &[u8]| -> Result<(), BuildCliError> {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else { return Ok(()) };
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            let code = v["errorDetail"]["code"].as_i64().filter(|c| *c != 0).unwrap_or(1) as i32;
            return Err(BuildCliError::Failed { message: e.to_owned(), code });
        }
        if let Some(s) = v.get("stream").and_then(|s| s.as_str())
            && !a.quiet {
                use std::io::Write;
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(s.as_bytes());
                let _ = o.flush();
            }
        if let Some(i) = v["aux"]["ID"].as_str() {
            id = Some(i.to_owned());
        }
        Ok(())
    };
    while let Some(chunk) = r.chunk().await? {
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            handle(&line)?;
        }
    }
    handle(&buf)?;
    let Some(id) = id else { return Ok(()) };
    if a.quiet {
        crate::app::outln(&id);
    }
    if let Some(f) = &a.iidfile
        && let Err(e) = std::fs::write(f, &id) {
            errln(&format!("failed to write image ID to file: {e}"));
            return Err(BuildCliError::Context(format!("write {f}: {e}")));
        }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_arg_values() {
        let m = build_args(&["A=1".into(), "EMPTY=".into(), "BERTH_SURELY_UNSET_VAR".into()]);
        assert_eq!(m["A"], Some("1".into()));
        assert_eq!(m["EMPTY"], Some(String::new()));
        assert_eq!(m["BERTH_SURELY_UNSET_VAR"], None);
    }
}
