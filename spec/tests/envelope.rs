//! The leaf envelope (version 2) against hand-derived RFC 8949 bytes, against minicbor (an
//! independent CBOR decoder and encoder), and against one negative input per strictness rule.
//! The commitments inside the examples are the Python-made vectors of
//! `tests/vectors/commitments.json` (checked against the Rust commitment in `tests/commitments.rs`).

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sealtrail_spec::envelope::{
    COMMITMENT_LEN, ENVELOPE_VERSION, EnvelopeError, Field, LeafEnvelope, MAX_CONTENT_TYPE_LEN,
    MAX_ENVELOPE_LEN, MAX_EVENT_TYPE_LEN, RESERVED_EVENT_TYPE_PREFIX,
};
use sealtrail_spec::tiles::MAX_ENTRY_SIZE;

/// The commitment of the `json-payload` vector (salt 00 01 .. 1f, principal `alice`, payload
/// `{"ok":true}`), computed with Python's hashlib.
const COMMITMENT_A: &str = "2c8763cdcf7ccc6668ca4dd441731dd17590a2195fb0d3e2c96da9519a9b7da2";

/// Example A, also the worked example of `docs/leaf-envelope.md`. Derived by hand from RFC 8949
/// section 3 (initial byte = major type << 5 | additional info; info 0..23 is the value itself,
/// 24/25/26/27 announce a 1/2/4/8-byte big-endian value) and section 4.2.1 (shortest heads,
/// definite lengths, keys in bytewise order, which for keys 0..5 is numeric order):
///
/// ```text
/// a6                            map, 6 pairs               (5 << 5 = 0xa0) | 6
/// 00 02                         key 0: version 2
/// 01 1b 00 00 01 8b cf e5 68 00 key 1: 1700000000000 = 0x18bcfe56800 > 0xffffffff, so info 27
/// 02 70 61 70 70 ... 6f 6e      key 2: text(16) "application/json"   (3 << 5 = 0x60) | 16 = 0x70
/// 03 65 6c 6f 67 69 6e          key 3: text(5) "login"
/// 04 0b                         key 4: payload size 11
/// 05 58 20 2c 87 ... a2         key 5: bytes(32): 32 is not < 24, so (2 << 5) | 24 = 0x58, then
///                               one byte 0x20, then the commitment
/// ```
const EXAMPLE_A: &str = concat!(
    "a6",
    "0002",
    "011b0000018bcfe56800",
    "02706170706c69636174696f6e2f6a736f6e",
    "03656c6f67696e",
    "040b",
    "055820",
    "2c8763cdcf7ccc6668ca4dd441731dd17590a2195fb0d3e2c96da9519a9b7da2",
);

/// `SHA-256(0x00 || EXAMPLE_A)`, computed with Python's hashlib, not with this crate.
const EXAMPLE_A_LEAF_HASH: &str =
    "b72bbaf3e95e63e0c3d6831d05269225493281cfe8b5f94e434538f7d2eb65ed";

fn commitment(hex: &str) -> [u8; COMMITMENT_LEN] {
    unhex(hex).try_into().unwrap()
}

fn example_a() -> LeafEnvelope {
    LeafEnvelope {
        time_ms: 1_700_000_000_000,
        content_type: "application/json".into(),
        event_type: Some("login".into()),
        payload_size: 11,
        commitment: commitment(COMMITMENT_A),
    }
}

/// The commitment of the `binary-payload` vector (32 bytes ff fe .. e0), from Python's hashlib.
const COMMITMENT_B: &str = "c9ff16ff2d809b28e368b37182f31900be93a5c802189cd572d2ae99eb1fb3cc";

/// Example B: no event type, and one- and two-byte heads.
///
/// ```text
/// a5                            map, 5 pairs (key 3 absent)
/// 00 02                         key 0: version 2
/// 01 19 03 e8                   key 1: 1000 = 0x3e8 > 0xff, so info 25 and two bytes
/// 02 78 18 61 70 ... 6d         key 2: text(24) "application/octet-stream": 24 is not < 24,
///                               so info 24 (0x60 | 24 = 0x78) and one byte 0x18
/// 04 18 20                      key 4: payload size 32, info 24 and one byte 0x20
/// 05 58 20 c9 ff ... cc         key 5: bytes(32), the commitment
/// ```
const EXAMPLE_B: &str = concat!(
    "a5",
    "0002",
    "011903e8",
    "0278186170706c69636174696f6e2f6f637465742d73747265616d",
    "041820",
    "055820",
    "c9ff16ff2d809b28e368b37182f31900be93a5c802189cd572d2ae99eb1fb3cc",
);

/// `SHA-256(0x00 || EXAMPLE_B)`, computed with Python's hashlib.
const EXAMPLE_B_LEAF_HASH: &str =
    "e68ecf798bb37f90a13cc8c820bfd0ebfa8c5785ad55f26076b00ee352aebd03";

fn example_b() -> LeafEnvelope {
    LeafEnvelope {
        time_ms: 1000,
        content_type: "application/octet-stream".into(),
        event_type: None,
        payload_size: 32,
        commitment: commitment(COMMITMENT_B),
    }
}

/// Version 1's example A (principal and payload in the leaf), the bytes of the v1 document. Never
/// released; a v2 reader rejects it by its version.
const V1_EXAMPLE_A: &str = concat!(
    "a6",
    "0001",
    "011b0000018bcfe56800",
    "0265616c696365",
    "03706170706c69636174696f6e2f6a736f6e",
    "04656c6f67696e",
    "054b7b226f6b223a747275657d",
);

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// A lenient decoder made with minicbor: accepts any key order, non-shortest heads, an
/// indefinite-length map and so on, but needs every value of the right type and a 32-byte
/// commitment. The strict decoder must agree with it on every input the strict decoder accepts.
fn minicbor_decode(bytes: &[u8]) -> Option<LeafEnvelope> {
    let mut d = minicbor::Decoder::new(bytes);
    let mut pairs = d.map().ok()?;
    let mut version = None;
    let mut env = LeafEnvelope {
        time_ms: 0,
        content_type: String::new(),
        event_type: None,
        payload_size: 0,
        commitment: [0; COMMITMENT_LEN],
    };
    loop {
        match pairs.as_mut() {
            Some(0) => break,
            Some(n) => *n -= 1,
            None if d.datatype().ok()? == minicbor::data::Type::Break => {
                d.set_position(d.position() + 1);
                break;
            }
            None => {}
        }
        match d.u64().ok()? {
            0 => version = Some(d.u64().ok()?),
            1 => env.time_ms = d.u64().ok()?,
            2 => env.content_type = d.str().ok()?.to_owned(),
            3 => env.event_type = Some(d.str().ok()?.to_owned()),
            4 => env.payload_size = d.u64().ok()?,
            5 => env.commitment = d.bytes().ok()?.try_into().ok()?,
            _ => return None,
        }
    }
    (version == Some(ENVELOPE_VERSION) && d.position() == bytes.len()).then_some(env)
}

/// The same map written with minicbor's encoder, which writes shortest heads and definite
/// lengths; keys are written in ascending order by hand.
fn minicbor_encode(env: &LeafEnvelope) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(if env.event_type.is_some() { 6 } else { 5 }).unwrap();
    e.u8(0).unwrap().u64(ENVELOPE_VERSION).unwrap();
    e.u8(1).unwrap().u64(env.time_ms).unwrap();
    e.u8(2).unwrap().str(&env.content_type).unwrap();
    if let Some(t) = &env.event_type {
        e.u8(3).unwrap().str(t).unwrap();
    }
    e.u8(4).unwrap().u64(env.payload_size).unwrap();
    e.u8(5).unwrap().bytes(&env.commitment).unwrap();
    e.into_writer()
}

#[test]
fn hand_derived_vectors() {
    for (env, hex, leaf) in [
        (example_a(), EXAMPLE_A, EXAMPLE_A_LEAF_HASH),
        (example_b(), EXAMPLE_B, EXAMPLE_B_LEAF_HASH),
    ] {
        let bytes = unhex(hex);
        assert_eq!(env.encode().unwrap(), bytes);
        assert_eq!(env.encoded_len(), bytes.len());
        assert_eq!(LeafEnvelope::decode(&bytes).unwrap(), env);
        assert_eq!(minicbor_decode(&bytes).unwrap(), env);
        assert_eq!(minicbor_encode(&env), bytes);
        assert_eq!(env.leaf_hash().unwrap().to_hex(), leaf);
        assert!(!env.is_reserved());
    }
    assert_eq!(unhex(EXAMPLE_A).len(), 75);
    assert_eq!(unhex(EXAMPLE_B).len(), 72);
}

#[test]
fn worked_examples_in_the_spec_match() {
    let doc: String = include_str!("../docs/leaf-envelope.md")
        .split_whitespace()
        .collect();
    for hex in [
        EXAMPLE_A,
        EXAMPLE_B,
        EXAMPLE_A_LEAF_HASH,
        EXAMPLE_B_LEAF_HASH,
    ] {
        assert!(doc.contains(hex), "{hex} is not in leaf-envelope.md");
    }
    for env in [example_a(), example_b()] {
        let b64 = env.leaf_hash().unwrap().to_base64();
        assert!(doc.contains(&b64), "{b64} is not in leaf-envelope.md");
    }
    // The v1 bytes are quoted in the "Version 1 is gone" note.
    assert!(doc.contains(V1_EXAMPLE_A));
}

/// Example A with the hex of one item replaced (`from` must occur exactly once).
fn mutate_a(from: &str, to: &str) -> Vec<u8> {
    assert_eq!(EXAMPLE_A.matches(from).count(), 1, "{from}");
    unhex(&EXAMPLE_A.replace(from, to))
}

fn decode_err(bytes: &[u8]) -> EnvelopeError {
    LeafEnvelope::decode(bytes).unwrap_err()
}

/// Byte offsets of the items of example A, for the expected errors.
mod at {
    pub(super) const VERSION_VALUE: usize = 2;
    pub(super) const TIME_VALUE: usize = 4;
    pub(super) const CONTENT_TYPE_KEY: usize = 13;
    pub(super) const CONTENT_TYPE_VALUE: usize = 14;
    pub(super) const EVENT_TYPE_KEY: usize = 31;
    pub(super) const EVENT_TYPE_VALUE: usize = 32;
    pub(super) const PAYLOAD_SIZE_VALUE: usize = 39;
    pub(super) const COMMITMENT_VALUE: usize = 41;
    pub(super) const END: usize = 75;
}

#[test]
fn rejects_non_shortest_heads_that_lenient_decoders_accept() {
    let cases = [
        // version 2 as 0x18 0x02 (one-byte argument holding a value below 24)
        ("a60002011b", "a6001802011b", at::VERSION_VALUE),
        // key 2 as 0x18 0x02
        ("027061", "18027061", at::CONTENT_TYPE_KEY),
        // text length 16 as 0x78 0x10
        ("027061", "02781061", at::CONTENT_TYPE_VALUE),
        // text length 5 as 0x79 0x00 0x05
        ("03656c", "037900056c", at::EVENT_TYPE_VALUE),
        // payload size 11 as 0x18 0x0b, and as 0x1a 0x00 0x00 0x00 0x0b
        ("040b05", "04180b05", at::PAYLOAD_SIZE_VALUE),
        ("040b05", "041a0000000b05", at::PAYLOAD_SIZE_VALUE),
        // commitment length 32 as 0x59 0x00 0x20
        ("055820", "05590020", at::COMMITMENT_VALUE),
    ];
    for (from, to, offset) in cases {
        let bytes = mutate_a(from, to);
        assert_eq!(minicbor_decode(&bytes), Some(example_a()), "{to}");
        assert_eq!(
            decode_err(&bytes),
            EnvelopeError::NotShortest { offset },
            "{to}"
        );
    }
    // Example B's time 1000 in four bytes instead of two, and its payload size 32 in two.
    let b = unhex(&EXAMPLE_B.replace("011903e8", "011a000003e8"));
    assert_eq!(minicbor_decode(&b), Some(example_b()));
    assert_eq!(decode_err(&b), EnvelopeError::NotShortest { offset: 4 });
    let b = unhex(&EXAMPLE_B.replace("041820", "04190020"));
    assert_eq!(minicbor_decode(&b), Some(example_b()));
    assert_eq!(decode_err(&b), EnvelopeError::NotShortest { offset: 35 });
    // The map head: 6 pairs as 0xb8 0x06.
    let m = mutate_a("a60002", "b8060002");
    assert_eq!(minicbor_decode(&m), Some(example_a()));
    assert_eq!(decode_err(&m), EnvelopeError::NotShortest { offset: 0 });
}

#[test]
fn rejects_indefinite_lengths() {
    // An indefinite-length map: 0xbf, the pairs, the break 0xff.
    let mut map = mutate_a("a60002", "bf0002");
    map.push(0xff);
    assert_eq!(minicbor_decode(&map), Some(example_a()));
    assert_eq!(decode_err(&map), EnvelopeError::Indefinite { offset: 0 });
    // An indefinite-length text string made of one chunk, and of two.
    let ct = "6170706c69636174696f6e2f6a736f6e";
    let text = mutate_a(&format!("0270{ct}"), &format!("027f70{ct}ff"));
    assert_eq!(
        decode_err(&text),
        EnvelopeError::Indefinite {
            offset: at::CONTENT_TYPE_VALUE
        }
    );
    let two = mutate_a("03656c6f67696e", "037f626c6f6367696eff");
    assert_eq!(
        decode_err(&two),
        EnvelopeError::Indefinite {
            offset: at::EVENT_TYPE_VALUE
        }
    );
    // An indefinite-length byte string holding the commitment.
    let bytes = mutate_a(
        &format!("055820{COMMITMENT_A}"),
        &format!("055f5820{COMMITMENT_A}ff"),
    );
    assert_eq!(
        decode_err(&bytes),
        EnvelopeError::Indefinite {
            offset: at::COMMITMENT_VALUE
        }
    );
}

#[test]
fn rejects_bad_keys() {
    let ct = "02706170706c69636174696f6e2f6a736f6e";
    let et = "03656c6f67696e";
    // Content type and event type swapped.
    let swapped = mutate_a(&format!("{ct}{et}"), &format!("{et}{ct}"));
    assert_eq!(minicbor_decode(&swapped), Some(example_a()));
    assert_eq!(
        decode_err(&swapped),
        EnvelopeError::KeyOrder {
            key: 2,
            prev: 3,
            offset: 20
        }
    );
    // Payload size after the commitment.
    let c = format!("055820{COMMITMENT_A}");
    let late = mutate_a(&format!("040b{c}"), &format!("{c}040b"));
    assert_eq!(minicbor_decode(&late), Some(example_a()));
    assert_eq!(
        decode_err(&late),
        EnvelopeError::KeyOrder {
            key: 4,
            prev: 5,
            offset: 73
        }
    );
    // Content type twice (7 pairs).
    let dup = mutate_a(
        &format!("a60002011b0000018bcfe56800{ct}"),
        &format!("a70002011b0000018bcfe56800{ct}{ct}"),
    );
    assert_eq!(
        decode_err(&dup),
        EnvelopeError::DuplicateKey {
            key: 2,
            offset: at::EVENT_TYPE_KEY
        }
    );
    // Key 6 after the commitment (7 pairs), and key 24 in its two-byte head.
    for key in [vec![0x06], vec![0x18, 0x18]] {
        let mut unknown = mutate_a("a60002", "a70002");
        unknown.extend(&key);
        unknown.push(0x01);
        assert_eq!(
            decode_err(&unknown),
            EnvelopeError::UnknownKey {
                key: u64::from(*key.last().unwrap()),
                offset: at::END
            }
        );
    }
    // A text key and a negative-integer key.
    let text_key = mutate_a("a60002", "a6600002");
    assert!(matches!(
        decode_err(&text_key),
        EnvelopeError::WrongType {
            item: "map key",
            offset: 1,
            found: "a text string",
            ..
        }
    ));
    let negative_key = mutate_a("a60002011b", "a6200002011b");
    assert!(matches!(
        decode_err(&negative_key),
        EnvelopeError::WrongType {
            item: "map key",
            found: "a negative integer",
            ..
        }
    ));
}

#[test]
fn rejects_missing_required_keys() {
    for (from, to, field) in [
        ("a60002011b", "a5011b", Field::Version),
        ("011b0000018bcfe56800", "", Field::Time),
        (
            "02706170706c69636174696f6e2f6a736f6e",
            "",
            Field::ContentType,
        ),
        ("040b055820", "055820", Field::PayloadSize),
        (
            format!("055820{COMMITMENT_A}").as_str(),
            "",
            Field::Commitment,
        ),
    ] {
        let mut bytes = mutate_a(from, to);
        bytes[0] = 0xa5;
        assert_eq!(
            decode_err(&bytes),
            EnvelopeError::MissingKey(field),
            "{field}"
        );
    }
    // The event type is optional.
    let mut no_event = mutate_a("03656c6f67696e", "");
    no_event[0] = 0xa5;
    let env = LeafEnvelope::decode(&no_event).unwrap();
    assert_eq!(env.event_type, None);
    assert_eq!(minicbor_decode(&no_event), Some(env));
    // An empty map.
    assert_eq!(
        decode_err(&[0xa0]),
        EnvelopeError::MissingKey(Field::Version)
    );
}

#[test]
fn rejects_version_1_and_other_versions() {
    // The v1 document's own example: refused by its version, before the v1 keys are read.
    assert_eq!(decode_err(&unhex(V1_EXAMPLE_A)), EnvelopeError::Version(1));
    assert_eq!(minicbor_decode(&unhex(V1_EXAMPLE_A)), None);
    // A v1 entry with no event type and a binary payload (the v1 document's example B).
    let v1_b = unhex(&format!(
        "a50001011903e80269616e6f6e796d6f75730378186170706c69636174696f6e2f6f637465742d73747265616d055818{}",
        "00".repeat(24)
    ));
    assert_eq!(decode_err(&v1_b), EnvelopeError::Version(1));
    // Example A with versions 1, 0, 3 and 2^64 - 1.
    for (to, v) in [
        ("a60001", 1),
        ("a60000", 0),
        ("a60003", 3),
        ("a6001bffffffffffffffff", u64::MAX),
    ] {
        assert_eq!(
            decode_err(&mutate_a("a60002", to)),
            EnvelopeError::Version(v)
        );
    }
    // Checked before the rest, which another version may lay out differently.
    assert_eq!(decode_err(&[0xa1, 0x00, 0x03]), EnvelopeError::Version(3));
    assert_eq!(decode_err(&[0xa1, 0x00, 0x01]), EnvelopeError::Version(1));
    assert_eq!(
        EnvelopeError::Version(1).to_string(),
        "unsupported envelope version 1, expected 2"
    );
}

#[test]
fn rejects_commitments_that_are_not_32_bytes() {
    let c = format!("055820{COMMITMENT_A}");
    let cases = [
        (format!("05581f{}", &COMMITMENT_A[..62]), 31),
        (format!("055821{COMMITMENT_A}00"), 33),
        ("0540".to_owned(), 0),
        (format!("055840{COMMITMENT_A}{COMMITMENT_A}"), 64),
    ];
    for (to, len) in cases {
        let bytes = mutate_a(&c, &to);
        assert_eq!(minicbor_decode(&bytes), None, "{len}");
        assert_eq!(
            decode_err(&bytes),
            EnvelopeError::CommitmentLength(len),
            "{len}"
        );
    }
    assert_eq!(
        EnvelopeError::CommitmentLength(31).to_string(),
        "commitment (key 5) is 31 bytes, not 32"
    );
}

#[test]
fn rejects_wrong_types_null_floats_and_tags() {
    let wrong = |bytes: &[u8]| match decode_err(bytes) {
        EnvelopeError::WrongType {
            item,
            expected,
            found,
            ..
        } => (item, expected, found),
        e => panic!("expected WrongType, got {e:?}"),
    };
    // A null event type (absence is spelled by leaving key 3 out), and undefined.
    assert_eq!(
        wrong(&mutate_a("03656c6f67696e", "03f6")),
        ("event type (key 3)", "a text string", "null")
    );
    assert_eq!(
        wrong(&mutate_a("03656c6f67696e", "03f7")),
        ("event type (key 3)", "a text string", "undefined")
    );
    // The commitment as a text string.
    assert_eq!(
        wrong(&mutate_a("055820", "057820")),
        ("commitment (key 5)", "a byte string", "a text string")
    );
    // The content type as a byte string.
    assert_eq!(
        wrong(&mutate_a("027061", "025061")),
        ("content type (key 2)", "a text string", "a byte string")
    );
    // The payload size as a negative integer, a half-precision float and a text.
    assert_eq!(
        wrong(&mutate_a("040b05", "042b05")),
        (
            "payload size (key 4)",
            "an unsigned integer",
            "a negative integer"
        )
    );
    assert_eq!(
        wrong(&mutate_a("040b05", "04f9498005")),
        ("payload size (key 4)", "an unsigned integer", "a float")
    );
    assert_eq!(
        wrong(&mutate_a("040b05", "0462313105")),
        (
            "payload size (key 4)",
            "an unsigned integer",
            "a text string"
        )
    );
    // The time as a double (0xfb).
    assert_eq!(
        wrong(&mutate_a("011b0000018bcfe56800", "01fb4278bcfe56800000")),
        ("time (key 1)", "an unsigned integer", "a float")
    );
    // The version as true.
    assert_eq!(
        wrong(&mutate_a("a60002", "a600f5")),
        ("version (key 0)", "an unsigned integer", "a boolean")
    );
    // An array instead of the map.
    assert_eq!(wrong(&unhex("8100")), ("envelope", "a map", "an array"));
    // A break stop code where a key should be.
    assert_eq!(
        wrong(&[0xa1, 0xff]),
        ("map key", "an unsigned integer", "a break stop code")
    );
    // Tag 1 (epoch time) on the time, tag 24 (embedded CBOR) on the commitment, and the
    // self-describe tag 55799 on the whole map.
    assert_eq!(
        decode_err(&mutate_a("011b0000018bcfe56800", "01c11b0000018bcfe56800")),
        EnvelopeError::Tag {
            offset: at::TIME_VALUE
        }
    );
    assert_eq!(
        decode_err(&mutate_a("055820", "05d8185820")),
        EnvelopeError::Tag {
            offset: at::COMMITMENT_VALUE
        }
    );
    let mut described = unhex("d9d9f7");
    described.extend(unhex(EXAMPLE_A));
    assert_eq!(minicbor_decode(&described), None);
    assert_eq!(decode_err(&described), EnvelopeError::Tag { offset: 0 });
    // Reserved additional information 28, and 31 on an integer.
    assert_eq!(
        decode_err(&mutate_a("a60002", "a6001c")),
        EnvelopeError::Reserved {
            offset: at::VERSION_VALUE,
            info: 28
        }
    );
    assert_eq!(
        decode_err(&mutate_a("a60002", "a6001f")),
        EnvelopeError::Reserved {
            offset: at::VERSION_VALUE,
            info: 31
        }
    );
}

#[test]
fn rejects_trailing_bytes_and_truncation() {
    let mut trailing = unhex(EXAMPLE_A);
    trailing.push(0x00);
    assert_eq!(decode_err(&trailing), EnvelopeError::TrailingBytes(1));
    let mut two = unhex(EXAMPLE_A);
    two.extend(unhex(EXAMPLE_A));
    assert_eq!(decode_err(&two), EnvelopeError::TrailingBytes(75));
    let a = unhex(EXAMPLE_A);
    for n in 0..a.len() {
        assert!(
            LeafEnvelope::decode(&a[..n]).is_err(),
            "prefix of {n} bytes"
        );
    }
    assert_eq!(decode_err(&[]), EnvelopeError::Truncated { offset: 0 });
    assert_eq!(decode_err(&a[..3]), EnvelopeError::Truncated { offset: 3 });
    // Cut inside the commitment.
    assert_eq!(
        decode_err(&a[..74]),
        EnvelopeError::Truncated {
            offset: at::COMMITMENT_VALUE
        }
    );
    // A length far beyond the input.
    assert_eq!(
        decode_err(&mutate_a("055820", "055bffffffffffffffff")),
        EnvelopeError::Truncated {
            offset: at::COMMITMENT_VALUE
        }
    );
}

#[test]
fn rejects_too_large_input_before_parsing() {
    assert_eq!(MAX_ENTRY_SIZE, 65535);
    // A valid envelope padded to 65536 bytes: refused by size alone.
    let mut big = unhex(EXAMPLE_A);
    big.resize(MAX_ENTRY_SIZE + 1, 0);
    assert_eq!(decode_err(&big), EnvelopeError::TooLarge(65536));
    // 65535 bytes are parsed, and the padding is trailing bytes.
    big.pop();
    assert_eq!(decode_err(&big), EnvelopeError::TrailingBytes(65535 - 75));
    // Well-formed CBOR with a huge content type is refused by the field rule, and past 65535
    // bytes by size.
    let mut env = example_a();
    env.content_type = "a".repeat(60_000);
    let bytes = minicbor_encode(&env);
    assert_eq!(
        decode_err(&bytes),
        EnvelopeError::TextTooLong {
            field: Field::ContentType,
            len: 60_000,
            max: MAX_CONTENT_TYPE_LEN
        }
    );
    env.content_type = "a".repeat(70_000);
    assert_eq!(
        decode_err(&minicbor_encode(&env)),
        EnvelopeError::TooLarge(minicbor_encode(&env).len())
    );
}

#[test]
fn rejects_bad_text() {
    // Invalid UTF-8: a lone 0xff in the event type, an overlong '/' (0xc0 0xaf) in the content
    // type (17 bytes, so the head becomes 0x71).
    assert_eq!(
        decode_err(&mutate_a("03656c6f67696e", "03656cff67696e")),
        EnvelopeError::Utf8(Field::EventType)
    );
    assert_eq!(
        decode_err(&mutate_a(
            "02706170706c69636174696f6e2f6a736f6e",
            "02716170706c69636174696f6ec0af6a736f6e"
        )),
        EnvelopeError::Utf8(Field::ContentType)
    );
    // Empty text (an absent event type is spelled by omission).
    assert_eq!(
        decode_err(&mutate_a("03656c6f67696e", "0360")),
        EnvelopeError::EmptyText(Field::EventType)
    );
    assert_eq!(
        decode_err(&mutate_a("02706170706c69636174696f6e2f6a736f6e", "0260")),
        EnvelopeError::EmptyText(Field::ContentType)
    );
    // A control character: newline and U+0085 (C1) in the event type.
    assert_eq!(
        decode_err(&mutate_a("03656c6f67696e", "03656c0a67696e")),
        EnvelopeError::ForbiddenChar {
            field: Field::EventType,
            ch: '\n'
        }
    );
    assert_eq!(
        decode_err(&mutate_a("03656c6f67696e", "0366c28567696e6e")),
        EnvelopeError::ForbiddenChar {
            field: Field::EventType,
            ch: '\u{85}'
        }
    );
    // Non-ASCII in the content type: "application/jén", same length.
    assert_eq!(
        decode_err(&mutate_a("6a736f6e", "6ac3a96e")),
        EnvelopeError::ForbiddenChar {
            field: Field::ContentType,
            ch: 'é'
        }
    );
    // Too long, in well-formed CBOR: content type 257 bytes, event type 129.
    let mut env = example_a();
    env.content_type = "c".repeat(MAX_CONTENT_TYPE_LEN + 1);
    assert_eq!(
        decode_err(&minicbor_encode(&env)),
        EnvelopeError::TextTooLong {
            field: Field::ContentType,
            len: 257,
            max: 256
        }
    );
    let mut env = example_a();
    env.event_type = Some("e".repeat(MAX_EVENT_TYPE_LEN + 1));
    assert_eq!(
        decode_err(&minicbor_encode(&env)),
        EnvelopeError::TextTooLong {
            field: Field::EventType,
            len: 129,
            max: 128
        }
    );
}

#[test]
fn field_rules_on_encode() {
    let with = |f: &dyn Fn(&mut LeafEnvelope)| {
        let mut e = example_a();
        f(&mut e);
        e.encode()
    };
    assert_eq!(
        with(&|e| e.content_type.clear()),
        Err(EnvelopeError::EmptyText(Field::ContentType))
    );
    assert_eq!(
        with(&|e| e.event_type = Some(String::new())),
        Err(EnvelopeError::EmptyText(Field::EventType))
    );
    assert_eq!(
        with(&|e| e.event_type = Some("a".repeat(MAX_EVENT_TYPE_LEN + 1))),
        Err(EnvelopeError::TextTooLong {
            field: Field::EventType,
            len: MAX_EVENT_TYPE_LEN + 1,
            max: MAX_EVENT_TYPE_LEN
        })
    );
    // Limits count UTF-8 bytes: 64 two-byte characters are 128 bytes.
    assert!(with(&|e| e.event_type = Some("é".repeat(64))).is_ok());
    assert!(with(&|e| e.event_type = Some("é".repeat(65))).is_err());
    assert!(with(&|e| e.event_type = Some("a".repeat(MAX_EVENT_TYPE_LEN))).is_ok());
    assert!(with(&|e| e.content_type = "a".repeat(MAX_CONTENT_TYPE_LEN)).is_ok());
    assert!(with(&|e| e.content_type = "a".repeat(MAX_CONTENT_TYPE_LEN + 1)).is_err());
    for (field, ch) in [
        (Field::EventType, '\0'),
        (Field::EventType, '\t'),
        (Field::EventType, '\u{7f}'),
        (Field::EventType, '\u{85}'),
        (Field::ContentType, '\r'),
        (Field::ContentType, '\u{7f}'),
        (Field::ContentType, 'é'),
        (Field::ContentType, '\u{a0}'),
    ] {
        let got = with(&|e| {
            let s = format!("a{ch}b");
            match field {
                Field::ContentType => e.content_type = s,
                _ => e.event_type = Some(s),
            }
        });
        assert_eq!(got, Err(EnvelopeError::ForbiddenChar { field, ch }));
    }
    // Non-ASCII is fine in the event type.
    assert!(with(&|e| e.event_type = Some("connexion réussie".into())).is_ok());
    // So are invisible and bidirectional characters (format characters, not controls): the spec
    // tells displays to escape them.
    assert!(with(&|e| e.event_type = Some("user\u{202e}nigol".into())).is_ok());
    assert!(with(&|e| e.event_type = Some("log\u{200b}in".into())).is_ok());
    // Content type parameters with spaces and quotes are fine.
    assert!(with(&|e| e.content_type = "text/plain; charset=\"utf-8\"".into()).is_ok());
    // Every payload size and commitment is valid.
    assert!(with(&|e| e.payload_size = u64::MAX).is_ok());
    assert!(with(&|e| e.commitment = [0; COMMITMENT_LEN]).is_ok());
}

#[test]
fn reserved_event_types() {
    assert_eq!(RESERVED_EVENT_TYPE_PREFIX, "sealtrail.");
    let with = |t: Option<&str>| LeafEnvelope {
        event_type: t.map(str::to_owned),
        ..example_a()
    };
    for t in [
        "sealtrail.erasure",
        "sealtrail.hold",
        "sealtrail.hold-release",
    ] {
        let env = with(Some(t));
        assert!(env.is_reserved(), "{t}");
        // The log writes its own entries with the same encoder: they encode and decode.
        let bytes = env.encode().unwrap();
        assert!(LeafEnvelope::decode(&bytes).unwrap().is_reserved());
    }
    for t in [
        None,
        Some("sealtrail"),
        Some("Sealtrail.erasure"),
        Some("x.sealtrail.erasure"),
        Some("sealtrail-erasure"),
    ] {
        assert!(!with(t).is_reserved(), "{t:?}");
    }
}

/// The largest valid fields.
fn largest_fields() -> LeafEnvelope {
    LeafEnvelope {
        time_ms: u64::MAX,
        content_type: "c".repeat(MAX_CONTENT_TYPE_LEN),
        event_type: Some("e".repeat(MAX_EVENT_TYPE_LEN)),
        payload_size: u64::MAX,
        commitment: [0xa5; COMMITMENT_LEN],
    }
}

#[test]
fn max_envelope_len_is_the_largest_encoding() {
    assert_eq!(MAX_ENVELOPE_LEN, 449);
    let env = largest_fields();
    assert_eq!(env.encoded_len(), MAX_ENVELOPE_LEN);
    let bytes = env.encode().unwrap();
    assert_eq!(bytes.len(), MAX_ENVELOPE_LEN);
    assert_eq!(minicbor_encode(&env), bytes);
    assert_eq!(LeafEnvelope::decode(&bytes).unwrap(), env);
    assert_eq!(minicbor_decode(&bytes).unwrap(), env);
    // Multi-byte characters reach the same byte limit.
    let mut wide = largest_fields();
    wide.event_type = Some("é".repeat(MAX_EVENT_TYPE_LEN / 2));
    assert_eq!(wide.encode().unwrap().len(), MAX_ENVELOPE_LEN);
    // One byte less of event type is one byte less of envelope; one byte less of content type
    // is two, as a length of 255 needs one length byte where 256 needs two.
    let mut small = largest_fields();
    small.event_type.as_mut().unwrap().pop();
    assert_eq!(small.encode().unwrap().len(), MAX_ENVELOPE_LEN - 1);
    let mut small = largest_fields();
    small.content_type.pop();
    assert_eq!(small.encode().unwrap().len(), MAX_ENVELOPE_LEN - 2);
    // Far below what an entry bundle holds, so no valid envelope is ever too large.
    const { assert!(MAX_ENVELOPE_LEN < MAX_ENTRY_SIZE) };
    // The smallest: 1-byte time and size, 1-byte content type, no event type.
    let smallest = LeafEnvelope {
        time_ms: 0,
        content_type: "x".into(),
        event_type: None,
        payload_size: 0,
        commitment: [0; COMMITMENT_LEN],
    };
    assert_eq!(smallest.encode().unwrap().len(), 1 + 5 + 1 + 1 + 2 + 1 + 34);
}

#[test]
fn error_kinds() {
    assert_eq!(EnvelopeError::TooLarge(1).kind(), "too_large");
    assert_eq!(
        EnvelopeError::NotShortest { offset: 0 }.kind(),
        "non_canonical"
    );
    assert_eq!(EnvelopeError::Version(1).kind(), "unsupported_version");
    assert_eq!(
        EnvelopeError::Utf8(Field::EventType).kind(),
        "invalid_field"
    );
    assert_eq!(EnvelopeError::CommitmentLength(31).kind(), "invalid_field");
    assert_eq!(EnvelopeError::TrailingBytes(1).kind(), "malformed");
    assert_eq!(
        EnvelopeError::MissingKey(Field::Commitment).kind(),
        "malformed"
    );
    assert_eq!(
        EnvelopeError::KeyOrder {
            key: 2,
            prev: 3,
            offset: 20
        }
        .to_string(),
        "map key 2 at byte 20 follows key 3: keys must ascend"
    );
}

fn envelope_strategy() -> impl Strategy<Value = LeafEnvelope> {
    (
        prop_oneof![0..24u64, 0..0x1_0000u64, any::<u64>()],
        prop_oneof!["[ -~]{1,40}", "[ -~]{200,256}"],
        // At most 32 characters of at most 4 bytes: within the 128-byte limit.
        proptest::option::of("[^\\p{Cc}]{1,32}"),
        prop_oneof![0..24u64, 0..0x1_0000u64, any::<u64>()],
        any::<[u8; COMMITMENT_LEN]>(),
    )
        .prop_map(
            |(time_ms, content_type, event_type, payload_size, commitment)| LeafEnvelope {
                time_ms,
                content_type,
                event_type,
                payload_size,
                commitment,
            },
        )
}

proptest! {
    #[test]
    fn round_trip(env in envelope_strategy()) {
        let bytes = env.encode().unwrap();
        prop_assert_eq!(bytes.len(), env.encoded_len());
        prop_assert!(bytes.len() <= MAX_ENVELOPE_LEN);
        let back = LeafEnvelope::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &env);
        prop_assert_eq!(back.encode().unwrap(), bytes.clone());
        // Two independent implementations agree.
        prop_assert_eq!(minicbor_encode(&env), bytes.clone());
        prop_assert_eq!(minicbor_decode(&bytes), Some(env));
    }

    #[test]
    fn mutated_encodings_are_rejected_or_canonical(
        env in envelope_strategy(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        op in 0..3u8,
    ) {
        let mut bytes = env.encode().unwrap();
        let i = at.index(bytes.len());
        match op {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            _ => { bytes.remove(i); }
        }
        if let Ok(got) = LeafEnvelope::decode(&bytes) {
            prop_assert_eq!(got.encode().unwrap(), bytes.clone());
            prop_assert_eq!(minicbor_decode(&bytes), Some(got));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        sealtrail_spec::roundtrip::leaf_envelope(&bytes);
    }
}
