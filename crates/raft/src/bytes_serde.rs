//! `#[serde(with = "crate::bytes_serde")]` for `Vec<u8>` payloads (entry data, snapshots): serde treats a
//! `Vec<u8>` as a sequence and hands a format one byte at a time; this hands it the whole slice. With postcard the
//! bytes on the wire are identical (a varint length, then the bytes), so it changes no format, only the speed:
//! a 4 KiB entry is one copy instead of 4,096 calls. (The `serde_bytes` crate does the same; ten lines here save a
//! dependency.)
use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::ser::Serializer;

pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    /// Formats that write bytes as a sequence (JSON, say) come back through here.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain {
        data: Vec<u8>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Fast {
        #[serde(with = "super")]
        data: Vec<u8>,
    }

    #[test]
    fn postcard_bytes_are_identical_either_way() {
        for len in [0usize, 1, 127, 128, 4096, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let plain = postcard::to_stdvec(&Plain { data: data.clone() }).expect("encodes");
            let fast = postcard::to_stdvec(&Fast { data: data.clone() }).expect("encodes");
            assert_eq!(plain, fast, "{len} bytes");
            let back: Fast = postcard::from_bytes(&plain).expect("decodes");
            assert_eq!(back.data, data);
        }
    }
}
