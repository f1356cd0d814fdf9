//! Variable-length integers as the Kafka record format writes them:
//! unsigned LEB128, and zig-zag for signed values (`varint` for i32,
//! `varlong` for i64).

/// Most bytes an encoded u64 can take (7 bits a byte).
pub const MAX_VARLONG_BYTES: usize = 10;
/// Most bytes an encoded u32 can take.
pub const MAX_VARINT_BYTES: usize = 5;

/// Appends `value` as unsigned LEB128.
pub fn put_uvarint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends a zig-zag encoded i32.
pub fn put_varint(buf: &mut Vec<u8>, value: i32) {
    put_uvarint(buf, u64::from(zigzag32(value)));
}

/// Appends a zig-zag encoded i64.
pub fn put_varlong(buf: &mut Vec<u8>, value: i64) {
    put_uvarint(buf, zigzag64(value));
}

/// Bytes `value` takes as unsigned LEB128.
pub fn uvarint_len(value: u64) -> usize {
    // 1 byte per started group of 7 bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes a zig-zag i32 takes.
pub fn varint_len(value: i32) -> usize {
    uvarint_len(u64::from(zigzag32(value)))
}

/// Bytes a zig-zag i64 takes.
pub fn varlong_len(value: i64) -> usize {
    uvarint_len(zigzag64(value))
}

pub(crate) fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

pub(crate) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

pub(crate) fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Cursor;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Values from the Kafka protocol guide's zig-zag table.
        for (v, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(buf, bytes, "varlong {v}");
            assert_eq!(varlong_len(v), bytes.len());
        }
    }

    proptest! {
        #[test]
        fn varlong_round_trip(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            prop_assert_eq!(buf.len(), varlong_len(v));
            let mut c = Cursor::new(&buf);
            prop_assert_eq!(c.varlong().unwrap(), v);
            prop_assert!(c.is_empty());
        }

        #[test]
        fn varint_round_trip(v in any::<i32>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(buf.len(), varint_len(v));
            let mut c = Cursor::new(&buf);
            prop_assert_eq!(c.varint().unwrap(), v);
        }
    }

    #[test]
    fn overlong_varints_are_errors() {
        // Eleven continuation bytes: longer than any u64.
        let bytes = [0xffu8; 11];
        assert!(Cursor::new(&bytes).varlong().is_err());
        // Six bytes cannot be an i32.
        let bytes = [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(Cursor::new(&bytes).varint().is_err());
        // A value that needs 33 bits in five bytes is not an i32 either.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x1f];
        assert!(Cursor::new(&bytes).varint().is_err());
        // Truncated.
        assert!(Cursor::new(&[0x80u8]).varint().is_err());
    }
}
