//! What a hash code is, independent of where it is stored.
//!
//! A code is a bit string whose length is a multiple of 8, from [`MIN_BITS`] to [`MAX_BITS`],
//! stored packed in bytes. Bit 0 is the most significant bit of byte 0: the order of
//! PostgreSQL's `bit(n)` and of the hex text form, so `'80'` is a code whose first bit is set.
//! The trainer, the encoder and the evaluation all pack signs with [`pack_signs`], so a code
//! means the same thing everywhere.

use std::fmt;

/// Shortest code, in bits.
pub const MIN_BITS: usize = 8;
/// Longest code, in bits (512 bytes: far beyond any useful hash length, small enough that a
/// code is never toasted).
pub const MAX_BITS: usize = 4096;
/// Longest code, in bytes.
pub const MAX_BYTES: usize = MAX_BITS / 8;

/// Why a bit length cannot be a code's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthError {
    /// Not a multiple of 8.
    NotByteAligned { bits: usize },
    /// Outside `MIN_BITS..=MAX_BITS`.
    OutOfRange { bits: usize },
}

impl fmt::Display for LengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthError::NotByteAligned { bits } => {
                write!(f, "hashcode length {bits} is not a multiple of 8")
            }
            LengthError::OutOfRange { bits } => write!(
                f,
                "hashcode length {bits} is out of range: it must be from {MIN_BITS} to {MAX_BITS} bits"
            ),
        }
    }
}

impl std::error::Error for LengthError {}

/// Checks that `bits` is a valid code length.
pub fn check_bits(bits: usize) -> Result<(), LengthError> {
    if !bits.is_multiple_of(8) {
        Err(LengthError::NotByteAligned { bits })
    } else if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        Err(LengthError::OutOfRange { bits })
    } else {
        Ok(())
    }
}

/// Why a text is not a code's hex form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// No digits at all (after an optional `\x`).
    Empty,
    /// A digit count that does not make whole bytes.
    OddDigits { digits: usize },
    /// A character that is not a hex digit, at a 0-based character position of the input.
    NotHex { position: usize, found: char },
    /// More than [`MAX_BITS`] bits.
    TooLong { bits: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "hashcode is empty"),
            ParseError::OddDigits { digits } => {
                write!(f, "hashcode has an odd number of hex digits ({digits})")
            }
            ParseError::NotHex { position, found } => write!(
                f,
                "\"{}\" at position {} is not a hex digit",
                found.escape_debug(),
                position + 1
            ),
            ParseError::TooLong { bits } => {
                write!(
                    f,
                    "hashcode of {bits} bits is longer than the maximum of {MAX_BITS}"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses the text form: hex digits (either case), two per byte, optionally prefixed by `\x`.
/// Surrounding whitespace is not accepted: the text form is canonical.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, ParseError> {
    let (offset, digits) = match text.strip_prefix("\\x") {
        Some(rest) => (2, rest),
        None => (0, text),
    };
    if digits.is_empty() {
        return Err(ParseError::Empty);
    }
    // Report a bad character before a bad count: "zz1" is wrong because of 'z', not its length.
    if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let position = offset + text[offset..offset + i].chars().count();
        return Err(ParseError::NotHex { position, found: c });
    }
    let n = digits.len(); // all ASCII from here on
    if n % 2 != 0 {
        return Err(ParseError::OddDigits { digits: n });
    }
    if n / 2 > MAX_BYTES {
        return Err(ParseError::TooLong { bits: n * 4 });
    }
    Ok(digits
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect())
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => unreachable!("checked by parse_hex"),
    }
}

/// Formats the canonical text form: lowercase hex, two digits per byte, no prefix.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Packs real-valued network outputs to a code: `u >= 0` gives bit 1, `u < 0` bit 0, bit 0
/// first (the most significant bit of byte 0). `NaN` has no sign: callers reject it first.
pub fn pack_signs(values: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; values.len().div_ceil(8)];
    for (i, &v) in values.iter().enumerate() {
        if v >= 0.0 {
            out[i / 8] |= 0x80 >> (i % 8);
        }
    }
    out
}

/// The bit at position `i` (0 = most significant bit of byte 0).
pub fn bit(code: &[u8], i: usize) -> bool {
    code[i / 8] & (0x80 >> (i % 8)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules() {
        assert_eq!(check_bits(8), Ok(()));
        assert_eq!(check_bits(64), Ok(()));
        assert_eq!(check_bits(4096), Ok(()));
        assert_eq!(check_bits(0), Err(LengthError::OutOfRange { bits: 0 }));
        assert_eq!(
            check_bits(4104),
            Err(LengthError::OutOfRange { bits: 4104 })
        );
        assert_eq!(
            check_bits(12),
            Err(LengthError::NotByteAligned { bits: 12 })
        );
        assert!(check_bits(12)
            .unwrap_err()
            .to_string()
            .contains("multiple of 8"));
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(parse_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(to_hex(&[0x8f, 0x3a, 0x00, 0xff]), "8f3a00ff");
    }

    #[test]
    fn hex_accepts_upper_case_and_prefix() {
        assert_eq!(parse_hex("8F3A").unwrap(), vec![0x8f, 0x3a]);
        assert_eq!(parse_hex("\\x8f3a").unwrap(), vec![0x8f, 0x3a]);
        assert_eq!(parse_hex("\\xAb").unwrap(), vec![0xab]);
    }

    #[test]
    fn hex_errors() {
        assert_eq!(parse_hex(""), Err(ParseError::Empty));
        assert_eq!(parse_hex("\\x"), Err(ParseError::Empty));
        assert_eq!(parse_hex("abc"), Err(ParseError::OddDigits { digits: 3 }));
        assert_eq!(
            parse_hex("0g"),
            Err(ParseError::NotHex {
                position: 1,
                found: 'g'
            })
        );
        assert_eq!(
            parse_hex("\\xzz"),
            Err(ParseError::NotHex {
                position: 2,
                found: 'z'
            })
        );
        // A non-ASCII character is reported at its character position, not its byte offset.
        assert_eq!(
            parse_hex("ééab"),
            Err(ParseError::NotHex {
                position: 0,
                found: 'é'
            })
        );
        assert_eq!(
            parse_hex("ab é"),
            Err(ParseError::NotHex {
                position: 2,
                found: ' '
            })
        );
        assert_eq!(
            parse_hex(" ab"),
            Err(ParseError::NotHex {
                position: 0,
                found: ' '
            })
        );
        assert_eq!(
            parse_hex("\\X00"),
            Err(ParseError::NotHex {
                position: 0,
                found: '\\'
            })
        );
        let longest = "ab".repeat(MAX_BYTES);
        assert_eq!(parse_hex(&longest).unwrap().len(), MAX_BYTES);
        let too_long = "ab".repeat(MAX_BYTES + 1);
        assert_eq!(
            parse_hex(&too_long),
            Err(ParseError::TooLong { bits: MAX_BITS + 8 })
        );
        assert_eq!(
            ParseError::NotHex {
                position: 1,
                found: 'g'
            }
            .to_string(),
            "\"g\" at position 2 is not a hex digit"
        );
    }

    #[test]
    fn packing_is_msb_first() {
        assert_eq!(
            pack_signs(&[1.0, -1.0, -0.5, 0.0, -1.0, -1.0, -1.0, 0.3]),
            vec![0b1001_0001]
        );
        let values: Vec<f32> = (0..16)
            .map(|i| if i % 3 == 0 { 0.5 } else { -0.5 })
            .collect();
        let code = pack_signs(&values);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(bit(&code, i), *v >= 0.0);
        }
    }
}
