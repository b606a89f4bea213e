//! Commands whose daemon side comes with later issues (networks, volumes,
//! registry, build). They parse as docker's do; the simple ones already
//! make their API calls (the daemon answers "not implemented" until then),
//! the rest say so here.

use clap::{Args, Subcommand};

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
    #[error("berth {0} is not implemented yet")]
    NotYet(&'static str),
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

#[derive(Debug, Clone, Subcommand)]
pub enum NetworkCommand {
    /// Connect a container to a network
    Connect {
        #[arg(value_name = "NETWORK")]
        network: String,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Create a network
    Create {
        /// Driver to manage the Network
        #[arg(short = 'd', long = "driver", value_name = "string", default_value = "bridge")]
        driver: String,
        #[arg(value_name = "NETWORK")]
        name: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(value_name = "NETWORK")]
        network: String,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Display detailed information on one or more networks
    Inspect {
        /// Format output using a custom template
        #[arg(short = 'f', long = "format", value_name = "string")]
        format: Option<String>,
        #[arg(value_name = "NETWORK", required = true)]
        names: Vec<String>,
    },
    /// List networks
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Remove all unused networks
    Prune(PruneLaterArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(value_name = "NETWORK", required = true)]
        names: Vec<String>,
    },
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

async fn call(ctx: &Ctx, method: &str, path: &str, body: Option<&[u8]>) -> Result<serde_json::Value, LaterError> {
    let c = ctx.client()?;
    let mut r = c.raw(method, path, false, body).await?;
    let b = r.read_to_end().await?;
    Ok(serde_json::from_slice(&b).unwrap_or_default())
}

async fn inspect_each(ctx: &Ctx, kind: &str, names: &[String], format: Option<&str>) -> Result<(), LaterError> {
    let c = ctx.client()?;
    let mut objs = Vec::new();
    for n in names {
        let mut r = c.raw("GET", &format!("/{kind}/{}", percent_encode(n)), false, None).await?;
        objs.push(r.read_to_end().await?);
    }
    crate::inspect::print(&objs, format)?;
    Ok(())
}

fn list_out(items: &[serde_json::Value], a: &ListArgs, default: &str, header: gotmpl::Value, id_key: &str) -> Result<(), LaterError> {
    let f = a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "table".into());
    let f = if a.quiet { format!("{{{{.{id_key}}}}}") } else if f == "table" { default.to_owned() } else { f };
    let rows: Vec<gotmpl::Value> = items.iter().map(template::from_json).collect();
    out(&format::render(&f, &rows, &header)?);
    Ok(())
}

pub async fn network(ctx: &Ctx, cmd: &NetworkCommand) -> Result<(), LaterError> {
    use template::s;
    match cmd {
        NetworkCommand::Ls(a) => {
            let f = Filters::from_pairs(&a.filter);
            let q = if f.is_empty() { String::new() } else { query(&[("filters", f.to_json())]) };
            let v = call(ctx, "GET", &format!("/networks{q}"), None).await?;
            let items: Vec<serde_json::Value> = v
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut n| {
                    let id: String = n.get("Id").and_then(|i| i.as_str()).unwrap_or("").chars().take(12).collect();
                    n["ID"] = id.into();
                    n
                })
                .collect();
            let h = template::map([("ID", s("NETWORK ID")), ("Name", s("NAME")), ("Driver", s("DRIVER")), ("Scope", s("SCOPE"))]);
            list_out(&items, a, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", h, "ID")
        }
        NetworkCommand::Create { driver, name } => {
            let body = serde_json::to_vec(&serde_json::json!({"Name": name, "Driver": driver})).unwrap_or_default();
            let v = call(ctx, "POST", "/networks/create", Some(&body)).await?;
            outln(v.get("Id").and_then(|i| i.as_str()).unwrap_or(""));
            Ok(())
        }
        NetworkCommand::Rm { names } => {
            let mut errs = Vec::new();
            for n in names {
                match call(ctx, "DELETE", &format!("/networks/{}", percent_encode(n)), None).await {
                    Ok(_) => outln(n),
                    Err(e) => errs.push(e),
                }
            }
            if errs.is_empty() { Ok(()) } else { Err(LaterError::Many(errs)) }
        }
        NetworkCommand::Inspect { format, names } => inspect_each(ctx, "networks", names, format.as_deref()).await,
        NetworkCommand::Connect { network, container } | NetworkCommand::Disconnect { network, container, .. } => {
            let what = if matches!(cmd, NetworkCommand::Connect { .. }) { "connect" } else { "disconnect" };
            let body = serde_json::to_vec(&serde_json::json!({"Container": container})).unwrap_or_default();
            call(ctx, "POST", &format!("/networks/{}/{what}", percent_encode(network)), Some(&body)).await?;
            Ok(())
        }
        NetworkCommand::Prune(a) => prune(ctx, "networks", "NetworksDeleted", "Deleted Networks:", a, "WARNING! This will remove all custom networks not used by at least one container.").await,
    }
}

async fn prune(ctx: &Ctx, what: &str, key: &str, title: &str, a: &PruneLaterArgs, warning: &str) -> Result<(), LaterError> {
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
