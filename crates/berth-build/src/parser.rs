//! The Dockerfile's syntax: parser directives, comments, line continuations
//! and heredocs turned into [`Node`]s, one per instruction, each with its
//! line, flags and arguments still unexpanded. Pure; what each instruction
//! means is [`crate::instruction`]'s business.

use std::fmt;

/// A syntax error, with the (1-based) line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile parse error line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError { line, message: message.into() }
    }
}

/// The parser directives at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub escape: char,
    pub syntax: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: '\\', syntax: None }
    }
}

/// A heredoc attached to an instruction (`RUN <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// `<<"EOF"` / `<<'EOF'`: no expansion of the content.
    pub quoted: bool,
    /// `<<-EOF`: leading tabs stripped.
    pub chomp: bool,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Upper-cased keyword.
    pub keyword: String,
    /// `--name=value` flags before the arguments, as written.
    pub flags: Vec<String>,
    /// The arguments after the flags, continuations joined.
    pub rest: String,
    pub heredocs: Vec<Heredoc>,
    /// First line of the instruction.
    pub line: usize,
    /// The instruction as written on one line (for history and cache).
    pub original: String,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    pub nodes: Vec<Node>,
}

/// Instructions that may start heredocs.
fn takes_heredocs(keyword: &str) -> bool {
    matches!(keyword, "RUN" | "COPY" | "ADD")
}

/// Parse directives at the top: `# key=value` lines before anything else.
fn directives(lines: &[&str]) -> Result<(Directives, usize), ParseError> {
    let mut d = Directives::default();
    let mut seen = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let t = raw.trim();
        let Some(body) = t.strip_prefix('#') else { return Ok((d, i)) };
        let Some((k, v)) = body.split_once('=') else { return Ok((d, i)) };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Ok((d, i));
        }
        let v = v.trim();
        match k.as_str() {
            "escape" | "syntax" | "check" => {
                if seen.contains(&k) {
                    return Err(ParseError::new(i + 1, format!("only one {k} parser directive can be used")));
                }
                seen.push(k.clone());
            }
            // Unknown directives are comments, and end the directive block.
            _ => return Ok((d, i)),
        }
        match k.as_str() {
            "escape" => {
                d.escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(ParseError::new(i + 1, format!("invalid escape token '{v}' does not match ` or \\"))),
                }
            }
            "syntax" => d.syntax = Some(v.to_owned()),
            _ => {}
        }
    }
    Ok((d, lines.len()))
}

/// Whether `line` ends with the escape character (a continuation), and the
/// line without it.
fn continued(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end();
    t.strip_suffix(escape)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The heredoc openers in `s` (`<<EOF`, `<<-EOF`, `<<"EOF"`), in order.
pub fn heredoc_openers(s: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'<' && b.get(i + 1) == Some(&b'<') && b.get(i + 2) != Some(&b'<') && (i == 0 || b[i - 1] != b'<') => {
                let mut j = i + 2;
                let chomp = b.get(j) == Some(&b'-');
                if chomp {
                    j += 1;
                }
                let quoted = matches!(b.get(j), Some(b'"' | b'\''));
                let q = if quoted { Some(b[j]) } else { None };
                if quoted {
                    j += 1;
                }
                let start = j;
                let starts_name = b.get(j).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_');
                while starts_name && j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.' || b[j] == b'-') {
                    j += 1;
                }
                if j > start && (q.is_none() || b.get(j) == q.as_ref()) {
                    out.push((s[start..j].to_owned(), quoted, chomp));
                    i = if q.is_some() { j + 1 } else { j };
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// Split `--flag=value` words off the front of the arguments.
fn split_flags(s: &str) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut rest = s.trim_start();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        flags.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    (flags, rest.to_owned())
}

/// Parse a Dockerfile's text.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let (directives, start) = directives(&lines)?;
    let esc = directives.escape;
    let mut nodes = Vec::new();
    let mut i = start;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || is_comment(line) {
            i += 1;
            continue;
        }
        let first = i + 1;
        // Join continuation lines; comment and empty lines inside are dropped.
        let mut joined = String::new();
        let mut cur = line;
        loop {
            match continued(cur, esc) {
                Some(body) => {
                    joined.push_str(body);
                    i += 1;
                    while i < lines.len() && (is_comment(lines[i]) || lines[i].trim().is_empty()) {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i];
                }
                None => {
                    joined.push_str(cur);
                    i += 1;
                    break;
                }
            }
        }
        let trimmed = joined.trim();
        let (word, args) = match trimmed.find(char::is_whitespace) {
            Some(p) => (&trimmed[..p], trimmed[p..].trim_start()),
            None => (trimmed, ""),
        };
        let keyword = word.to_ascii_uppercase();
        if !crate::instruction::KEYWORDS.contains(&keyword.as_str()) {
            return Err(ParseError::new(first, format!("unknown instruction: {word}")));
        }
        let (flags, rest) = if keyword == "ONBUILD" { (Vec::new(), args.to_owned()) } else { split_flags(args) };
        let mut heredocs = Vec::new();
        if takes_heredocs(&keyword) && !rest.trim_start().starts_with('[') {
            for (name, quoted, chomp) in heredoc_openers(&rest) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let cmp = if chomp { l.trim_start_matches('\t') } else { l };
                    if cmp == name {
                        closed = true;
                        break;
                    }
                    content.push_str(if chomp { cmp } else { l });
                    content.push('\n');
                }
                if !closed {
                    return Err(ParseError::new(first, format!("unterminated heredoc {name}")));
                }
                heredocs.push(Heredoc { name, content, quoted, chomp });
            }
        }
        if rest.is_empty() && heredocs.is_empty() && !matches!(keyword.as_str(), "ONBUILD") {
            let needs_args = !matches!(keyword.as_str(), "HEALTHCHECK");
            if needs_args || flags.is_empty() {
                return Err(ParseError::new(first, format!("{keyword} requires at least one argument")));
            }
        }
        let original = format!("{keyword} {}", if flags.is_empty() { rest.clone() } else { format!("{} {rest}", flags.join(" ")) })
            .trim_end()
            .to_owned();
        nodes.push(Node { keyword, flags, rest, heredocs, line: first, original });
    }
    if nodes.is_empty() {
        return Err(ParseError::new(1, "file with no instructions"));
    }
    Ok(Dockerfile { directives, nodes })
}

/// The JSON (exec) form of arguments, when they are one.
pub fn json_form(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_and_comments() {
        let d = parse("FROM busybox\n# comment\nRUN echo a \\\n  # inner comment\n\n  && echo b\nCMD [\"sh\"]\n").unwrap();
        assert_eq!(d.nodes.len(), 3);
        assert_eq!(d.nodes[1].keyword, "RUN");
        assert_eq!(d.nodes[1].rest, "echo a   && echo b");
        assert_eq!(d.nodes[1].line, 3);
        assert_eq!(d.nodes[2].line, 7);
    }

    #[test]
    fn escape_directive_backtick() {
        let d = parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo x\n").unwrap();
        assert_eq!(d.directives.escape, '`');
        assert_eq!(d.nodes[1].rest, "dir c:\\   && echo x");
    }

    #[test]
    fn directives_only_at_top() {
        let d = parse("FROM busybox\n# escape=`\nRUN echo \\\n x\n").unwrap();
        assert_eq!(d.directives.escape, '\\');
        assert_eq!(d.nodes[1].rest, "echo  x");
        let d = parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM a\n").unwrap();
        assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert!(parse("# escape=x\nFROM a").unwrap_err().message.contains("invalid escape token"));
        assert_eq!(parse("# escape=`\n# escape=\\\nFROM a").unwrap_err().line, 2);
    }

    #[test]
    fn unknown_instruction_names_line() {
        let e = parse("FROM busybox\n\nFOO bar\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile parse error line 3: unknown instruction: FOO");
    }

    #[test]
    fn case_insensitive_and_flags() {
        let d = parse("from --platform=linux/amd64 busybox AS base\ncopy --from=base --chown=1:2 /a /b\n").unwrap();
        assert_eq!(d.nodes[0].keyword, "FROM");
        assert_eq!(d.nodes[0].flags, vec!["--platform=linux/amd64"]);
        assert_eq!(d.nodes[0].rest, "busybox AS base");
        assert_eq!(d.nodes[1].flags, vec!["--from=base", "--chown=1:2"]);
    }

    #[test]
    fn heredocs() {
        let d = parse("FROM a\nRUN <<EOF\necho hi\necho there\nEOF\nCOPY <<-\"END\" /x\n\tline $A\n\tEND\nRUN true\n").unwrap();
        assert_eq!(d.nodes[1].heredocs[0].content, "echo hi\necho there\n");
        assert_eq!(d.nodes[2].heredocs[0].content, "line $A\n");
        assert!(d.nodes[2].heredocs[0].quoted);
        assert_eq!(d.nodes[3].line, 9);
        assert!(parse("FROM a\nRUN <<EOF\necho\n").unwrap_err().message.contains("unterminated heredoc"));
    }

    #[test]
    fn heredoc_openers_skip_quotes_and_shift() {
        assert_eq!(heredoc_openers("cat <<A <<-B").len(), 2);
        assert!(heredoc_openers("echo '<<X'").is_empty());
        assert!(heredoc_openers("echo $((1<<2))").is_empty());
    }

    #[test]
    fn json_forms() {
        assert_eq!(json_form(r#"["a", "b c"]"#), Some(vec!["a".into(), "b c".into()]));
        assert_eq!(json_form("[not json"), None);
        assert_eq!(json_form("echo"), None);
    }

    #[test]
    fn empty_and_argless() {
        assert!(parse("\n# only comments\n").is_err());
        assert_eq!(parse("FROM a\nRUN\n").unwrap_err().message, "RUN requires at least one argument");
    }
}
