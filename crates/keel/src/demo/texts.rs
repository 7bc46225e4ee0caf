//! The sample texts the demo's word count reads, embedded in the binary so the demo needs no files. They are
//! prose written for keel (generated from small grammars of our own, no outside source), under keel's license;
//! see `texts/README.md`.

/// (file name, contents).
pub const TEXTS: [(&str, &str); 4] = [
    ("lighthouse.txt", include_str!("texts/lighthouse.txt")),
    ("mill.txt", include_str!("texts/mill.txt")),
    ("voyage.txt", include_str!("texts/voyage.txt")),
    ("letters.txt", include_str!("texts/letters.txt")),
];

pub fn total_bytes() -> usize {
    TEXTS.iter().map(|(_, text)| text.len()).sum()
}
