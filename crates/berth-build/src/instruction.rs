//! What each instruction means: [`Node`]s checked and typed into
//! [`Instruction`]s, grouped into stages. Arguments stay unexpanded (the
//! builder expands them with the stage's ARG and ENV at that step). Pure.

use crate::expand::raw_words;
use crate::parser::{Dockerfile, Heredoc, Node, ParseError, json_form};

/// Every instruction keyword docker knows.
pub const KEYWORDS: &[&str] = &[
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
    "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
];

/// Shell form (run through SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdForm {
    Shell(String),
    Exec(Vec<String>),
}

impl CmdForm {
    fn of(rest: &str) -> CmdForm {
        match json_form(rest) {
            Some(v) => CmdForm::Exec(v),
            None => CmdForm::Shell(rest.to_owned()),
        }
    }
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    pub add: bool,
    pub srcs: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK's options (durations as written).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthSpec {
    /// None: `HEALTHCHECK NONE`.
    pub cmd: Option<CmdForm>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From { image: String, name: Option<String>, platform: Option<String> },
    Run { cmd: CmdForm, heredocs: Vec<Heredoc>, network: Option<String> },
    Cmd(CmdForm),
    Entrypoint(CmdForm),
    /// Keys and raw (quoted) values.
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Copy(CopySpec),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Healthcheck(HealthSpec),
    Shell(Vec<String>),
    StopSignal(String),
    Onbuild(String),
    Maintainer(String),
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub node: Node,
    pub inst: Instruction,
}

/// A stage: its FROM and the steps after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    pub from: Step,
    pub steps: Vec<Step>,
}

/// A Dockerfile as stages, with the ARGs declared before the first FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub escape: char,
    pub meta_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

fn err(node: &Node, msg: impl Into<String>) -> ParseError {
    ParseError::new(node.line, msg)
}

/// Split `--name=value` flags, refusing ones the instruction does not take.
fn flags<'a>(node: &'a Node, allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, ParseError> {
    let mut out = Vec::new();
    for f in &node.flags {
        let body = &f[2..];
        let (k, v) = body.split_once('=').unwrap_or((body, ""));
        if !allowed.contains(&k) {
            return Err(err(node, format!("unknown flag: {k}")));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn flag(fl: &[(&str, &str)], k: &str) -> Option<String> {
    fl.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
}

/// `key=value ...` (or the legacy `key value` for ENV and LABEL).
fn key_values(node: &Node, escape: char, what: &str) -> Result<Vec<(String, String)>, ParseError> {
    let words = raw_words(&node.rest, escape);
    if words.is_empty() {
        return Err(err(node, format!("{what} requires at least one argument")));
    }
    if !words[0].contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let key = words[0].clone();
        let value = node.rest.trim_start()[key.len()..].trim().to_owned();
        if value.is_empty() && what == "ENV" {
            return Err(err(node, "ENV must have two arguments"));
        }
        return Ok(vec![(key, value)]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| err(node, format!("Syntax error - can't find = in \"{w}\". Must be of the form: name=value")))?;
            if k.is_empty() {
                return Err(err(node, format!("{what} names can not be blank")));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn string_list(node: &Node, escape: char) -> Vec<String> {
    json_form(&node.rest).unwrap_or_else(|| raw_words(&node.rest, escape))
}

/// Type one node.
pub fn instruction(node: &Node, escape: char) -> Result<Instruction, ParseError> {
    let none: &[&str] = &[];
    let rest = node.rest.trim();
    let inst = match node.keyword.as_str() {
        "FROM" => {
            let fl = flags(node, &["platform"])?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let (image, name) = match words.as_slice() {
                [image] => (image.to_string(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let name = name.to_ascii_lowercase();
                    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                    if !valid {
                        return Err(err(node, format!("invalid name for build stage: \"{name}\", name can't start with a number or contain symbols")));
                    }
                    (image.to_string(), Some(name))
                }
                _ => return Err(err(node, "FROM requires either one or three arguments")),
            };
            Instruction::From { image, name, platform: flag(&fl, "platform") }
        }
        "RUN" => {
            let fl = flags(node, &["network", "mount"])?;
            if flag(&fl, "mount").is_some() {
                return Err(err(node, "RUN --mount is not supported by this builder yet"));
            }
            let network = flag(&fl, "network");
            if let Some(n) = network.as_deref()
                && !matches!(n, "default" | "none" | "host") {
                    return Err(err(node, format!("unsupported network mode: {n}")));
                }
            Instruction::Run { cmd: CmdForm::of(rest), heredocs: node.heredocs.clone(), network }
        }
        "CMD" => {
            flags(node, none)?;
            Instruction::Cmd(CmdForm::of(rest))
        }
        "ENTRYPOINT" => {
            flags(node, none)?;
            Instruction::Entrypoint(CmdForm::of(rest))
        }
        "ENV" => Instruction::Env(key_values(node, escape, "ENV")?),
        "LABEL" => Instruction::Label(key_values(node, escape, "LABEL")?),
        "ARG" => {
            let words = raw_words(rest, escape);
            let mut out = Vec::new();
            for w in words {
                match w.split_once('=') {
                    Some((k, v)) => out.push((k.to_owned(), Some(v.to_owned()))),
                    None => out.push((w, None)),
                }
            }
            if out.iter().any(|(k, _)| k.is_empty()) {
                return Err(err(node, "ARG names can not be blank"));
            }
            Instruction::Arg(out)
        }
        "COPY" | "ADD" => {
            let add = node.keyword == "ADD";
            // `--link` changes only how BuildKit caches; the others are not
            // supported and refused as unknown rather than ignored.
            let allowed: &[&str] = if add { &["chown", "chmod", "link"] } else { &["from", "chown", "chmod", "link"] };
            let fl = flags(node, allowed)?;
            let mut args = string_list(node, escape);
            if node.heredocs.is_empty() && args.len() < 2 || args.is_empty() {
                return Err(err(node, format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", node.keyword)));
            }
            let dest = args.pop().expect("checked");
            // Heredoc names stand in for sources; their content is the file.
            if !node.heredocs.is_empty() {
                args.retain(|a| !a.starts_with("<<"));
            }
            Instruction::Copy(CopySpec {
                add,
                srcs: args,
                dest,
                from: flag(&fl, "from"),
                chown: flag(&fl, "chown"),
                chmod: flag(&fl, "chmod"),
                heredocs: node.heredocs.clone(),
            })
        }
        "VOLUME" => {
            let v = string_list(node, escape);
            if v.iter().any(|s| s.trim().is_empty()) {
                return Err(err(node, "VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(v)
        }
        "WORKDIR" => Instruction::Workdir(rest.to_owned()),
        "USER" => Instruction::User(rest.to_owned()),
        "EXPOSE" => Instruction::Expose(raw_words(rest, escape)),
        "STOPSIGNAL" => Instruction::StopSignal(rest.to_owned()),
        "MAINTAINER" => Instruction::Maintainer(rest.to_owned()),
        "SHELL" => {
            let v = json_form(rest).ok_or_else(|| err(node, "SHELL requires the arguments to be in JSON form"))?;
            if v.is_empty() {
                return Err(err(node, "SHELL requires at least one argument"));
            }
            Instruction::Shell(v)
        }
        "ONBUILD" => {
            let first = rest.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            match first.as_str() {
                "ONBUILD" => return Err(err(node, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")),
                "FROM" | "MAINTAINER" => return Err(err(node, format!("{first} isn't allowed as an ONBUILD trigger"))),
                "" => return Err(err(node, "ONBUILD requires at least one argument")),
                _ => {}
            }
            // The trigger must itself parse.
            let inner = crate::parser::parse(rest).map_err(|e| err(node, e.message))?;
            instruction(&inner.nodes[0], escape)?;
            Instruction::Onbuild(rest.to_owned())
        }
        "HEALTHCHECK" => {
            let fl = flags(node, &["interval", "timeout", "start-period", "start-interval", "retries"])?;
            let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let mut h = HealthSpec {
                interval: flag(&fl, "interval"),
                timeout: flag(&fl, "timeout"),
                start_period: flag(&fl, "start-period"),
                start_interval: flag(&fl, "start-interval"),
                retries: flag(&fl, "retries"),
                cmd: None,
            };
            match word.to_ascii_uppercase().as_str() {
                "NONE" => {
                    if !after.trim().is_empty() || !fl.is_empty() {
                        return Err(err(node, "HEALTHCHECK NONE takes no arguments"));
                    }
                }
                "CMD" if !after.trim().is_empty() => h.cmd = Some(CmdForm::of(after.trim())),
                "CMD" => return Err(err(node, "Missing command after HEALTHCHECK CMD")),
                other => return Err(err(node, format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)"))),
            }
            Instruction::Healthcheck(h)
        }
        other => return Err(err(node, format!("unknown instruction: {other}"))),
    };
    Ok(inst)
}

/// Type a parsed Dockerfile into stages.
pub fn plan(df: &Dockerfile) -> Result<Plan, ParseError> {
    let escape = df.directives.escape;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &df.nodes {
        let inst = instruction(node, escape)?;
        match (&inst, stages.last_mut()) {
            (Instruction::From { name, .. }, _) => {
                if let Some(n) = name
                    && stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                        return Err(err(node, format!("duplicate name {n}")));
                    }
                let index = stages.len();
                stages.push(Stage { index, name: name.clone(), from: Step { node: node.clone(), inst }, steps: Vec::new() });
            }
            (Instruction::Arg(a), None) => meta_args.extend(a.iter().cloned()),
            (_, None) => return Err(err(node, "no build stage in current context")),
            (_, Some(stage)) => stage.steps.push(Step { node: node.clone(), inst }),
        }
    }
    if stages.is_empty() {
        return Err(ParseError::new(df.nodes.last().map(|n| n.line).unwrap_or(1), "no build stage in current context"));
    }
    Ok(Plan { escape, meta_args, stages })
}

/// Parse and plan a Dockerfile's text.
pub fn parse_plan(text: &str) -> Result<Plan, ParseError> {
    plan(&crate::parser::parse(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Instruction {
        let p = parse_plan(&format!("FROM a\n{text}\n")).unwrap();
        p.stages[0].steps[0].inst.clone()
    }

    #[test]
    fn forms() {
        assert_eq!(one("CMD [\"a\", \"b\"]"), Instruction::Cmd(CmdForm::Exec(vec!["a".into(), "b".into()])));
        assert_eq!(one("CMD echo hi"), Instruction::Cmd(CmdForm::Shell("echo hi".into())));
        assert_eq!(one("ENV A=1 B=\"x y\""), Instruction::Env(vec![("A".into(), "1".into()), ("B".into(), "\"x y\"".into())]));
        assert_eq!(one("ENV A hello world"), Instruction::Env(vec![("A".into(), "hello world".into())]));
        assert_eq!(one("ARG V=1 W"), Instruction::Arg(vec![("V".into(), Some("1".into())), ("W".into(), None)]));
    }

    #[test]
    fn stages_and_meta_args() {
        let p = parse_plan("ARG BASE=busybox\nFROM $BASE AS Build\nRUN x\nFROM scratch\nCOPY --from=build /a /a\n").unwrap();
        assert_eq!(p.meta_args, vec![("BASE".into(), Some("busybox".into()))]);
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].name.as_deref(), Some("build"));
        match &p.stages[1].steps[0].inst {
            Instruction::Copy(c) => assert_eq!(c.from.as_deref(), Some("build")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_with_lines() {
        assert_eq!(parse_plan("RUN x\n").unwrap_err().to_string(), "Dockerfile parse error line 1: no build stage in current context");
        assert_eq!(parse_plan("FROM a\nCOPY x\n").unwrap_err().line, 2);
        assert!(parse_plan("FROM a\nSHELL /bin/bash\n").unwrap_err().message.contains("JSON form"));
        assert!(parse_plan("FROM a\nCOPY --bogus=1 a b\n").unwrap_err().message.contains("unknown flag: bogus"));
        assert!(parse_plan("FROM a\nCOPY --parents a b\n").unwrap_err().message.contains("unknown flag: parents"));
        assert!(parse_plan("FROM a\nRUN --network=bridge2 true\n").unwrap_err().message.contains("unsupported network mode"));
        assert!(parse_plan("FROM a\nONBUILD ONBUILD RUN x\n").is_err());
        assert!(parse_plan("FROM a AS 1x\n").is_err());
        assert!(parse_plan("FROM a AS x\nFROM b AS x\n").unwrap_err().message.contains("duplicate name"));
        assert!(parse_plan("FROM a\nENV =x\n").is_err());
        assert!(parse_plan("FROM a\nHEALTHCHECK WHAT x\n").is_err());
    }

    #[test]
    fn healthcheck() {
        match one("HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost") {
            Instruction::Healthcheck(h) => {
                assert_eq!(h.interval.as_deref(), Some("5s"));
                assert_eq!(h.cmd, Some(CmdForm::Shell("wget -q localhost".into())));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(one("HEALTHCHECK NONE"), Instruction::Healthcheck(HealthSpec::default()));
    }
}
