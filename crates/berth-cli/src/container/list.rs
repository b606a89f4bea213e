//! ps: docker's container table (truncated IDs, 20-column commands in
//! quotes, "Up 3 seconds", grouped ports, first names) and its template
//! fields.

use std::collections::HashMap;

use berth_api::models::{ContainerSummary, PortSummary};
use gotmpl::Value;

use super::{ContainerError, PsArgs};
use crate::app::{Ctx, errln, out};
use crate::format::{self, template};
use crate::{timefmt, units};

const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps_header() -> Value {
    use template::s;
    template::map([
        ("ID", s("CONTAINER ID")),
        ("Names", s("NAMES")),
        ("Image", s("IMAGE")),
        ("Command", s("COMMAND")),
        ("CreatedAt", s("CREATED AT")),
        ("RunningFor", s("CREATED")),
        ("Ports", s("PORTS")),
        ("State", s("STATE")),
        ("Status", s("STATUS")),
        ("Size", s("SIZE")),
        ("Labels", s("LABELS")),
        ("Mounts", s("MOUNTS")),
        ("LocalVolumes", s("LOCAL VOLUMES")),
        ("Networks", s("NETWORKS")),
        ("Platform", s("PLATFORM")),
    ])
}

/// docker's `stringid.TruncateID`: drop an algorithm prefix, keep 12.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, r)| r);
    id.chars().take(12).collect()
}

/// docker's `Ellipsis` by display width.
pub fn ellipsis(s: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if max == 0 {
        return String::new();
    }
    let width: usize = s.chars().map(|c| c.width().unwrap_or(1)).sum();
    if width <= max {
        return s.to_owned();
    }
    if max == 1 {
        return s.chars().next().map(String::from).unwrap_or_default();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(1);
        if w + cw > max - 1 {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `docker.io/library/busybox:latest` → `busybox:latest`.
pub fn familiar(reference: &str) -> String {
    reference.strip_prefix("docker.io/library/").or_else(|| reference.strip_prefix("docker.io/")).unwrap_or(reference).to_owned()
}

fn image_column(c: &ContainerSummary, trunc: bool) -> String {
    let image = c.image.clone().unwrap_or_default();
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image;
    }
    let image_id = c.image_id.clone().unwrap_or_default();
    if truncate_id(&image_id) == truncate_id(&image) {
        return truncate_id(&image);
    }
    // A digested reference shows its tag (if any) without the digest.
    let name = match image.split_once('@') {
        Some((n, _)) => n.to_owned(),
        None => image,
    };
    familiar(&name)
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges.
pub fn displayable_ports(ports: &[PortSummary]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private_port, a.ip.clone().unwrap_or_default(), a.public_port.unwrap_or(0), a.typ.map(|t| t.to_string()))
            .cmp(&(b.private_port, b.ip.clone().unwrap_or_default(), b.public_port.unwrap_or(0), b.typ.map(|t| t.to_string())))
    });
    let mut groups: HashMap<String, (u16, u16)> = HashMap::new();
    let mut keys: Vec<String> = Vec::new();
    let mut result: Vec<String> = Vec::new();
    let mut host_mappings: Vec<String> = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let typ = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
        let mut key = typ.clone();
        if let Some(ip) = p.ip.as_deref().filter(|ip| !ip.is_empty()) {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                host_mappings.push(format!("{}->{}/{typ}", join_host_port(ip, &public.to_string()), p.private_port));
                continue;
            }
            key = format!("{ip}/{typ}");
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (current, current));
                keys.push(key);
            }
            Some(g) if current == g.1 + 1 => g.1 = current,
            Some(g) => {
                result.push(form_group(&key, g.0, g.1));
                *g = (current, current);
            }
        }
    }
    for k in &keys {
        let g = groups[k];
        result.push(form_group(k, g.0, g.1));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

fn form_group(key: &str, start: u16, last: u16) -> String {
    let (ip, typ) = match key.rsplit_once('/') {
        Some((ip, t)) => (ip, t),
        None => ("", key),
    };
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{typ}")
}

/// One row of `ps` as template data (`.ID`, `.Names`, `.Status`, ...).
pub fn container_row(c: &ContainerSummary, trunc: bool, now: i64) -> Value {
    use template::s;
    let id = c.id.clone().unwrap_or_default();
    let names: Vec<String> = c.names.clone().unwrap_or_default().iter().map(|n| n.trim_start_matches('/').to_owned()).collect();
    let names = if trunc { names.iter().find(|n| !n.contains('/')).cloned().unwrap_or_default() } else { names.join(",") };
    let command = c.command.clone().unwrap_or_default();
    let created = c.created.unwrap_or(0);
    let labels = c.labels.clone().unwrap_or_default();
    let mut label_list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    label_list.sort();
    let mounts: Vec<String> = c
        .mounts
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let n = m.name.clone().filter(|n| !n.is_empty()).or(m.source.clone()).unwrap_or_default();
            if trunc { ellipsis(&n, 15) } else { n }
        })
        .collect();
    let local_volumes = c.mounts.clone().unwrap_or_default().iter().filter(|m| m.driver.as_deref() == Some("local")).count();
    let mut networks: Vec<String> =
        c.network_settings.as_ref().and_then(|n| n.networks.as_ref()).map(|n| n.keys().cloned().collect()).unwrap_or_default();
    networks.sort();
    let status = c.status.clone().unwrap_or_default();
    let size_rw = c.size_rw.unwrap_or(0);
    let size_root = c.size_root_fs.unwrap_or(0);
    let size = if size_root > 0 {
        format!(
            "{} (virtual {})",
            units::human_size_precision(size_rw as f64, 3),
            units::human_size_precision(size_root as f64, 3)
        )
    } else {
        units::human_size_precision(size_rw as f64, 3)
    };
    let platform = c
        .image_manifest_descriptor
        .as_ref()
        .and_then(|d| d.platform.as_ref())
        .map(|p| {
            let mut s = format!("{}/{}", p.os.clone().unwrap_or_default(), p.architecture.clone().unwrap_or_default());
            if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
                s = format!("{s}/{v}");
            }
            s
        })
        .map(s)
        .unwrap_or(Value::Nil);
    template::map([
        ("ID", s(if trunc { truncate_id(&id) } else { id })),
        ("Names", s(names)),
        ("Image", s(image_column(c, trunc))),
        ("Command", s(go_quote(&if trunc { ellipsis(&command, 20) } else { command }))),
        ("CreatedAt", s(timefmt::go_time_string(created))),
        ("RunningFor", s(timefmt::ago_from(created, now))),
        ("Ports", s(displayable_ports(&c.ports.clone().unwrap_or_default()))),
        ("State", s(c.state.map(|s| s.to_string()).unwrap_or_default())),
        ("Status", s(status)),
        ("Size", s(size)),
        ("Labels", s(label_list.join(","))),
        ("Label", template::method(move |a| s(labels.get(&a.first().map(|v| v.to_string()).unwrap_or_default()).cloned().unwrap_or_default()))),
        ("Mounts", s(mounts.join(","))),
        ("LocalVolumes", s(local_volumes.to_string())),
        ("Networks", s(networks.join(","))),
        ("Platform", platform),
    ])
}

/// The `--format` a command uses: the flag, else the config's, else the
/// default table; `-q` is `{{.ID}}` and `raw` is docker's raw layout.
pub fn choose_format(flag: Option<&str>, config: &str, quiet: bool, size: bool) -> String {
    let f = match flag {
        Some(f) if !f.is_empty() => f,
        _ => config,
    };
    match f {
        "" | "table" if quiet => "{{.ID}}".into(),
        "" | "table" => {
            if size { format!("{DEFAULT_TABLE}\t{{{{.Size}}}}") } else { DEFAULT_TABLE.into() }
        }
        "raw" if quiet => "container_id: {{.ID}}".into(),
        "raw" => {
            let mut f = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n".to_owned();
            if size {
                f.push_str("size: {{.Size}}\\n");
            }
            f
        }
        _ if quiet => "{{.ID}}".into(),
        f => f.to_owned(),
    }
}

pub async fn ps(ctx: &Ctx, a: &PsArgs) -> Result<(), ContainerError> {
    let config_format = ctx.config().ps_format.clone();
    if a.format.as_deref().is_some_and(|f| !f.is_empty()) && a.quiet {
        errln("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let user_format = a.format.clone().filter(|f| !f.is_empty()).unwrap_or(config_format.clone());
    let size = a.size || (!a.quiet && user_format.contains(".Size"));
    let format = choose_format(a.format.as_deref(), &config_format, a.quiet, size);
    format::Tmpl::parse(&format::template_source(&format))?;
    let c = ctx.client()?;
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    let filters = crate::opts::Filters::from_pairs(&a.filter);
    let opts = bollard::query_parameters::ListContainersOptions {
        all: a.all,
        limit: if limit > 0 { Some(limit as i32) } else { None },
        size,
        filters: if filters.is_empty() { None } else { Some(filters.to_lists()) },
    };
    let list = c.docker.list_containers(Some(opts)).await.map_err(|e| c.err(e))?;
    let now = chrono::Utc::now().timestamp();
    let rows: Vec<Value> = list.iter().map(|x| container_row(x, !a.no_trunc, now)).collect();
    out(&format::render(&format, &rows, &ps_header())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::PortSummaryTypeEnum;

    fn port(ip: Option<&str>, private: u16, public: Option<u16>, typ: PortSummaryTypeEnum) -> PortSummary {
        PortSummary { ip: ip.map(String::from), private_port: private, public_port: public, typ: Some(typ) }
    }

    #[test]
    fn ports_group_like_docker() {
        use PortSummaryTypeEnum::{TCP, UDP};
        let ps = vec![
            port(None, 9988, None, TCP),
            port(None, 9989, None, TCP),
            port(Some("0.0.0.0"), 8080, Some(8080), TCP),
            port(Some("0.0.0.0"), 80, Some(8081), TCP),
            port(Some("::"), 53, Some(53), UDP),
        ];
        assert_eq!(displayable_ports(&ps), "[::]:53->53/udp, 0.0.0.0:8080->8080/tcp, 9988-9989/tcp, 0.0.0.0:8081->80/tcp");
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn truncation_and_quoting() {
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(ellipsis("sh -c 'while true; do sleep 1; done'", 20), "sh -c 'while true; …");
        assert_eq!(go_quote("echo \"hi\"\n"), "\"echo \\\"hi\\\"\\n\"");
        assert_eq!(familiar("docker.io/library/busybox:latest"), "busybox:latest");
    }
}
