//! docker's `--format` Go templates over `gotmpl`, with docker's functions
//! (`json`, `join`, `split`, `lower`, `upper`, `title`, `pad`, `truncate`)
//! and its header functions for table headers.
//!
//! Go templates call methods with arguments (`{{.Label "com.x"}}`); data
//! here is a map, so such a method is a function value, and a command whose
//! head is a field followed by arguments is rewritten to `call .Field args`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, Parser, PipeNode, SmolStr};
use gotmpl::{FuncMap, Template, TemplateError, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateErrorKind {
    #[error("template parsing error: {0}")]
    Parse(TemplateError),
    #[error("template parsing error: {0}")]
    Execute(TemplateError),
}

const MAIN: &str = "main";

/// A parsed `--format` template.
pub struct Tmpl {
    inner: Template,
}

impl Tmpl {
    pub fn parse(src: &str) -> Result<Tmpl, TemplateErrorKind> {
        Self::parse_with(src, docker_funcs(false))
    }

    /// For docker's formatter contexts (ps, images, stats rows): their
    /// JSON comes from Go's `json.Marshal`, which escapes `<`, `>`, `&`.
    pub fn parse_rows(src: &str) -> Result<Tmpl, TemplateErrorKind> {
        Self::parse_with(src, docker_funcs(true))
    }

    /// The same template with header functions, to render a table's header
    /// row from a map of field name → column title.
    pub fn parse_header(src: &str) -> Result<Tmpl, TemplateErrorKind> {
        Self::parse_with(src, header_funcs())
    }

    fn parse_with(src: &str, funcs: FuncMap) -> Result<Tmpl, TemplateErrorKind> {
        let (mut tree, defines) = Parser::new(src, "{{", "}}").and_then(|p| p.parse()).map_err(TemplateErrorKind::Parse)?;
        rewrite_list(&mut tree);
        let mut t = Template::new("").funcs(funcs).add_parse_tree(MAIN, tree);
        for mut d in defines {
            rewrite_list(&mut d.body);
            t = t.add_parse_tree(&d.name, d.body);
        }
        Ok(Tmpl { inner: t })
    }

    pub fn execute(&self, data: &Value) -> Result<String, TemplateErrorKind> {
        self.inner.execute_template_to_string(MAIN, data).map_err(TemplateErrorKind::Execute)
    }
}

fn rewrite_list(l: &mut ListNode) {
    for n in &mut l.nodes {
        rewrite_node(n);
    }
}

fn rewrite_node(n: &mut Node) {
    match n {
        Node::List(l) => rewrite_list(l),
        Node::Action(a) => rewrite_pipe(&mut a.pipe),
        Node::If(b) | Node::Range(b) | Node::With(b) => {
            rewrite_pipe(&mut b.pipe);
            rewrite_list(&mut b.body);
            if let Some(e) = &mut b.else_body {
                rewrite_list(e);
            }
        }
        Node::Template(t) => {
            if let Some(p) = &mut t.pipe {
                rewrite_pipe(p);
            }
        }
        Node::Define(d) => rewrite_list(&mut d.body),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
    }
}

fn rewrite_pipe(p: &mut PipeNode) {
    let n = p.commands.len();
    for (i, c) in p.commands.iter_mut().enumerate() {
        rewrite_command(c, i > 0 || n > 1);
    }
}

fn rewrite_command(c: &mut CommandNode, piped: bool) {
    for a in &mut c.args {
        if let Expr::Pipe(_, p) = a {
            rewrite_pipe(p);
        }
    }
    let method_call = matches!(c.args.first(), Some(Expr::Field(..) | Expr::Variable(_, _, _)))
        && (c.args.len() > 1 || (piped && matches!(c.args.first(), Some(Expr::Field(..)))))
        && match c.args.first() {
            Some(Expr::Field(_, f)) => f.last().is_some_and(|s| METHODS.contains(&s.as_str())),
            Some(Expr::Variable(_, _, f)) => f.last().is_some_and(|s| METHODS.contains(&s.as_str())),
            _ => false,
        };
    if method_call {
        let pos = c.args[0].pos();
        c.args.insert(0, Expr::Identifier(pos, SmolStr::new("call")));
    }
}

/// Fields that are methods taking arguments in docker's formatter contexts.
const METHODS: &[&str] = &["Label"];

fn arg_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn str_val(s: impl Into<Arc<str>>) -> Value {
    Value::String(s.into())
}

fn func(f: impl Fn(&[Value]) -> gotmpl::Result<Value> + Send + Sync + 'static) -> gotmpl::ValueFunc {
    Arc::new(f)
}

fn need(name: &str, args: &[Value], n: usize) -> gotmpl::Result<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(TemplateError::Exec(format!("wrong number of args for {name}: want {n} got {}", args.len())))
    }
}

fn docker_funcs(escape_html: bool) -> FuncMap {
    let mut m = FuncMap::new();
    m.insert("json".into(), func(move |a| {
        need("json", a, 1)?;
        let j = to_json(&a[0]).to_string();
        Ok(str_val(if escape_html { go_html_escape(&j) } else { j }))
    }));
    m.insert("split".into(), func(|a| {
        need("split", a, 2)?;
        let (s, sep) = (arg_str(&a[0]), arg_str(&a[1]));
        let parts: Vec<Value> = if sep.is_empty() {
            s.chars().map(|c| str_val(c.to_string())).collect()
        } else {
            s.split(sep.as_str()).map(str_val).collect()
        };
        Ok(Value::List(parts.into()))
    }));
    m.insert("join".into(), func(|a| {
        need("join", a, 2)?;
        let sep = arg_str(&a[1]);
        let s = match &a[0] {
            Value::List(l) => l.iter().map(arg_str).collect::<Vec<_>>().join(&sep),
            Value::Nil => String::new(),
            other => return Err(TemplateError::Exec(format!("wrong type for value; expected []string; got {}", other.type_name()))),
        };
        Ok(str_val(s))
    }));
    m.insert("title".into(), func(|a| {
        need("title", a, 1)?;
        Ok(str_val(go_title(&arg_str(&a[0]))))
    }));
    m.insert("lower".into(), func(|a| {
        need("lower", a, 1)?;
        Ok(str_val(arg_str(&a[0]).to_lowercase()))
    }));
    m.insert("upper".into(), func(|a| {
        need("upper", a, 1)?;
        Ok(str_val(arg_str(&a[0]).to_uppercase()))
    }));
    m.insert("pad".into(), func(|a| {
        need("pad", a, 3)?;
        let s = arg_str(&a[0]);
        if s.is_empty() {
            return Ok(str_val(s));
        }
        let pre = a[1].as_int().unwrap_or(0).max(0) as usize;
        let post = a[2].as_int().unwrap_or(0).max(0) as usize;
        Ok(str_val(format!("{}{s}{}", " ".repeat(pre), " ".repeat(post))))
    }));
    m.insert("truncate".into(), func(|a| {
        need("truncate", a, 2)?;
        let s = arg_str(&a[0]);
        let n = a[1].as_int().unwrap_or(0).max(0) as usize;
        if s.len() < n {
            return Ok(str_val(s));
        }
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Ok(str_val(&s[..end]))
    }));
    m
}

fn header_funcs() -> FuncMap {
    let mut m = FuncMap::new();
    for name in ["json", "split", "join", "title", "lower", "upper", "pad", "truncate"] {
        m.insert(name.into(), func(|a| Ok(a.first().cloned().unwrap_or(Value::Nil))));
    }
    m
}

/// Go's JSON HTML escaping of `<`, `>`, `&` (safe on encoded JSON: those
/// bytes only occur inside strings).
fn go_html_escape(s: &str) -> String {
    s.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// Go's deprecated `strings.Title`: upper-case the first letter of each word.
fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// A template value as JSON (Go's encoder: map keys sorted, no HTML escaping).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => serde_json::Value::Object(
            m.iter().filter(|(_, v)| !matches!(v, Value::Function(_))).map(|(k, v)| (k.to_string(), to_json(v))).collect(),
        ),
    }
}

/// JSON (an API response) as template data.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::Uint(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => str_val(s.as_str()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(from_json).collect::<Vec<_>>().into()),
        serde_json::Value::Object(o) => {
            Value::Map(Arc::new(o.iter().map(|(k, v)| (Arc::from(k.as_str()), from_json(v))).collect()))
        }
    }
}

/// Build a map value from (key, value) pairs.
pub fn map(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let m: BTreeMap<Arc<str>, Value> = pairs.into_iter().map(|(k, v)| (Arc::from(k), v)).collect();
    Value::Map(Arc::new(m))
}

pub fn s(v: impl AsRef<str>) -> Value {
    str_val(v.as_ref())
}

/// A method with arguments on a row (`{{.Label "x"}}`).
pub fn method(f: impl Fn(&[Value]) -> Value + Send + Sync + 'static) -> Value {
    Value::Function(Arc::new(move |a| Ok(f(a))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, data: serde_json::Value) -> String {
        Tmpl::parse(t).unwrap().execute(&from_json(&data)).unwrap()
    }

    #[test]
    fn fields_and_nesting() {
        let d = json!({"State": {"Pid": 1234, "Running": true}, "Name": "/web"});
        assert_eq!(run("{{.State.Pid}}", d.clone()), "1234");
        assert_eq!(run("{{.State.Running}} {{.Name}}", d), "true /web");
    }

    #[test]
    fn range_over_networks() {
        let d = json!({"NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "z": {"IPAddress": "10.0.0.2"}}}});
        assert_eq!(run("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", d), "172.17.0.2 10.0.0.2 ");
    }

    #[test]
    fn docker_functions() {
        let d = json!({"Config": {"Labels": {"x": "y"}, "Cmd": ["sh", "-c", "true"]}, "Name": "Hello World"});
        assert_eq!(run(r#"{{index .Config.Labels "x"}}"#, d.clone()), "y");
        assert_eq!(run(r#"{{join .Config.Cmd " "}}"#, d.clone()), "sh -c true");
        assert_eq!(run(r#"{{lower .Name}}|{{upper .Name}}|{{title "hello world"}}"#, d.clone()), "hello world|HELLO WORLD|Hello World");
        assert_eq!(run(r#"{{split "a,b" ","}}"#, d.clone()), "[a b]");
        assert_eq!(run(r#"{{pad "x" 2 1}}|{{truncate .Name 5}}"#, d.clone()), "  x |Hello");
        assert_eq!(run("{{json .Config.Labels}}", d.clone()), r#"{"x":"y"}"#);
        assert_eq!(run("{{json .}}", json!({"b": 1, "a": "<&>"})), r#"{"a":"<&>","b":1}"#);
    }

    #[test]
    fn methods_with_arguments_are_called() {
        let row = map([("Label", method(|a| if arg_str(&a[0]) == "x" { s("y") } else { s("") })), ("ID", s("abc"))]);
        let t = Tmpl::parse(r#"{{.ID}} {{.Label "x"}}"#).unwrap();
        assert_eq!(t.execute(&row).unwrap(), "abc y");
    }

    #[test]
    fn headers_use_identity_functions() {
        let h = map([("ID", s("CONTAINER ID")), ("Names", s("NAMES"))]);
        let t = Tmpl::parse_header("{{.ID}}\t{{json .Names}}\t{{upper .Names}}").unwrap();
        assert_eq!(t.execute(&h).unwrap(), "CONTAINER ID\tNAMES\tNAMES");
    }

    #[test]
    fn parse_errors_are_reported() {
        let e = Tmpl::parse("{{.ID").err().unwrap();
        assert!(e.to_string().starts_with("template parsing error: "), "{e}");
    }
}
