//! Volume names: docker's rule for the local driver, and the random 64-hex
//! names of anonymous volumes.

use rand::Rng;

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`: at least two characters, as docker.
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// docker's message for a name the local driver refuses.
pub fn invalid_message(name: &str) -> String {
    format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )
}

/// A new anonymous volume's name: 64 random hex digits.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid("data"));
        assert!(valid("my_vol.1-x"));
        assert!(valid("ab"));
        assert!(!valid("a"));
        assert!(!valid(""));
        assert!(!valid("-x"));
        assert!(!valid("a/b"));
        assert!(!valid("./rel"));
        assert!(!valid("bad name"));
        let g = generate();
        assert_eq!(g.len(), 64);
        assert!(valid(&g));
        assert_ne!(g, generate());
        assert!(invalid_message("a/b").starts_with("create a/b: \"a/b\" includes invalid characters"));
    }
}
