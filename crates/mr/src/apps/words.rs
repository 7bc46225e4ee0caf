//! Word splitting shared by `wc` and `indexer`.

/// The words of `text`: maximal runs of letters (`char::is_alphabetic`), as 6.824's `unicode.IsLetter`
/// split. Everything else (digits, punctuation, whitespace) separates words.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn words_are_maximal_runs_of_letters() {
        let got: Vec<&str> = words("Hello, world! it's 42nd-street; Über ŝtrange.").collect();
        assert_eq!(got, ["Hello", "world", "it", "s", "nd", "street", "Über", "ŝtrange"]);
        assert_eq!(words("  12 -- ").count(), 0);
    }
}
