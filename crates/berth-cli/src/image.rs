//! Image commands: images, rmi, prune, history, tag, save, load, import.

use berth_api::models::{ImageHistoryResponseItem, ImageSummary};
use clap::Args;
use gotmpl::Value;

use crate::app::{Ctx, errln, out, outln};
use crate::client::{ApiError, percent_encode, query};
use crate::container::ContainerError;
use crate::format::{self, TemplateErrorKind, template};
use crate::opts::{self, Filters};
use crate::{timefmt, units};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Template(#[from] TemplateErrorKind),
    #[error(transparent)]
    Stream(#[from] ContainerError),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ImageError>),
    #[error("requested load from stdin, but stdin is empty")]
    EmptyStdin,
    #[error("open {path}: {reason}")]
    Open { path: String, reason: String },
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImageInspectArgs {
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(short = 'f', long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter", value_parser = opts::filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = opts::go_bool)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input", value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message", value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

const DEFAULT_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DEFAULT_TABLE_DIGEST: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

fn images_header() -> Value {
    use template::s;
    template::map([
        ("ID", s("IMAGE ID")),
        ("Repository", s("REPOSITORY")),
        ("Tag", s("TAG")),
        ("Digest", s("DIGEST")),
        ("CreatedSince", s("CREATED")),
        ("CreatedAt", s("CREATED AT")),
        ("Size", s("SIZE")),
        ("Containers", s("CONTAINERS")),
        ("SharedSize", s("SHARED SIZE")),
        ("UniqueSize", s("UNIQUE SIZE")),
    ])
}

fn is_dangling(i: &ImageSummary) -> bool {
    (i.repo_tags.is_empty() && i.repo_digests.is_empty())
        || (i.repo_tags == ["<none>:<none>"] && i.repo_digests == ["<none>@<none>"])
}

/// `docker.io/library/busybox:1` → ("busybox", "1"): familiar name and tag.
fn name_tag(r: &str) -> Option<(String, String)> {
    let r = crate::container::familiar_ref(r);
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    let colon = r[slash..].rfind(':')? + slash;
    Some((r[..colon].to_owned(), r[colon + 1..].to_owned()))
}

fn name_digest(r: &str) -> Option<(String, String)> {
    let r = crate::container::familiar_ref(r);
    let (n, d) = r.split_once('@')?;
    Some((n.to_owned(), d.to_owned()))
}

/// The rows `images` prints for one image: one per repository:tag (and
/// digest when shown), `<none>` for dangling ones.
pub fn image_rows(img: &ImageSummary, trunc: bool, digests: bool, need_digest: bool, now: i64) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut add = |repo: &str, tag: &str, digest: &str| rows.push(image_row(img, repo, tag, digest, trunc, now));
    if is_dangling(img) {
        add("<none>", "<none>", "<none>");
        return rows;
    }
    // docker walks Go maps here (random order); berth keeps the API's order.
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &img.repo_tags {
        if let Some((n, t)) = name_tag(t) {
            match repo_tags.iter_mut().find(|(r, _)| *r == n) {
                Some((_, ts)) => ts.push(t),
                None => repo_tags.push((n, vec![t])),
            }
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in &img.repo_digests {
        if let Some((n, d)) = name_digest(d) {
            match repo_digests.iter_mut().find(|(r, _)| *r == n) {
                Some((_, ds)) => ds.push(d),
                None => repo_digests.push((n, vec![d])),
            }
        }
    }
    for (repo, tags) in &repo_tags {
        let ds = match repo_digests.iter().position(|(r, _)| r == repo) {
            Some(i) => repo_digests.remove(i).1,
            None => Vec::new(),
        };
        let ds = if need_digest { ds } else { Vec::new() };
        for tag in tags {
            if ds.is_empty() {
                add(repo, tag, "<none>");
            }
            for d in &ds {
                add(repo, tag, d);
            }
        }
    }
    for (repo, ds) in &repo_digests {
        if digests {
            for d in ds {
                add(repo, "<none>", d);
            }
        } else {
            add(repo, "<none>", "");
        }
    }
    rows
}

fn image_row(i: &ImageSummary, repo: &str, tag: &str, digest: &str, trunc: bool, now: i64) -> Value {
    use template::s;
    let id = if trunc { crate::container::truncate_id(&i.id) } else { i.id.clone() };
    template::map([
        ("ID", s(id)),
        ("Repository", s(repo)),
        ("Tag", s(tag)),
        ("Digest", s(digest)),
        ("CreatedSince", s(if i.created == 0 { String::new() } else { timefmt::ago_from(i.created, now) })),
        ("CreatedAt", s(timefmt::go_time_string(i.created))),
        ("Size", s(units::human_size_precision(i.size as f64, 3))),
        ("Containers", s(if i.containers == -1 { "N/A".into() } else { i.containers.to_string() })),
        ("SharedSize", s(if i.shared_size == -1 { "N/A".into() } else { units::human_size(i.shared_size as f64) })),
        ("UniqueSize", s(if i.size == -1 || i.shared_size == -1 { "N/A".into() } else { units::human_size((i.size - i.shared_size) as f64) })),
        ("VirtualSize", s(units::human_size(i.size as f64))),
    ])
}

pub async fn images(ctx: &Ctx, a: &ImagesArgs) -> Result<(), ImageError> {
    let mut filters = Filters::from_pairs(&a.filter);
    if let Some(r) = &a.reference {
        filters.add("reference", r);
    }
    let config_format = ctx.config().images_format.clone();
    let f = match &a.format {
        Some(f) if !f.is_empty() => f.clone(),
        _ if !config_format.is_empty() && !a.quiet => config_format,
        _ => "table".into(),
    };
    let format = match f.as_str() {
        "table" if a.quiet => "{{.ID}}".to_owned(),
        "table" => if a.digests { DEFAULT_TABLE_DIGEST } else { DEFAULT_TABLE }.to_owned(),
        _ if a.quiet => "{{.ID}}".to_owned(),
        f => f.to_owned(),
    };
    format::Tmpl::parse(&format::template_source(&format))?;
    let c = ctx.client()?;
    let o = bollard::query_parameters::ListImagesOptions {
        all: a.all,
        filters: if filters.is_empty() { None } else { Some(filters.to_lists()) },
        ..Default::default()
    };
    let list = c.docker.list_images(Some(o)).await.map_err(|e| c.err(e))?;
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let now = chrono::Utc::now().timestamp();
    let mut rows = Vec::new();
    for i in &list {
        rows.extend(image_rows(i, !a.no_trunc, a.digests, need_digest, now));
    }
    out(&format::render(&format, &rows, &images_header())?);
    Ok(())
}

pub async fn rmi(ctx: &Ctx, a: &RmiArgs) -> Result<(), ImageError> {
    let c = ctx.client()?;
    let mut errs = Vec::new();
    for img in &a.images {
        let o = bollard::query_parameters::RemoveImageOptions { force: a.force, noprune: a.no_prune, ..Default::default() };
        match c.docker.remove_image(img, Some(o), None).await.map_err(|e| c.err(e)) {
            Ok(items) => {
                for d in items {
                    if let Some(u) = d.untagged {
                        outln(&format!("Untagged: {u}"));
                    }
                    if let Some(x) = d.deleted {
                        outln(&format!("Deleted: {x}"));
                    }
                }
            }
            Err(e) => errs.push(e.into()),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(ImageError::Many(errs)) }
}

pub async fn prune(ctx: &Ctx, a: &ImagePruneArgs) -> Result<(), ImageError> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !crate::container::confirm(warning) {
        errln("Total reclaimed space: 0B");
        return Ok(());
    }
    let c = ctx.client()?;
    let mut f = Filters::from_pairs(&a.filter);
    f.add("dangling", if a.all { "false" } else { "true" });
    let o = bollard::query_parameters::PruneImagesOptions { filters: Some(f.to_lists()) };
    let r = c.docker.prune_images(Some(o)).await.map_err(|e| c.err(e))?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        let mut s = "Deleted Images:\n".to_owned();
        for d in deleted {
            if let Some(u) = d.untagged {
                s.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(x) = d.deleted {
                s.push_str(&format!("deleted: {x}\n"));
            }
        }
        outln(&s);
    }
    outln(&format!("Total reclaimed space: {}", units::human_size(r.space_reclaimed.unwrap_or(0) as f64)));
    Ok(())
}

fn history_header(human: bool) -> Value {
    use template::s;
    template::map([
        ("ID", s("IMAGE")),
        ("CreatedSince", s(if human { "CREATED" } else { "CREATED AT" })),
        ("CreatedAt", s("CREATED AT")),
        ("CreatedBy", s("CREATED BY")),
        ("Size", s("SIZE")),
        ("Comment", s("COMMENT")),
    ])
}

pub fn history_row(h: &ImageHistoryResponseItem, trunc: bool, human: bool, now: i64) -> Value {
    use template::s;
    let id = if h.id == "<missing>" || !trunc { h.id.clone() } else { crate::container::truncate_id(&h.id) };
    let created_by = h.created_by.replace('\t', " ");
    let created_at = chrono::DateTime::from_timestamp(h.created, 0)
        .map(|t| t.with_timezone(&chrono::Local).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    template::map([
        ("ID", s(id)),
        ("CreatedSince", s(if human { timefmt::ago_from(h.created, now) } else { created_at.clone() })),
        ("CreatedAt", s(created_at)),
        ("CreatedBy", s(if trunc { crate::container::ellipsis(&created_by, 45) } else { created_by })),
        ("Size", s(if human { units::human_size_precision(h.size as f64, 3) } else { h.size.to_string() })),
        ("Comment", s(&h.comment)),
        ("Tags", s(h.tags.join(", "))),
    ])
}

pub async fn history(ctx: &Ctx, a: &HistoryArgs) -> Result<(), ImageError> {
    let f = a.format.clone().unwrap_or_default();
    let format = match f.as_str() {
        "" | "table" if a.quiet => "{{.ID}}".to_owned(),
        "" | "table" => "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_owned(),
        _ if a.quiet => "{{.ID}}".to_owned(),
        f => f.to_owned(),
    };
    format::Tmpl::parse(&format::template_source(&format))?;
    let c = ctx.client()?;
    let h = c.docker.image_history(&a.image).await.map_err(|e| c.err(e))?;
    let now = chrono::Utc::now().timestamp();
    let rows: Vec<Value> = h.iter().map(|x| history_row(x, !a.no_trunc, a.human, now)).collect();
    out(&format::render(&format, &rows, &history_header(a.human))?);
    Ok(())
}

pub async fn tag(ctx: &Ctx, a: &TagArgs) -> Result<(), ImageError> {
    let c = ctx.client()?;
    let (repo, tag) = crate::container::split_tag(&a.target);
    let q = query(&[("repo", repo.to_owned()), ("tag", tag.to_owned())]);
    let mut r = c.raw("POST", &format!("/images/{}/tag{q}", percent_encode(&a.source)), false, None).await?;
    r.read_to_end().await?;
    Ok(())
}

pub async fn save(ctx: &Ctx, a: &SaveArgs) -> Result<(), ImageError> {
    let c = ctx.client()?;
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let s = c.docker.export_images(&names);
    crate::container::save_stream(Box::pin(s), c, a.output.as_deref()).await?;
    Ok(())
}

async fn show_json_stream(mut r: crate::client::RawResponse, quiet: bool) -> Result<(), ImageError> {
    let mut buf = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            crate::container::show_progress(&line, quiet)?;
        }
    }
    crate::container::show_progress(&buf, quiet)?;
    Ok(())
}

/// The `status` lines of import print on stdout.
async fn show_status_stream(mut r: crate::client::RawResponse) -> Result<(), ImageError> {
    let body = r.read_to_end().await?;
    for line in body.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        if let Some(e) = v.get("errorDetail").and_then(|d| d.get("message")).or_else(|| v.get("error")).and_then(|m| m.as_str()) {
            return Err(ContainerError::Pull(e.to_owned()).into());
        }
        if let Some(s) = v.get("status").and_then(|s| s.as_str()) {
            outln(s);
        }
    }
    Ok(())
}

async fn open_source(path: Option<&str>) -> Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>, ImageError> {
    match path {
        Some(p) if !p.is_empty() && p != "-" => {
            let f = tokio::fs::File::open(p).await.map_err(|e| ImageError::Open { path: p.to_owned(), reason: opts::io_reason(&e) })?;
            Ok(Box::new(f))
        }
        _ => Ok(Box::new(tokio::io::stdin())),
    }
}

pub async fn load(ctx: &Ctx, a: &LoadArgs) -> Result<(), ImageError> {
    if a.input.as_deref().is_none_or(|i| i.is_empty() || i == "-") && crate::container::tty::stdin_is_tty() {
        return Err(ImageError::EmptyStdin);
    }
    let c = ctx.client()?;
    let mut src = open_source(a.input.as_deref()).await?;
    let q = if a.quiet { "?quiet=1" } else { "?quiet=0" };
    let r = c.upload("POST", &format!("/images/load{q}"), "application/x-tar", &mut src).await?;
    show_json_stream(r, false).await
}

pub async fn import(ctx: &Ctx, a: &ImportArgs) -> Result<(), ImageError> {
    let c = ctx.client()?;
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let mut q = vec![("fromSrc", if is_url { a.source.clone() } else { "-".to_owned() })];
    if let Some(r) = &a.reference {
        let (repo, tag) = crate::container::split_tag(r);
        q.push(("repo", repo.to_owned()));
        if r.contains(':') && !r[r.rfind(':').unwrap_or(0)..].contains('/') {
            q.push(("tag", tag.to_owned()));
        }
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    let path = format!("/images/create{}", query(&q));
    let r = if is_url {
        c.raw("POST", &path, false, None).await?
    } else {
        let mut src = open_source(Some(&a.source)).await?;
        c.upload("POST", &path, "application/x-tar", &mut src).await?
    };
    show_status_stream(r).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(tags: &[&str], digests: &[&str]) -> ImageSummary {
        ImageSummary {
            id: "sha256:0123456789abcdef0123456789abcdef".into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            created: 1_700_000_000,
            size: 4_256_768,
            shared_size: -1,
            containers: -1,
            ..Default::default()
        }
    }

    fn fields(v: &[Value]) -> Vec<String> {
        let t = format::Tmpl::parse("{{.Repository}}|{{.Tag}}|{{.Digest}}|{{.ID}}|{{.Size}}|{{.CreatedSince}}").unwrap();
        v.iter().map(|r| t.execute(r).unwrap()).collect()
    }

    #[test]
    fn rows_per_tag_and_digest() {
        let now = 1_700_000_000 + 3 * 86400;
        let i = img(&["busybox:latest", "docker.io/library/busybox:1"], &["busybox@sha256:abc"]);
        assert_eq!(
            fields(&image_rows(&i, true, false, false, now)),
            vec!["busybox|latest|<none>|0123456789ab|4.26MB|3 days ago", "busybox|1|<none>|0123456789ab|4.26MB|3 days ago"]
        );
        assert_eq!(fields(&image_rows(&i, true, true, true, now))[0], "busybox|latest|sha256:abc|0123456789ab|4.26MB|3 days ago");
        let dangling = img(&[], &[]);
        assert_eq!(fields(&image_rows(&dangling, true, false, false, now)), vec!["<none>|<none>|<none>|0123456789ab|4.26MB|3 days ago"]);
        let digest_only = img(&[], &["localhost:5000/x@sha256:d"]);
        assert_eq!(fields(&image_rows(&digest_only, true, false, false, now)), vec!["localhost:5000/x|<none>||0123456789ab|4.26MB|3 days ago"]);
    }

    #[test]
    fn the_images_table() {
        let now = 1_700_000_000 + 120;
        let rows = image_rows(&img(&["busybox:latest"], &[]), true, false, false, now);
        assert_eq!(
            format::render(DEFAULT_TABLE, &rows, &images_header()).unwrap(),
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\nbusybox      latest    0123456789ab   2 minutes ago   4.26MB\n"
        );
    }

    #[test]
    fn history_rows() {
        let h = ImageHistoryResponseItem {
            id: "<missing>".into(),
            created: 100,
            created_by: "/bin/sh -c #(nop)\tCMD [\"sh\"] with a rather long tail that goes on".into(),
            tags: vec![],
            size: 0,
            comment: String::new(),
        };
        let t = format::Tmpl::parse("{{.ID}}|{{.CreatedBy}}|{{.Size}}").unwrap();
        assert_eq!(t.execute(&history_row(&h, true, true, 200)).unwrap(), "<missing>|/bin/sh -c #(nop) CMD [\"sh\"] with a rather l…|0B");
    }
}
