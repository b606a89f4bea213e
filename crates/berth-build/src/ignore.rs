//! `.dockerignore`: docker's pattern syntax (Go's `filepath.Match` plus
//! `**`), later patterns overriding earlier ones, `!` exceptions, and a path
//! excluded when one of its parent directories is. Pure.
//!
//! Written by hand over `regex` because the glob crates differ from docker
//! in how `**`, parent directories and exceptions combine.

use regex::Regex;

#[derive(Debug)]
struct Pattern {
    re: Regex,
    exclusion: bool,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// A pattern docker cannot compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
pub struct IgnoreError {
    pub pattern: String,
    pub reason: String,
}

/// Clean a path as Go's `filepath.Clean`, without a leading `/`.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn to_regex(pat: &str) -> Result<Regex, IgnoreError> {
    let mut re = String::from("^");
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    let bad = |reason: &str| IgnoreError { pattern: pat.to_owned(), reason: reason.to_owned() };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                // `**/` matches zero or more directories; `**` at the end anything.
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                    re.push_str("(?:.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i..].iter().position(|&c| c == ']').ok_or_else(|| bad("unterminated character class"))? + i;
                let mut class: String = chars[i + 1..end].iter().collect();
                if let Some(r) = class.strip_prefix('^') {
                    class = format!("^{}", regex::escape(r).replace("\\-", "-"));
                } else {
                    class = regex::escape(&class).replace("\\-", "-");
                }
                re.push('[');
                re.push_str(&class);
                re.push(']');
                i = end;
            }
            '\\' => {
                i += 1;
                if let Some(n) = chars.get(i) {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| bad(&e.to_string()))
}

impl Ignore {
    /// Parse a `.dockerignore`'s text.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(b) => (true, b.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            patterns.push(Pattern { re: to_regex(&cleaned)?, exclusion });
        }
        Ok(Ignore { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for p in &self.patterns {
            // Only a pattern that can change the outcome is tested.
            if p.exclusion != matched {
                continue;
            }
            let hit = p.re.is_match(&path) || parents.iter().any(|d| p.re.is_match(d));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some exception could re-include something below an excluded
    /// directory (then the directory must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_semantics() {
        let i = Ignore::parse("# comment\n*.md\n!README.md\ntmp/\n**/*.log\n/secret\nbuild?\n").unwrap();
        assert!(i.excluded("CHANGES.md"));
        assert!(!i.excluded("README.md"));
        assert!(!i.excluded("docs/CHANGES.md"), "* does not cross /");
        assert!(i.excluded("tmp/a/b"));
        assert!(i.excluded("a/b/c.log"));
        assert!(i.excluded("c.log"));
        assert!(i.excluded("secret"));
        assert!(i.excluded("secret/x"));
        assert!(i.excluded("build1"));
        assert!(!i.excluded("build12"));
        assert!(!i.excluded("src/main.rs"));
    }

    #[test]
    fn later_patterns_win() {
        let i = Ignore::parse("!keep\n*\n").unwrap();
        assert!(i.excluded("keep"));
        let i = Ignore::parse("*\n!keep\n!dir/sub\n").unwrap();
        assert!(!i.excluded("keep"));
        assert!(i.excluded("other"));
        assert!(!i.excluded("dir/sub/file"));
        assert!(i.excluded("dir/other"));
        assert!(i.has_exceptions());
    }

    #[test]
    fn classes_and_escapes() {
        let i = Ignore::parse("file[0-9].txt\nlit\\*\n").unwrap();
        assert!(i.excluded("file3.txt"));
        assert!(!i.excluded("filex.txt"));
        assert!(i.excluded("lit*"));
        assert!(!i.excluded("litx"));
        assert!(Ignore::parse("[oops").is_err());
    }
}
