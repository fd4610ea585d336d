//! Words for messages: counts with their noun, and text quoted for a shell.

/// `1 job`, `3 jobs`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// `text` as one word for a POSIX shell.
pub fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The first `n` bytes of `text` (a hash or id, shortened for people), or all of it when it is
/// shorter or `n` falls inside a character: text read from a file edited by hand never panics.
pub fn prefix(text: &str, n: usize) -> &str {
    text.get(..n).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("exp/Jobfile.toml"), "exp/Jobfile.toml");
        assert_eq!(shell_word("my exp/it's.toml"), r"'my exp/it'\''s.toml'");
    }

    #[test]
    fn a_prefix_never_cuts_a_character() {
        assert_eq!(prefix("3f2a1c0d", 4), "3f2a");
        assert_eq!(prefix("3f", 4), "3f");
        assert_eq!(prefix("é1234", 1), "é1234");
    }
}
