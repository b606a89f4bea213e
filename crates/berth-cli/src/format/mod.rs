//! Output: docker's `--format` values (`table ...`, `json`, Go templates),
//! its tables (Go's tabwriter) and its human units and times.

pub mod tabwriter;
pub mod template;

use gotmpl::Value;

pub use template::{TemplateErrorKind, Tmpl};

/// `--format table {{.ID}}\t{{.Image}}` → is it a table, and the template.
pub fn is_table(format: &str) -> bool {
    format.starts_with("table")
}

/// docker's `templateString`: `json` is `{{json .}}`, a `table` prefix
/// goes, `\t` and `\n` escapes become tabs and newlines.
pub fn template_source(format: &str) -> String {
    match format {
        "table" => String::new(),
        "json" => "{{json .}}".into(),
        f => {
            let f = f.strip_prefix("table").unwrap_or(f);
            f.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
        }
    }
}

/// Render rows with a format; tables get the header row (the template
/// run over `header`) and tabwriter columns.
pub fn render(format: &str, rows: &[Value], header: &Value) -> Result<String, TemplateErrorKind> {
    let src = template_source(format);
    let t = Tmpl::parse_rows(&src)?;
    let mut body = String::new();
    for r in rows {
        body.push_str(&t.execute(r)?);
        body.push('\n');
    }
    if !is_table(format) {
        return Ok(body);
    }
    let h = Tmpl::parse_header(&src)?.execute(header)?;
    let mut tw = tabwriter::TabWriter::default();
    tw.write(&h);
    tw.write("\n");
    tw.write(&body);
    Ok(tw.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use template::{map, s};

    #[test]
    fn tables_and_plain_formats() {
        let rows = vec![map([("ID", s("abc")), ("Names", s("web"))]), map([("ID", s("defghijklmnop")), ("Names", s("db"))])];
        let header = map([("ID", s("CONTAINER ID")), ("Names", s("NAMES"))]);
        assert_eq!(
            render("table {{.ID}}\\t{{.Names}}", &rows, &header).unwrap(),
            "CONTAINER ID    NAMES\nabc             web\ndefghijklmnop   db\n"
        );
        assert_eq!(render("{{.ID}}: {{.Names}}", &rows, &header).unwrap(), "abc: web\ndefghijklmnop: db\n");
        assert_eq!(render("json", &rows[..1], &header).unwrap(), "{\"ID\":\"abc\",\"Names\":\"web\"}\n");
    }
}
