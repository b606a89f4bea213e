//! `berth volume create|ls|inspect|rm|prune`: docker's flags, columns and
//! `--format` over the `/volumes` API.

use clap::{Args, Subcommand};
use gotmpl::Value;

use crate::app::{Ctx, out, outln};
use crate::client::{ApiError, percent_encode, query};
use crate::format::{self, TemplateErrorKind, template};
use crate::inspect::InspectError;
use crate::opts::{self, Filters};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Template(#[from] TemplateErrorKind),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error("invalid argument {0:?} for \"{1}\" flag: expected key=value")]
    KeyValue(String, &'static str),
    #[error("conflicting options: either specify --name or provide positional arg, not both")]
    TwoNames,
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<VolumeError>),
}

#[derive(Debug, Clone, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format output using a custom template
        #[arg(short = 'f', long = "format", value_name = "string")]
        format: Option<String>,
        #[arg(value_name = "VOLUME", required = true)]
        names: Vec<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(value_name = "VOLUME", required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string", hide = true)]
    pub name_flag: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

async fn call(ctx: &Ctx, method: &str, path: &str, body: Option<&[u8]>) -> Result<serde_json::Value, VolumeError> {
    let mut r = ctx.client()?.raw(method, path, false, body).await?;
    let b = r.read_to_end().await?;
    Ok(serde_json::from_slice(&b).unwrap_or_default())
}

/// `a=b` pairs of `--label` (a bare key has an empty value) and `--opt`.
fn pairs(list: &[String], flag: &'static str, bare_ok: bool) -> Result<serde_json::Map<String, serde_json::Value>, VolumeError> {
    let mut m = serde_json::Map::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => m.insert(k.to_owned(), v.into()),
            None if bare_ok => m.insert(item.clone(), "".into()),
            None => return Err(VolumeError::KeyValue(item.clone(), flag)),
        };
    }
    Ok(m)
}

/// One row of `volume ls`, with docker's formatter fields.
fn row(v: &serde_json::Value) -> Value {
    use template::s;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let labels: std::collections::BTreeMap<String, String> = v
        .get("Labels")
        .and_then(|l| l.as_object())
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default();
    let joined = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let size = v.pointer("/UsageData/Size").and_then(|x| x.as_i64()).map(|n| crate::units::human_size(n as f64)).unwrap_or_else(|| "N/A".into());
    let links = v.pointer("/UsageData/RefCount").and_then(|x| x.as_i64()).map(|n| n.to_string()).unwrap_or_else(|| "N/A".into());
    template::map([
        ("Name", s(text("Name"))),
        ("Driver", s(text("Driver"))),
        ("Scope", s(text("Scope"))),
        ("Mountpoint", s(text("Mountpoint"))),
        ("CreatedAt", s(text("CreatedAt"))),
        ("Labels", s(joined)),
        ("Label", template::method(move |a| s(labels.get(&a.first().map(|v| v.to_string()).unwrap_or_default()).cloned().unwrap_or_default()))),
        ("Size", s(size)),
        ("Links", s(links)),
        ("Group", s("")),
        ("Availability", s("N/A")),
        ("Status", s("N/A")),
    ])
}

pub async fn volume(ctx: &Ctx, cmd: &VolumeCommand) -> Result<(), VolumeError> {
    match cmd {
        VolumeCommand::Create(a) => {
            let name = match (&a.name_flag, &a.name) {
                (Some(_), Some(_)) => return Err(VolumeError::TwoNames),
                (n, p) => n.clone().or(p.clone()).unwrap_or_default(),
            };
            let body = serde_json::json!({
                "Name": name, "Driver": a.driver,
                "DriverOpts": pairs(&a.opt, "--opt", false)?, "Labels": pairs(&a.label, "--label", true)?,
            });
            let v = call(ctx, "POST", "/volumes/create", Some(body.to_string().as_bytes())).await?;
            outln(v.get("Name").and_then(|i| i.as_str()).unwrap_or(""));
            Ok(())
        }
        VolumeCommand::Ls(a) => {
            let f = Filters::from_pairs(&a.filter);
            let q = if f.is_empty() { String::new() } else { query(&[("filters", f.to_json())]) };
            let v = call(ctx, "GET", &format!("/volumes{q}"), None).await?;
            let mut items = v.get("Volumes").and_then(|x| x.as_array()).cloned().unwrap_or_default();
            items.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            let fmt = match a.format.as_deref().filter(|f| !f.is_empty()) {
                _ if a.quiet => "{{.Name}}".to_owned(),
                None | Some("table") => "table {{.Driver}}\t{{.Name}}".to_owned(),
                Some(f) => f.to_owned(),
            };
            let header = template::map([
                ("Driver", template::s("DRIVER")),
                ("Name", template::s("VOLUME NAME")),
                ("Scope", template::s("SCOPE")),
                ("Mountpoint", template::s("MOUNTPOINT")),
                ("CreatedAt", template::s("CREATED")),
                ("Labels", template::s("LABELS")),
                ("Size", template::s("SIZE")),
                ("Links", template::s("LINKS")),
            ]);
            let rows: Vec<Value> = items.iter().map(row).collect();
            out(&format::render(&fmt, &rows, &header)?);
            Ok(())
        }
        VolumeCommand::Inspect { format, names } => {
            let c = ctx.client()?;
            let mut objs = Vec::new();
            let mut errs = Vec::new();
            for n in names {
                match c.raw("GET", &format!("/volumes/{}", percent_encode(n)), false, None).await {
                    Ok(mut r) => objs.push(r.read_to_end().await?),
                    Err(e) => errs.push(VolumeError::from(e)),
                }
            }
            crate::inspect::print(&objs, format.as_deref())?;
            if errs.is_empty() { Ok(()) } else { Err(VolumeError::Many(errs)) }
        }
        VolumeCommand::Rm { force, names } => {
            let mut errs = Vec::new();
            for n in names {
                let q = if *force { "?force=1" } else { "" };
                match call(ctx, "DELETE", &format!("/volumes/{}{q}", percent_encode(n)), None).await {
                    Ok(_) => outln(n),
                    Err(e) => errs.push(e),
                }
            }
            if errs.is_empty() { Ok(()) } else { Err(VolumeError::Many(errs)) }
        }
        VolumeCommand::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !a.force && !crate::container::confirm(warning) {
                return Ok(());
            }
            let mut f = Filters::from_pairs(&a.filter);
            if a.all {
                f.add("all", "true");
            }
            let q = if f.is_empty() { String::new() } else { query(&[("filters", f.to_json())]) };
            let v = call(ctx, "POST", &format!("/volumes/prune{q}"), None).await?;
            let deleted: Vec<&str> = v.get("VolumesDeleted").and_then(|x| x.as_array()).into_iter().flatten().filter_map(|x| x.as_str()).collect();
            if !deleted.is_empty() {
                outln(&format!("Deleted Volumes:\n{}\n", deleted.join("\n")));
            }
            let r = v.get("SpaceReclaimed").and_then(|x| x.as_i64()).unwrap_or(0);
            outln(&format!("Total reclaimed space: {}", crate::units::human_size(r as f64)));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_options_are_key_values() {
        let m = pairs(&["a=1".into(), "bare".into()], "--label", true).unwrap();
        assert_eq!(serde_json::Value::Object(m), serde_json::json!({"a": "1", "bare": ""}));
        assert!(matches!(pairs(&["novalue".into()], "--opt", false), Err(VolumeError::KeyValue(_, "--opt"))));
    }

    #[test]
    fn rows_have_dockers_fields() {
        let v = serde_json::json!({"Name": "v", "Driver": "local", "Scope": "local", "Labels": {"b": "2", "a": "1"},
            "UsageData": {"Size": 2048, "RefCount": 1}});
        let out = format::render("{{.Name}} {{.Labels}} {{.Label \"b\"}} {{.Size}} {{.Links}}", &[row(&v)], &template::map([])).unwrap();
        assert_eq!(out, "v a=1,b=2 2 2.048kB 1\n");
    }
}
