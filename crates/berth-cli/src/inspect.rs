//! inspect: the daemon's JSON, as it sent it, in a 4-space indented array
//! (Go's `MarshalIndent` of raw messages: key order kept, `<>&` escaped),
//! or each object through a `-f` template.

use clap::Args;

use crate::app::{Ctx, out};
use crate::client::{ApiError, Client, percent_encode};
use crate::format::{TemplateErrorKind, Tmpl, template};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Template(#[from] TemplateErrorKind),
    #[error("Error: No such object: {0}")]
    NoSuchObject(String),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<InspectError>),
    #[error("\"{0}\" is not a valid value for --type")]
    BadType(String),
    #[error("{kind} inspect is not implemented yet in berth")]
    NotYet { kind: String },
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(short = 'f', long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub typ: Option<String>,
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(short = 'f', long = "format", value_name = "string", verbatim_doc_comment)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub names: Vec<String>,
}

/// Re-indent JSON text as Go's `json.MarshalIndent` over a raw message:
/// the daemon's key order, 4-space indents, `{}`/`[]` kept tight, and
/// `<`, `>`, `&`, U+2028, U+2029 escaped.
pub fn indent_json(raw: &[u8], prefix_depth: usize) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len() * 2);
    let mut depth = prefix_depth;
    let mut in_str = false;
    let mut escaped = false;
    let chars: Vec<char> = s.chars().collect();
    let newline = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("    ");
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            if escaped {
                escaped = false;
                out.push(c);
            } else {
                match c {
                    '\\' => {
                        escaped = true;
                        out.push(c);
                    }
                    '"' => {
                        in_str = false;
                        out.push(c);
                    }
                    '<' => out.push_str("\\u003c"),
                    '>' => out.push_str("\\u003e"),
                    '&' => out.push_str("\\u0026"),
                    '\u{2028}' => out.push_str("\\u2028"),
                    '\u{2029}' => out.push_str("\\u2029"),
                    c => out.push(c),
                }
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == close {
                    out.push(c);
                    out.push(close);
                    i = j + 1;
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Print the raw objects: as the JSON array, or through the template.
pub fn print(objects: &[Vec<u8>], format: Option<&str>) -> Result<(), InspectError> {
    match format.filter(|f| !f.is_empty()) {
        None => {
            if objects.is_empty() {
                out("[]\n");
                return Ok(());
            }
            let mut s = String::from("[\n");
            for (i, o) in objects.iter().enumerate() {
                s.push_str("    ");
                s.push_str(&indent_json(o, 1));
                if i + 1 < objects.len() {
                    s.push(',');
                }
                s.push('\n');
            }
            s.push_str("]\n");
            out(&s);
        }
        Some(f) => {
            let t = Tmpl::parse(&crate::format::template_source(f))?;
            let mut s = String::new();
            for o in objects {
                let v: serde_json::Value = serde_json::from_slice(o).unwrap_or_default();
                s.push_str(&t.execute(&template::from_json(&v))?);
                s.push('\n');
            }
            out(&s);
        }
    }
    Ok(())
}

async fn get_raw(c: &Client, path: &str) -> Result<Vec<u8>, ApiError> {
    let mut r = c.raw("GET", path, false, None).await?;
    r.read_to_end().await
}

pub async fn container_raw(c: &Client, name: &str, size: bool) -> Result<Vec<u8>, ApiError> {
    get_raw(c, &format!("/containers/{}/json{}", percent_encode(name), if size { "?size=1" } else { "" })).await
}

pub async fn image_raw(c: &Client, name: &str) -> Result<Vec<u8>, ApiError> {
    get_raw(c, &format!("/images/{}/json", percent_encode(name))).await
}

/// `berth container inspect` / `berth image inspect`.
pub async fn inspect_kind(ctx: &Ctx, kind: &str, names: &[String], size: bool, format: Option<&str>) -> Result<(), InspectError> {
    let c = ctx.client()?;
    let mut objs = Vec::new();
    let mut errs = Vec::new();
    for n in names {
        let r = match kind {
            "container" => container_raw(c, n, size).await,
            _ => image_raw(c, n).await,
        };
        match r {
            Ok(b) => objs.push(b),
            Err(e) => errs.push(e.into()),
        }
    }
    print(&objs, format)?;
    if errs.is_empty() { Ok(()) } else { Err(InspectError::Many(errs)) }
}

pub async fn container_inspect(ctx: &Ctx, a: &ContainerInspectArgs) -> Result<(), InspectError> {
    inspect_kind(ctx, "container", &a.names, a.size, a.format.as_deref()).await
}

/// `berth inspect`: containers first, then images (then the kinds that
/// come later: networks, volumes).
pub async fn inspect(ctx: &Ctx, a: &InspectArgs) -> Result<(), InspectError> {
    let kinds: Vec<&str> = match a.typ.as_deref() {
        None | Some("") => vec!["container", "image"],
        Some(t @ ("container" | "image")) => vec![t],
        Some(t @ ("network" | "volume" | "plugin" | "node" | "service" | "task" | "secret" | "config")) => {
            return Err(InspectError::NotYet { kind: t.to_owned() });
        }
        Some(t) => return Err(InspectError::BadType(t.to_owned())),
    };
    let c = ctx.client()?;
    let mut objs = Vec::new();
    let mut errs = Vec::new();
    'names: for n in &a.names {
        for k in &kinds {
            let r = match *k {
                "container" => container_raw(c, n, a.size).await,
                _ => image_raw(c, n).await,
            };
            match r {
                Ok(b) => {
                    objs.push(b);
                    continue 'names;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    errs.push(e.into());
                    continue 'names;
                }
            }
        }
        errs.push(InspectError::NoSuchObject(n.clone()));
    }
    print(&objs, a.format.as_deref())?;
    if errs.is_empty() { Ok(()) } else { Err(InspectError::Many(errs)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go_and_keeps_key_order() {
        let raw = br#"{"Id":"abc","State":{"Pid":12,"Running":true},"Args":[],"Config":{},"Env":["A=<b>&"],"Z":null}"#;
        assert_eq!(
            indent_json(raw, 1),
            "{\n        \"Id\": \"abc\",\n        \"State\": {\n            \"Pid\": 12,\n            \"Running\": true\n        },\n        \"Args\": [],\n        \"Config\": {},\n        \"Env\": [\n            \"A=\\u003cb\\u003e\\u0026\"\n        ],\n        \"Z\": null\n    }"
        );
        assert_eq!(indent_json(br#"{"a":"x\"y,{"}"#, 0), "{\n    \"a\": \"x\\\"y,{\"\n}");
    }
}
