//! Container names: docker's rules and its generated `adjective_name` names.

use rand::Rng;

/// Whether `name` (without its leading '/') is a valid container name.
pub fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ancient", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious", "daring",
    "eager", "early", "fancy", "fearless", "fond", "gentle", "glad", "golden", "happy", "hardy", "humble", "jolly",
    "keen", "kind", "lively", "lucid", "lucky", "merry", "mighty", "modest", "nimble", "noble", "patient", "placid",
    "proud", "quick", "quiet", "rapid", "ready", "serene", "sharp", "shiny", "silent", "sleepy", "smart", "snappy",
    "steady", "sturdy", "swift", "tender", "tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous", "zen",
];

/// Shipbuilders, navigators and harbour engineers, for a container engine
/// named after a ship's mooring place.
const NAMES: &[&str] = &[
    "abel", "anson", "baffin", "barents", "bering", "blackett", "brunel", "cabot", "cartier", "cheng", "columbus",
    "cook", "dampier", "drake", "eriksson", "flinders", "frobisher", "gama", "hudson", "ibn_majid", "kupe",
    "laperouse", "magellan", "mercator", "nansen", "pytheas", "raleigh", "ross", "shackleton", "tasman", "vancouver",
    "verrazzano", "vespucci", "zheng",
];

/// A random name such as `brave_nansen`.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let a = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let n = NAMES[rng.random_range(0..NAMES.len())];
    format!("{a}_{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_name_rules() {
        for ok in ["web", "a1", "my-app_2.x"] {
            assert!(valid(ok), "{ok}");
        }
        for bad in ["", "a", "-x", "_x", "a b", "ü1", "a/b"] {
            assert!(!valid(bad), "{bad}");
        }
        assert!(valid(&generate()));
    }
}
