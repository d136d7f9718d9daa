//! User text quoted back in error messages, cut short: a 100 MB input (or model name) must not
//! put 100 MB into the error, the server log and the client's buffer. Every echo of a user
//! string in the extension's errors goes through [`echo`].

/// The most characters of a user string an error message repeats.
pub const ECHO_LIMIT: usize = 80;

/// `text`, cut to [`ECHO_LIMIT`] characters (never inside a character), with `...` when cut.
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        assert_eq!(echo(""), "");
        assert_eq!(echo("tiny_image"), "tiny_image");
        let exact = "x".repeat(ECHO_LIMIT);
        assert_eq!(echo(&exact), exact);
    }

    #[test]
    fn long_text_is_cut_to_the_limit() {
        let long = "n".repeat(20 << 20);
        let shown = echo(&long);
        assert_eq!(shown, format!("{}...", "n".repeat(ECHO_LIMIT)));
    }

    #[test]
    fn cuts_between_characters() {
        // Two-byte characters: the cut counts characters, and the result stays valid UTF-8.
        let long = "é".repeat(ECHO_LIMIT + 1);
        let shown = echo(&long);
        assert_eq!(shown.chars().count(), ECHO_LIMIT + 3);
        assert!(shown.starts_with(&"é".repeat(ECHO_LIMIT)));
    }
}
