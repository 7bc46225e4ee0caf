//! A deterministic text generator: Zipf-distributed words, so tests and the benchmark make their own input
//! instead of shipping data files. The same spec always gives the same bytes.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Clone, Debug)]
pub struct CorpusSpec {
    /// Roughly this many bytes per file (each file ends at the first line end past it).
    pub bytes_per_file: u64,
    /// Distinct words to draw from; word `i` has probability proportional to `1 / (i + 1)`.
    pub vocabulary: usize,
    pub seed: u64,
}

/// Letters the words are made of; mostly ASCII, with a few non-ASCII letters so that Unicode word splitting
/// (`char::is_alphabetic`) is exercised too.
const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w',
    'x', 'y', 'z', 'e', 'a', 'o', 'i', 'n', 't', 'é', 'ß', 'ø', 'ω',
];
/// Separators between words; digits and punctuation separate words just like spaces.
const SEPARATORS: &[&str] = &[" ", " ", " ", " ", " ", " ", ", ", ". ", " -- ", " 1984 ", "; "];
/// Line length (bytes) after which a line is ended.
const LINE_BYTES: usize = 72;

/// splitmix64: tiny, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes one file per name into `dir` and returns their paths.
pub fn write_corpus(dir: &Path, names: &[&str], spec: &CorpusSpec) -> io::Result<Vec<PathBuf>> {
    assert!(spec.vocabulary > 0);
    let mut rng = Rng(spec.seed);
    let words: Vec<String> = (0..spec.vocabulary).map(|i| make_word(&mut rng, i)).collect();
    let mut cumulative = Vec::with_capacity(words.len());
    let mut total = 0.0;
    for i in 0..words.len() {
        total += 1.0 / (i as f64 + 1.0);
        cumulative.push(total);
    }
    let mut paths = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(name);
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let mut written: u64 = 0;
        let mut line = String::with_capacity(LINE_BYTES * 2);
        while written < spec.bytes_per_file {
            line.clear();
            while line.len() < LINE_BYTES {
                let u = rng.unit() * total;
                let index = cumulative.partition_point(|&c| c < u).min(words.len() - 1);
                if !line.is_empty() {
                    line.push_str(SEPARATORS[rng.below(SEPARATORS.len())]);
                }
                line.push_str(&words[index]);
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

/// Word `i`: its index spelled in letters plus a few random letters, sometimes capitalised. Two words may
/// rarely coincide, which only merges their counts.
fn make_word(rng: &mut Rng, index: usize) -> String {
    let mut word = String::new();
    let mut n = index;
    loop {
        word.push(ALPHABET[n % 26]);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    for _ in 0..rng.below(6) {
        word.push(ALPHABET[rng.below(ALPHABET.len())]);
    }
    // Some words start with a non-ASCII letter.
    if rng.below(8) == 0 {
        word.insert(0, ALPHABET[26 + rng.below(ALPHABET.len() - 26)]);
    }
    if rng.below(10) == 0 {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            word = first.to_uppercase().chain(chars).collect();
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_spec_gives_the_same_bytes() {
        let spec = CorpusSpec { bytes_per_file: 10_000, vocabulary: 500, seed: 7 };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pa = write_corpus(a.path(), &["x.txt", "y.txt"], &spec).unwrap();
        let pb = write_corpus(b.path(), &["x.txt", "y.txt"], &spec).unwrap();
        for (x, y) in pa.iter().zip(&pb) {
            let bytes = std::fs::read(x).unwrap();
            assert!(bytes.len() >= 10_000);
            assert_eq!(bytes, std::fs::read(y).unwrap());
        }
        assert_ne!(std::fs::read(&pa[0]).unwrap(), std::fs::read(&pa[1]).unwrap());
    }
}
