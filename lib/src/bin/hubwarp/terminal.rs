//! What reaches the operator's terminal. Values come from HubSpot users,
//! WARP and webhooks: an ANSI escape in a company name could clear the
//! screen, rewrite earlier lines or set the window title, and a bidi
//! override could make one value read as another. Every control character
//! but the line breaks of the layout is shown escaped instead (`\u{1b}`).
//! JSON output already escapes them; this changes nothing there.

/// `text` with every control character but `\n`, and every bidi control,
/// written as its Rust escape.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && (c.is_control() || is_bidi_control(c)) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The explicit directional formatting characters (Unicode TR9).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_overrides_are_shown_not_obeyed() {
        assert_eq!(
            printable("Acme\u{1b}[2J\u{1b}]0;pwned\u{7}\r\tInc\n"),
            "Acme\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\r\\tInc\n"
        );
        assert_eq!(printable("a\u{202E}b\u{9b}c"), "a\\u{202e}b\\u{9b}c");
        let plain = "Zürich — 7 500,00 €\nnext line";
        assert_eq!(printable(plain), plain);
    }
}
