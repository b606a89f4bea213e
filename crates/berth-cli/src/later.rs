//! Commands whose daemon side comes with later issues (volumes,
//! registry, build). They parse as docker's do; the simple ones already
//! make their API calls (the daemon answers "not implemented" until then),
//! the rest say so here.

use clap::Args;

use crate::app::{Ctx, out, outln};
use crate::client::{ApiError, percent_encode, query};
use crate::container::ContainerError;
use crate::format::{self, TemplateErrorKind, template};
use crate::inspect::InspectError;
use crate::opts::{self, Filters};

#[derive(Debug, thiserror::Error)]
pub enum LaterError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Template(#[from] TemplateErrorKind),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error(transparent)]
    Pull(#[from] ContainerError),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<LaterError>),
    #[error("{0}")]
    Usage(String),
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Password
    #[arg(short = 'p', long = "password", value_name = "string")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Username
    #[arg(short = 'u', long = "username", value_name = "string")]
    pub username: Option<String>,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Provide filter values
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    pub format: Option<String>,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PruneLaterArgs {
    /// Provide filter values
    #[arg(long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub(crate) async fn call(ctx: &Ctx, method: &str, path: &str, body: Option<&[u8]>) -> Result<serde_json::Value, LaterError> {
    let c = ctx.client()?;
    let mut r = c.raw(method, path, false, body).await?;
    let b = r.read_to_end().await?;
    Ok(serde_json::from_slice(&b).unwrap_or_default())
}

pub(crate) async fn inspect_each(ctx: &Ctx, kind: &str, names: &[String], format: Option<&str>) -> Result<(), LaterError> {
    let c = ctx.client()?;
    let mut objs = Vec::new();
    for n in names {
        let mut r = c.raw("GET", &format!("/{kind}/{}", percent_encode(n)), false, None).await?;
        objs.push(r.read_to_end().await?);
    }
    crate::inspect::print(&objs, format)?;
    Ok(())
}

pub(crate) fn list_out(items: &[serde_json::Value], a: &ListArgs, default: &str, header: gotmpl::Value, id_key: &str) -> Result<(), LaterError> {
    let f = a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "table".into());
    let f = if a.quiet { format!("{{{{.{id_key}}}}}") } else if f == "table" { default.to_owned() } else { f };
    let rows: Vec<gotmpl::Value> = items.iter().map(template::from_json).collect();
    out(&format::render(&f, &rows, &header)?);
    Ok(())
}

pub(crate) async fn prune(ctx: &Ctx, what: &str, key: &str, title: &str, a: &PruneLaterArgs, warning: &str) -> Result<(), LaterError> {
    if !a.force && !crate::container::confirm(warning) {
        return Ok(());
    }
    let f = Filters::from_pairs(&a.filter);
    let q = if f.is_empty() { String::new() } else { query(&[("filters", f.to_json())]) };
    let v = call(ctx, "POST", &format!("/{what}/prune{q}"), None).await?;
    let d: Vec<&str> = v.get(key).and_then(|x| x.as_array()).into_iter().flatten().filter_map(|x| x.as_str()).collect();
    if !d.is_empty() {
        outln(&format!("{title}\n{}\n", d.join("\n")));
    }
    if let Some(r) = v.get("SpaceReclaimed").and_then(|x| x.as_i64()) {
        outln(&format!("Total reclaimed space: {}", crate::units::human_size(r as f64)));
    }
    Ok(())
}
