//! System commands: info, version, df, events, prune.

use clap::Args;
use gotmpl::Value;
use serde_json::Value as J;

use crate::app::{Ctx, errln, out, outln};
use crate::client::{ApiError, query};
use crate::container::ContainerError;
use crate::format::{self, TemplateErrorKind, tabwriter::TabWriter, template};
use crate::image::ImageError;
use crate::opts::{self, Filters};
use crate::{timefmt, units};

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Template(#[from] TemplateErrorKind),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Time(#[from] timefmt::TimeError),
    #[error("errors pretty printing info")]
    Info,
}

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(short = 'f', long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(short = 'f', long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DfArgs {
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since", value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until", value_name = "string")]
    pub until: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub volumes: bool,
}

async fn get_json(ctx: &Ctx, path: &str) -> Result<J, ApiError> {
    let c = ctx.client()?;
    let mut r = c.raw("GET", path, false, None).await?;
    let b = r.read_to_end().await?;
    serde_json::from_slice(&b).map_err(|e| ApiError::Protocol(e.to_string()))
}

fn js(v: &J, k: &str) -> String {
    match v.get(k) {
        Some(J::String(s)) => s.clone(),
        Some(J::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn client_section(ctx: &Ctx) -> String {
    let _ = ctx;
    format!("Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n", env!("CARGO_PKG_VERSION"))
}

/// docker's `info` layout over the `/info` JSON.
pub fn pretty_info(i: &J) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k} {v}\n"));
    let non_empty = |v: String| if v.is_empty() { None } else { Some(v) };
    line(" Containers:", js(i, "Containers"));
    line("  Running:", js(i, "ContainersRunning"));
    line("  Paused:", js(i, "ContainersPaused"));
    line("  Stopped:", js(i, "ContainersStopped"));
    line(" Images:", js(i, "Images"));
    let mut rest = String::new();
    let mut opt = |k: &str, v: String| {
        if let Some(v) = non_empty(v) {
            rest.push_str(&format!("{k} {v}\n"));
        }
    };
    opt(" Server Version:", js(i, "ServerVersion"));
    opt(" Storage Driver:", js(i, "Driver"));
    s.push_str(&rest);
    for pair in i.get("DriverStatus").and_then(|d| d.as_array()).into_iter().flatten() {
        if let Some([a, b]) = pair.as_array().map(|p| p.as_slice()) {
            s.push_str(&format!("  {}: {}\n", a.as_str().unwrap_or(""), b.as_str().unwrap_or("")));
        }
    }
    for (k, key) in [(" Logging Driver:", "LoggingDriver"), (" Cgroup Driver:", "CgroupDriver"), (" Cgroup Version:", "CgroupVersion")] {
        let v = js(i, key);
        if !v.is_empty() {
            s.push_str(&format!("{k} {v}\n"));
        }
    }
    let plugins = i.get("Plugins").cloned().unwrap_or_default();
    let list = |k: &str| plugins.get(k).and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default();
    s.push_str(&format!(" Plugins:\n  Volume: {}\n  Network: {}\n  Log: {}\n", list("Volume"), list("Network"), list("Log")));
    s.push_str(&format!(" Swarm: {}\n", i.get("Swarm").map(|w| js(w, "LocalNodeState")).filter(|v| !v.is_empty()).unwrap_or_else(|| "inactive".into())));
    if let Some(rt) = i.get("Runtimes").and_then(|r| r.as_object()).filter(|r| !r.is_empty()) {
        s.push_str(&format!(" Runtimes: {}\n Default Runtime: {}\n", rt.keys().cloned().collect::<Vec<_>>().join(" "), js(i, "DefaultRuntime")));
    }
    if js(i, "OSType") == "linux" {
        s.push_str(&format!(" Init Binary: {}\n", js(i, "InitBinary")));
        for (k, key) in [(" containerd version:", "ContainerdCommit"), (" runc version:", "RuncCommit"), (" init version:", "InitCommit")] {
            s.push_str(&format!("{k} {}\n", i.get(key).map(|c| js(c, "ID")).unwrap_or_default()));
        }
        let sec: Vec<String> = i.get("SecurityOptions").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
        if !sec.is_empty() {
            s.push_str(" Security Options:\n");
            for o in sec {
                let mut name = String::new();
                let mut profile = None;
                for kv in o.split(',') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = v.to_owned(),
                        Some(("profile", v)) => profile = Some(v.to_owned()),
                        _ => {}
                    }
                }
                s.push_str(&format!("  {name}\n"));
                if let Some(p) = profile {
                    s.push_str(&format!("   Profile: {p}\n"));
                }
            }
        }
    }
    for (k, key) in [(" Kernel Version:", "KernelVersion"), (" Operating System:", "OperatingSystem"), (" OSType:", "OSType"), (" Architecture:", "Architecture")] {
        let v = js(i, key);
        if !v.is_empty() {
            s.push_str(&format!("{k} {v}\n"));
        }
    }
    s.push_str(&format!(" CPUs: {}\n", js(i, "NCPU")));
    s.push_str(&format!(" Total Memory: {}\n", units::bytes_size(i.get("MemTotal").and_then(|m| m.as_f64()).unwrap_or(0.0))));
    for (k, key) in [(" Name:", "Name"), (" ID:", "ID")] {
        let v = js(i, key);
        if !v.is_empty() {
            s.push_str(&format!("{k} {v}\n"));
        }
    }
    s.push_str(&format!(" Docker Root Dir: {}\n", js(i, "DockerRootDir")));
    s.push_str(&format!(" Debug Mode: {}\n", i.get("Debug").and_then(|d| d.as_bool()).unwrap_or(false)));
    for (k, key) in [(" HTTP Proxy:", "HttpProxy"), (" HTTPS Proxy:", "HttpsProxy"), (" No Proxy:", "NoProxy")] {
        let v = js(i, key);
        if !v.is_empty() {
            s.push_str(&format!("{k} {v}\n"));
        }
    }
    let labels: Vec<&str> = i.get("Labels").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()).collect();
    if !labels.is_empty() {
        s.push_str(" Labels:\n");
        for l in labels {
            s.push_str(&format!("  {l}\n"));
        }
    }
    s.push_str(&format!(" Experimental: {}\n", i.get("ExperimentalBuild").and_then(|d| d.as_bool()).unwrap_or(false)));
    s.push_str(&crate::registry::info_lines(i.get("RegistryConfig")));
    s.push_str(&format!(" Live Restore Enabled: {}\n", i.get("LiveRestoreEnabled").and_then(|d| d.as_bool()).unwrap_or(false)));
    s
}

pub async fn info(ctx: &Ctx, a: &InfoArgs) -> Result<(), SystemError> {
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = format::Tmpl::parse(&format::template_source(f))?;
        let i = get_json(ctx, "/info").await?;
        let data = template::map([("ClientInfo", template::from_json(&serde_json::json!({"Version": env!("CARGO_PKG_VERSION"), "Context": "default"}))), ("ServerErrors", Value::Nil)]);
        // docker's info object: the server's fields at the top level.
        let mut merged = match template::from_json(&i) {
            Value::Map(m) => (*m).clone(),
            _ => Default::default(),
        };
        if let Value::Map(extra) = data {
            merged.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        outln(&t.execute(&Value::Map(std::sync::Arc::new(merged)))?);
        return Ok(());
    }
    out(&client_section(ctx));
    out("\nServer:\n");
    match get_json(ctx, "/info").await {
        Ok(i) => {
            out(&pretty_info(&i));
            Ok(())
        }
        Err(e) => {
            outln(&format!("ERROR: {e}"));
            Err(SystemError::Info)
        }
    }
}

/// Go's `time.ANSIC` for a build time given as RFC 3339.
fn reformat_date(s: &str) -> String {
    timefmt::parse_rfc3339(s).map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string()).unwrap_or_else(|| s.to_owned())
}

pub fn pretty_version(api: &str, server: Option<&J>) -> String {
    let mut tw = TabWriter::new(20, 1);
    tw.write(&format!(
        "Client:\n Version:\t{}\n API version:\t{api}\n Go version:\tn/a (rust)\n Git commit:\t{}\n Built:\tn/a\n OS/Arch:\t{}/{}\n Context:\tdefault",
        env!("CARGO_PKG_VERSION"),
        option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        std::env::consts::OS,
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        }
    ));
    if let Some(v) = server {
        let platform = v.get("Platform").map(|p| js(p, "Name")).unwrap_or_default();
        tw.write(&format!("\n\nServer:{}", if platform.is_empty() { String::new() } else { format!(" {platform}") }));
        let comps: Vec<J> = v.get("Components").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        let comps = if comps.iter().any(|c| js(c, "Name") == "Engine") {
            comps
        } else {
            let mut c = vec![serde_json::json!({"Name": "Engine", "Version": js(v, "Version"), "Details": {
                "ApiVersion": js(v, "ApiVersion"), "MinAPIVersion": js(v, "MinAPIVersion"), "Os": js(v, "Os"), "Arch": js(v, "Arch"),
                "GoVersion": js(v, "GoVersion"), "GitCommit": js(v, "GitCommit"), "BuildTime": js(v, "BuildTime"),
                "Experimental": v.get("Experimental").and_then(|e| e.as_bool()).unwrap_or(false).to_string()}})];
            c.extend(comps);
            c
        };
        for comp in comps {
            let d = comp.get("Details").cloned().unwrap_or_default();
            let name = js(&comp, "Name");
            tw.write(&format!("\n {name}:"));
            if name == "Engine" {
                tw.write(&format!(
                    "\n  Version:\t{}\n  API version:\t{} (minimum version {})\n  Go version:\t{}\n  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}",
                    js(&comp, "Version"),
                    js(&d, "ApiVersion"),
                    js(&d, "MinAPIVersion"),
                    js(&d, "GoVersion"),
                    js(&d, "GitCommit"),
                    reformat_date(&js(&d, "BuildTime")),
                    js(&d, "Os"),
                    js(&d, "Arch"),
                    js(&d, "Experimental")
                ));
            } else {
                tw.write(&format!("\n  Version:\t{}", js(&comp, "Version")));
                if let Some(o) = d.as_object() {
                    let mut keys: Vec<&String> = o.keys().collect();
                    keys.sort();
                    for k in keys {
                        tw.write(&format!("\n  {k}:\t{}", js(&d, k)));
                    }
                }
            }
        }
    }
    tw.write("\n");
    tw.finish()
}

pub async fn version(ctx: &Ctx, a: &VersionArgs) -> Result<(), SystemError> {
    let api = ctx.client().map(|c| c.version.clone()).unwrap_or_else(|_| crate::client::DEFAULT_API_VERSION.to_owned());
    let server = get_json(ctx, "/version").await;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = format::Tmpl::parse(&format::template_source(f))?;
        let client = serde_json::json!({"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": api, "DefaultAPIVersion": api, "Os": std::env::consts::OS, "Arch": std::env::consts::ARCH, "Context": "default"});
        let data = serde_json::json!({"Client": client, "Server": server.as_ref().ok()});
        outln(&t.execute(&template::from_json(&data))?);
    } else {
        out(&pretty_version(&api, server.as_ref().ok()));
    }
    server.map(|_| ()).map_err(Into::into)
}

fn reclaimable(reclaim: i64, total: i64) -> String {
    if total > 0 { format!("{} ({}%)", units::human_size(reclaim as f64), reclaim * 100 / total) } else { units::human_size(reclaim as f64) }
}

/// The summary rows of `df` from the `/system/df` JSON.
pub fn df_rows(d: &J) -> Vec<Value> {
    use template::s;
    let arr = |k: &str| d.get(k).and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let num = |v: &J, k: &str| v.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
    let row = |t: &str, total: usize, active: usize, size: i64, rec: String| {
        template::map([
            ("Type", s(t)),
            ("TotalCount", s(total.to_string())),
            ("Active", s(active.to_string())),
            ("Size", s(units::human_size(size as f64))),
            ("Reclaimable", s(rec)),
        ])
    };
    let images = arr("Images");
    let layers = num(d, "LayersSize");
    let active_images = images.iter().filter(|i| num(i, "Containers") > 0).count();
    let used: i64 = images
        .iter()
        .filter(|i| num(i, "Containers") != 0 && num(i, "Size") != -1 && num(i, "SharedSize") != -1)
        .map(|i| num(i, "Size") - num(i, "SharedSize"))
        .sum();
    let containers = arr("Containers");
    let running = |c: &J| matches!(c.get("State").and_then(|s| s.as_str()), Some("running" | "paused" | "restarting"));
    let csize: i64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let creclaim: i64 = containers.iter().filter(|c| !running(c)).map(|c| num(c, "SizeRw")).sum();
    let volumes = arr("Volumes");
    let vusage = |v: &J, k: &str| v.get("UsageData").map(|u| num(u, k)).unwrap_or(0);
    let vsize: i64 = volumes.iter().map(|v| vusage(v, "Size")).filter(|s| *s != -1).sum();
    let vreclaim: i64 = volumes.iter().filter(|v| vusage(v, "RefCount") == 0).map(|v| vusage(v, "Size")).filter(|s| *s != -1).sum();
    let cache = arr("BuildCache");
    let bsize: i64 = cache.iter().filter(|c| !c.get("Shared").and_then(|s| s.as_bool()).unwrap_or(false)).map(|c| num(c, "Size")).sum();
    let breclaim: i64 = cache
        .iter()
        .filter(|c| !c.get("InUse").and_then(|s| s.as_bool()).unwrap_or(false) && !c.get("Shared").and_then(|s| s.as_bool()).unwrap_or(false))
        .map(|c| num(c, "Size"))
        .sum();
    vec![
        row("Images", images.len(), active_images, layers, reclaimable(layers - used, layers)),
        row("Containers", containers.len(), containers.iter().filter(|c| running(c)).count(), csize, reclaimable(creclaim, csize)),
        row("Local Volumes", volumes.len(), volumes.iter().filter(|v| vusage(v, "RefCount") > 0).count(), vsize, reclaimable(vreclaim, vsize)),
        row(
            "Build Cache",
            cache.len(),
            cache.iter().filter(|c| c.get("InUse").and_then(|s| s.as_bool()).unwrap_or(false)).count(),
            bsize,
            units::human_size(breclaim as f64),
        ),
    ]
}

fn df_header() -> Value {
    use template::s;
    template::map([("Type", s("TYPE")), ("TotalCount", s("TOTAL")), ("Active", s("ACTIVE")), ("Size", s("SIZE")), ("Reclaimable", s("RECLAIMABLE"))])
}

pub async fn df(ctx: &Ctx, a: &DfArgs) -> Result<(), SystemError> {
    let d = get_json(ctx, "/system/df").await?;
    if !a.verbose {
        let f = a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "table".into());
        let f = if f == "table" { "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".to_owned() } else { f };
        out(&format::render(&f, &df_rows(&d), &df_header())?);
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp();
    let mut s = String::from("Images space usage:\n\n");
    let images: Vec<berth_api::models::ImageSummary> =
        d.get("Images").cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    let mut rows = Vec::new();
    for i in &images {
        rows.extend(crate::image::image_rows(i, true, false, false, now));
    }
    s.push_str(&format::render(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        &rows,
        &template::map([
            ("Repository", template::s("REPOSITORY")),
            ("Tag", template::s("TAG")),
            ("ID", template::s("IMAGE ID")),
            ("CreatedSince", template::s("CREATED")),
            ("Size", template::s("SIZE")),
            ("SharedSize", template::s("SHARED SIZE")),
            ("UniqueSize", template::s("UNIQUE SIZE")),
            ("Containers", template::s("CONTAINERS")),
        ]),
    )?);
    s.push_str("\nContainers space usage:\n\n");
    let containers: Vec<berth_api::models::ContainerSummary> =
        d.get("Containers").cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    let rows: Vec<Value> = containers.iter().map(|c| crate::container::container_row(c, true, now)).collect();
    s.push_str(&format::render(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        &rows,
        &crate::container::ps_header(),
    )?);
    s.push_str("\nLocal Volumes space usage:\n\n");
    let mut tw = TabWriter::default();
    tw.write("VOLUME NAME\tLINKS\tSIZE\n");
    for v in d.get("Volumes").and_then(|v| v.as_array()).into_iter().flatten() {
        let u = v.get("UsageData").cloned().unwrap_or_default();
        let size = u.get("Size").and_then(|x| x.as_i64()).unwrap_or(-1);
        tw.write(&format!(
            "{}\t{}\t{}\n",
            js(v, "Name"),
            u.get("RefCount").and_then(|x| x.as_i64()).unwrap_or(0),
            if size == -1 { "N/A".into() } else { units::human_size(size as f64) }
        ));
    }
    s.push_str(&tw.finish());
    let cache_size: i64 = d.get("BuildCache").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|c| c.get("Size").and_then(|x| x.as_i64())).sum();
    s.push_str(&format!("\nBuild cache usage: {}\n\n", units::human_size(cache_size as f64)));
    out(&s);
    Ok(())
}

/// The default event line: `time type action id (k=v, ...)`.
pub fn event_line(e: &J) -> String {
    let mut s = String::new();
    let nanos = e.get("timeNano").and_then(|t| t.as_i64()).filter(|t| *t != 0).or_else(|| e.get("time").and_then(|t| t.as_i64()).map(|t| t * 1_000_000_000));
    if let Some(n) = nanos {
        let t = chrono::DateTime::from_timestamp(n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000) as u32).map(|t| t.with_timezone(&chrono::Local));
        if let Some(t) = t {
            let z = t.format("%:z").to_string();
            let z = if z == "+00:00" { "Z".to_owned() } else { z };
            s.push_str(&format!("{}{z} ", t.format("%Y-%m-%dT%H:%M:%S%.9f")));
        }
    }
    let actor = e.get("Actor").cloned().unwrap_or_default();
    s.push_str(&format!("{} {} {}", js(e, "Type"), js(e, "Action"), js(&actor, "ID")));
    if let Some(attrs) = actor.get("Attributes").and_then(|a| a.as_object()).filter(|a| !a.is_empty()) {
        let mut kv: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
        kv.sort();
        s.push_str(&format!(" ({})", kv.join(", ")));
    }
    s
}

pub async fn events(ctx: &Ctx, a: &EventsArgs) -> Result<(), SystemError> {
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(format::Tmpl::parse(&format::template_source(f))?),
        None => None,
    };
    let mut q = Vec::new();
    if let Some(s) = a.since.as_deref().filter(|s| !s.is_empty()) {
        q.push(("since", timefmt::api_timestamp(s)?));
    }
    if let Some(u) = a.until.as_deref().filter(|s| !s.is_empty()) {
        q.push(("until", timefmt::api_timestamp(u)?));
    }
    let f = Filters::from_pairs(&a.filter);
    if !f.is_empty() {
        q.push(("filters", f.to_json()));
    }
    let c = ctx.client()?;
    let mut r = c.raw("GET", &format!("/events{}", query(&q)), false, None).await?;
    let mut buf = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let Ok(e) = serde_json::from_slice::<J>(&line) else { continue };
            match &tmpl {
                Some(t) => outln(&t.execute(&template::from_json(&e))?),
                None => outln(&event_line(&e)),
            }
        }
    }
    Ok(())
}

async fn prune_call(ctx: &Ctx, what: &str, filters: &Filters) -> Result<Option<J>, ApiError> {
    let c = ctx.client()?;
    let q = if filters.is_empty() { String::new() } else { query(&[("filters", filters.to_json())]) };
    match c.raw("POST", &format!("/{what}/prune{q}"), false, None).await {
        Ok(mut r) => Ok(serde_json::from_slice(&r.read_to_end().await?).ok()),
        // Networks, volumes and the build cache arrive with later issues.
        Err(ApiError::Daemon { status: 404 | 501, .. }) if what != "containers" && what != "images" => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn prune(ctx: &Ctx, a: &SystemPruneArgs) -> Result<(), SystemError> {
    let mut warning = "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n".to_owned();
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warning.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        warning.push_str("  - all dangling images\n  - unused build cache\n");
    }
    if !a.force && !crate::container::confirm(&warning) {
        errln("Total reclaimed space: 0B");
        return Ok(());
    }
    let filters = Filters::from_pairs(&a.filter);
    let mut reclaimed: i64 = 0;
    let list = |v: &J, k: &str| v.get(k).and_then(|x| x.as_array()).cloned().unwrap_or_default();
    if let Some(r) = prune_call(ctx, "containers", &filters).await? {
        reclaimed += r.get("SpaceReclaimed").and_then(|x| x.as_i64()).unwrap_or(0);
        let d = list(&r, "ContainersDeleted");
        if !d.is_empty() {
            outln(&format!("Deleted Containers:\n{}\n", d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n")));
        }
    }
    if let Some(r) = prune_call(ctx, "networks", &filters).await? {
        let d = list(&r, "NetworksDeleted");
        if !d.is_empty() {
            outln(&format!("Deleted Networks:\n{}\n", d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n")));
        }
    }
    if a.volumes
        && let Some(r) = prune_call(ctx, "volumes", &filters).await?
    {
        reclaimed += r.get("SpaceReclaimed").and_then(|x| x.as_i64()).unwrap_or(0);
        let d = list(&r, "VolumesDeleted");
        if !d.is_empty() {
            outln(&format!("Deleted Volumes:\n{}\n", d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n")));
        }
    }
    let mut f = filters.clone();
    f.add("dangling", if a.all { "false" } else { "true" });
    if let Some(r) = prune_call(ctx, "images", &f).await? {
        reclaimed += r.get("SpaceReclaimed").and_then(|x| x.as_i64()).unwrap_or(0);
        let d = list(&r, "ImagesDeleted");
        if !d.is_empty() {
            let mut s = "Deleted Images:\n".to_owned();
            for x in d {
                if let Some(u) = x.get("Untagged").and_then(|u| u.as_str()) {
                    s.push_str(&format!("untagged: {u}\n"));
                }
                if let Some(u) = x.get("Deleted").and_then(|u| u.as_str()) {
                    s.push_str(&format!("deleted: {u}\n"));
                }
            }
            outln(&s);
        }
    }
    if let Some(r) = prune_call(ctx, "build", &filters).await? {
        reclaimed += r.get("SpaceReclaimed").and_then(|x| x.as_i64()).unwrap_or(0);
    }
    outln(&format!("Total reclaimed space: {}", units::human_size(reclaimed as f64)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn df_summary() {
        let d = json!({
            "LayersSize": 10_000_000,
            "Images": [{"Id": "sha256:a", "Containers": 1, "Size": 4_000_000, "SharedSize": 0, "RepoTags": ["bb:latest"], "Created": 0}, {"Id": "sha256:b", "Containers": 0, "Size": 6_000_000, "SharedSize": 0, "Created": 0}],
            "Containers": [{"Id": "c1", "State": "running", "SizeRw": 100}, {"Id": "c2", "State": "exited", "SizeRw": 300}],
            "Volumes": [],
            "BuildCache": []
        });
        let out = format::render("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", &df_rows(&d), &df_header()).unwrap();
        assert_eq!(
            out,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          2         1         10MB      6MB (60%)\nContainers      2         1         400B      300B (75%)\nLocal Volumes   0         0         0B        0B\nBuild Cache     0         0         0B        0B\n"
        );
    }

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}});
        assert_eq!(event_line(&e), "container start abc (image=busybox, name=web)");
    }

    #[test]
    fn version_table() {
        let v = json!({"Version": "0.1.0", "ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64", "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {"ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64", "GoVersion": "-", "GitCommit": "abc", "BuildTime": "2025-05-30T12:07:26.000000000+00:00", "Experimental": "false"}}]});
        let s = pretty_version("1.50", Some(&v));
        assert!(s.contains("\nServer:\n Engine:\n  Version:          0.1.0\n  API version:      1.50 (minimum version 1.24)\n"), "{s}");
        assert!(s.contains("  Built:            Fri May 30 12:07:26 2025\n"), "{s}");
        assert!(s.starts_with("Client:\n Version:           0.1.0\n API version:       1.50\n"), "{s}");
    }
}
