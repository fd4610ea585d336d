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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("exp/Jobfile.toml"), "exp/Jobfile.toml");
        assert_eq!(shell_word("my exp/it's.toml"), r"'my exp/it'\''s.toml'");
    }
}
