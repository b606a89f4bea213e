//! Variable substitution in instruction arguments, as docker's shell lexer
//! does it: quotes, the escape character, `$VAR`, `${VAR}`, `${VAR:-word}`,
//! `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`. Pure.

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process \"{word}\": {reason}")]
pub struct ExpandError {
    pub word: String,
    pub reason: String,
}

/// The variables visible to an instruction.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

impl Vars for [(String, String)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        Vars::get(self.as_slice(), name)
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Vars,
    word: &'a str,
    /// Names of variables that were looked up (build args count as used).
    used: Vec<String>,
}

impl Lexer<'_> {
    fn err(&self, reason: impl Into<String>) -> ExpandError {
        ExpandError { word: self.word.to_owned(), reason: reason.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// Process until `stop` (not consumed) or the end. With `split`, words
    /// are separated at unquoted whitespace.
    fn process(&mut self, stop: Option<char>, split: bool) -> Result<Vec<String>, ExpandError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            if split && c.is_whitespace() {
                self.pos += 1;
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            self.pos += 1;
            match c {
                '\'' => loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(self.err("unexpected end of statement while looking for matching single-quote")),
                    }
                },
                '"' => loop {
                    match self.next() {
                        Some('"') => break,
                        Some('$') => cur.push_str(&self.dollar()?),
                        Some(x) if x == self.escape => match self.next() {
                            Some(n @ ('"' | '$')) => cur.push(n),
                            Some(n) if n == self.escape => cur.push(n),
                            Some(n) => {
                                cur.push(x);
                                cur.push(n);
                            }
                            None => return Err(self.err("unexpected end of statement while looking for matching double-quote")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(self.err("unexpected end of statement while looking for matching double-quote")),
                    }
                },
                '$' => cur.push_str(&self.dollar()?),
                x if x == self.escape => match self.next() {
                    Some(n) => cur.push(n),
                    None => cur.push(x),
                },
                x => cur.push(x),
            }
        }
        if in_word || !split {
            words.push(cur);
        }
        Ok(words)
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        self.used.push(name.to_owned());
        self.vars.get(name)
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err(self.err("bad substitution"));
                }
                let value = self.lookup(&name);
                match self.next() {
                    Some('}') => Ok(value.unwrap_or_default()),
                    Some(':') => {
                        let op = self.next().ok_or_else(|| self.err("syntax error: missing '}'"))?;
                        let word = self.sub_word()?;
                        let set = value.as_deref().is_some_and(|v| !v.is_empty());
                        self.apply(op, set, value, word)
                    }
                    Some(op @ ('-' | '+' | '?')) => {
                        let word = self.sub_word()?;
                        let set = value.is_some();
                        self.apply(op, set, value, word)
                    }
                    None => Err(self.err("syntax error: missing '}'")),
                    Some(_) => Err(self.err("bad substitution")),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok(self.lookup(&name).unwrap_or_default())
            }
            Some(c) if c.is_ascii_digit() => {
                // Positional parameters are always empty here.
                self.pos += 1;
                Ok(String::new())
            }
            _ => Ok("$".to_owned()),
        }
    }

    fn sub_word(&mut self) -> Result<String, ExpandError> {
        let w = self.process(Some('}'), false)?.concat();
        match self.next() {
            Some('}') => Ok(w),
            _ => Err(self.err("syntax error: missing '}'")),
        }
    }

    fn apply(&self, op: char, set: bool, value: Option<String>, word: String) -> Result<String, ExpandError> {
        match op {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            '?' if set => Ok(value.unwrap_or_default()),
            '?' => Err(self.err(if word.is_empty() { "is not allowed to be unset".to_owned() } else { word })),
            _ => Err(self.err(format!("unsupported modifier ({op}) in substitution"))),
        }
    }
}

fn lexer<'a>(word: &'a str, escape: char, vars: &'a dyn Vars) -> Lexer<'a> {
    Lexer { chars: word.chars().collect(), pos: 0, escape, vars, word, used: Vec::new() }
}

/// Expand one word (quotes removed, variables substituted).
pub fn word(s: &str, escape: char, vars: &dyn Vars) -> Result<String, ExpandError> {
    Ok(word_used(s, escape, vars)?.0)
}

/// [`word`], and the names of the variables it read.
pub fn word_used(s: &str, escape: char, vars: &dyn Vars) -> Result<(String, Vec<String>), ExpandError> {
    let mut l = lexer(s, escape, vars);
    let w = l.process(None, false)?.concat();
    Ok((w, l.used))
}

/// Expand and split into words at unquoted whitespace.
pub fn words(s: &str, escape: char, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
    lexer(s, escape, vars).process(None, true)
}

/// Split without expanding (keeping quotes), at unquoted whitespace: the raw
/// words of `ENV a=1 b="x y"`.
pub fn raw_words(s: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"'
                    && let Some(n) = chars.next() {
                        cur.push(n);
                    }
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => {
                cur.push(c);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == escape
                    && let Some(n) = chars.next() {
                        cur.push(n);
                    }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![("A".into(), "apple".into()), ("E".into(), String::new()), ("P".into(), "/usr/bin".into())]
    }

    #[test]
    fn simple_forms() {
        let v = vars();
        assert_eq!(word("$A", '\\', &v).unwrap(), "apple");
        assert_eq!(word("${A}s", '\\', &v).unwrap(), "apples");
        assert_eq!(word("x$NOPE-y", '\\', &v).unwrap(), "x-y");
        assert_eq!(word("$P:/bin", '\\', &v).unwrap(), "/usr/bin:/bin");
        assert_eq!(word("cost $", '\\', &v).unwrap(), "cost $");
    }

    #[test]
    fn modifiers() {
        let v = vars();
        assert_eq!(word("${NOPE:-def}", '\\', &v).unwrap(), "def");
        assert_eq!(word("${E:-def}", '\\', &v).unwrap(), "def");
        assert_eq!(word("${E-def}", '\\', &v).unwrap(), "");
        assert_eq!(word("${A:+set}", '\\', &v).unwrap(), "set");
        assert_eq!(word("${E:+set}", '\\', &v).unwrap(), "");
        assert_eq!(word("${E+set}", '\\', &v).unwrap(), "set");
        assert_eq!(word("${NOPE:-${A}}", '\\', &v).unwrap(), "apple");
        assert!(word("${NOPE:?must be set}", '\\', &v).unwrap_err().to_string().contains("must be set"));
    }

    #[test]
    fn quotes_and_escapes() {
        let v = vars();
        assert_eq!(word("'$A'", '\\', &v).unwrap(), "$A");
        assert_eq!(word("\"$A pie\"", '\\', &v).unwrap(), "apple pie");
        assert_eq!(word("\\$A", '\\', &v).unwrap(), "$A");
        assert_eq!(word("`$A", '`', &v).unwrap(), "$A");
        assert_eq!(word("\"a\\\"b\"", '\\', &v).unwrap(), "a\"b");
        assert_eq!(words("a \"b c\" $A", '\\', &v).unwrap(), vec!["a", "b c", "apple"]);
    }

    #[test]
    fn bad_substitution() {
        let v = vars();
        assert_eq!(word("${A", '\\', &v).unwrap_err().to_string(), "failed to process \"${A\": syntax error: missing '}'");
        assert!(word("${}", '\\', &v).unwrap_err().reason.contains("bad substitution"));
        assert!(word("${A!}", '\\', &v).unwrap_err().reason.contains("bad substitution"));
        assert!(word("'open", '\\', &v).is_err());
    }

    #[test]
    fn used_names() {
        let v = vars();
        let (_, used) = word_used("${A}-$B", '\\', &v).unwrap();
        assert_eq!(used, vec!["A", "B"]);
    }

    #[test]
    fn raw_split_keeps_quotes() {
        assert_eq!(raw_words("a=1 b=\"x y\" c='z w'", '\\'), vec!["a=1", "b=\"x y\"", "c='z w'"]);
        assert_eq!(raw_words("a=x\\ y", '\\'), vec!["a=x\\ y"]);
    }
}
