//! Order-preserving key encoding.
//!
//! Composite keys are concatenations of components whose byte order equals their natural
//! order: integers big-endian, strings escaped (`0x00` -> `0x00 0xFF`) and terminated by
//! `0x00 0x01`, so that a prefix of components selects a contiguous range.

/// A key under construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// An empty key.
    pub fn new() -> Self {
        Key(Vec::with_capacity(24))
    }

    /// Appends an unsigned integer.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a signed integer (sign bit flipped so negatives sort first).
    pub fn i64(mut self, v: i64) -> Self {
        self.0
            .extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
        self
    }

    /// Appends a byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// Appends a string component.
    pub fn str(mut self, s: &str) -> Self {
        for &b in s.as_bytes() {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xFF);
            }
        }
        self.0.extend_from_slice(&[0x00, 0x01]);
        self
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The encoded bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Reads components back out of a key, in the order they were written.
#[derive(Debug, Clone)]
pub struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    /// Starts reading `key`.
    pub fn new(key: &'a [u8]) -> Self {
        Self { rest: key }
    }

    /// The next unsigned integer.
    pub fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(u64::from_be_bytes(*head))
    }

    /// The next signed integer.
    pub fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| (v ^ (1 << 63)) as i64)
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let (head, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(*head)
    }

    /// The next string component.
    pub fn str(&mut self) -> Option<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.rest.len() {
            let b = self.rest[i];
            if b == 0 {
                match self.rest.get(i + 1) {
                    Some(0xFF) => {
                        out.push(0);
                        i += 2;
                    }
                    Some(0x01) => {
                        self.rest = &self.rest[i + 2..];
                        return String::from_utf8(out).ok();
                    }
                    _ => return None,
                }
            } else {
                out.push(b);
                i += 1;
            }
        }
        None
    }
}

/// The key of a record by id.
pub fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The id in an [`id_key`].
pub fn id_from_key(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

/// The smallest key greater than every key that starts with `prefix` (for range ends);
/// `None` when no such key exists (the prefix is all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_sort_numerically() {
        let a = Key::new().u64(2).into_bytes();
        let b = Key::new().u64(10).into_bytes();
        assert!(a < b);
        let n = Key::new().i64(-5).into_bytes();
        let p = Key::new().i64(3).into_bytes();
        assert!(n < p);
        let mut r = KeyReader::new(&n);
        assert_eq!(r.i64(), Some(-5));
    }

    #[test]
    fn strings_sort_and_round_trip() {
        let k1 = Key::new().str("ab").u64(9).into_bytes();
        let k2 = Key::new().str("abc").u64(1).into_bytes();
        let k3 = Key::new().str("b").u64(0).into_bytes();
        assert!(k1 < k2 && k2 < k3, "string order wins over the id after it");
        let nul = Key::new().str("a\0b").u8(7).into_bytes();
        let mut r = KeyReader::new(&nul);
        assert_eq!(r.str().as_deref(), Some("a\0b"));
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn prefix_ranges() {
        let prefix = Key::new().str("tok").into_bytes();
        let end = prefix_end(&prefix).expect("end");
        let inside = Key::new().str("tok").u64(u64::MAX).into_bytes();
        let outside = Key::new().str("toka").u64(0).into_bytes();
        assert!(prefix.as_slice() <= inside.as_slice() && inside < end);
        assert!(outside >= end || !outside.starts_with(&prefix));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(id_from_key(&id_key(42)), Some(42));
    }
}
