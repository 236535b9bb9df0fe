//! tlog-policy: parsing every rule of <https://c2sp.org/tlog-policy>, and quorum evaluation on
//! the Go-signed checkpoints of `spec/tests/vectors/notes.json` with real cosignatures.
//!
//! Expected texts and outcomes are written out here from the spec, never taken from our output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::load;
use sealtrail_spec::checkpoint::CheckpointError;
use sealtrail_spec::cosignature::{CosignatureError, Cosigner};
use sealtrail_spec::note::{Ed25519Signer, Note, NoteError, NoteSignature, Signer, key_id};
use sealtrail_spec::policy::{
    K_OF_N_GROUP, Location, MAX_GROUPS, MAX_LOGS, MAX_POLICY_SIZE, MAX_WITNESSES, Member, Policy,
    PolicyError, RuleError, Threshold,
};

const ORIGIN: &str = "example.test/vector-log";

/// The Go vector log's vkey (type 0x01).
fn log_vkey() -> String {
    load("notes.json")[0]["verifier_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The Go-signed size-1000 checkpoint. It also carries a plain Ed25519 signature from
/// `example.test/witness`, a key no policy here lists.
fn note_1000() -> String {
    let notes = load("notes.json");
    let n = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["text"].as_str().unwrap().contains("\n1000\n"))
        .unwrap();
    n["signed_note"].as_str().unwrap().to_owned()
}

fn cosigner(name: &str, seed: u8) -> Cosigner {
    Cosigner::from_seed(name, [seed; 32]).unwrap()
}

fn vkey(c: &Cosigner) -> String {
    c.verifier().to_vkey()
}

/// `note` with cosignature lines from `witnesses` (at the given timestamps) appended.
fn cosigned(note: &str, witnesses: &[(&Cosigner, u64)]) -> Vec<u8> {
    let mut n = Note::parse(note.as_bytes()).unwrap();
    for (w, ts) in witnesses {
        n.push_signature(w.cosign(n.text(), *ts).unwrap()).unwrap();
    }
    n.to_bytes()
}

fn rule_error(text: &str) -> (Location, RuleError) {
    match Policy::parse(text.as_bytes()) {
        Err(PolicyError::At { at, error }) => (at, error),
        other => panic!("expected a rule error for {text:?}, got {other:?}"),
    }
}

fn line(n: usize) -> Location {
    Location::Line(n)
}

// ---------------------------------------------------------------------------------------------
// The spec's example policy, with real keys.

/// Six witnesses: X1..X3 and Y1..Y3.
fn xy_witnesses() -> Vec<Cosigner> {
    ["x1", "x2", "x3", "y1", "y2", "y3"]
        .iter()
        .enumerate()
        .map(|(i, n)| cosigner(&format!("{n}.witness.example"), 10 + i as u8))
        .collect()
}

fn spec_example(w: &[Cosigner]) -> String {
    format!(
        "log {log}

witness X1 {x1}
witness X2 {x2}
witness X3 {x3}
group X-witnesses 2 X1 X2 X3

witness Y1 {y1}
witness Y2 {y2}
witness Y3 {y3}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
",
        log = log_vkey(),
        x1 = vkey(&w[0]),
        x2 = vkey(&w[1]),
        x3 = vkey(&w[2]),
        y1 = vkey(&w[3]),
        y2 = vkey(&w[4]),
        y3 = vkey(&w[5]),
    )
}

#[test]
fn spec_example_parses() {
    let w = xy_witnesses();
    let p = Policy::parse(spec_example(&w).as_bytes()).unwrap();
    assert_eq!(p.logs().len(), 1);
    assert_eq!(p.logs()[0].origin(), ORIGIN);
    assert_eq!(p.logs()[0].vkey(), log_vkey());
    assert_eq!(p.logs()[0].url(), None);
    let names: Vec<&[u8]> = p.witnesses().iter().map(|w| w.name()).collect();
    assert_eq!(names, [&b"X1"[..], b"X2", b"X3", b"Y1", b"Y2", b"Y3"]);
    for (pw, c) in p.witnesses().iter().zip(&w) {
        assert_eq!(pw.verifier(), &c.verifier());
        assert_eq!(pw.vkey(), vkey(c));
    }
    let groups: Vec<(&[u8], Threshold, &[Member])> = p
        .groups()
        .iter()
        .map(|g| (g.name(), g.threshold(), g.members()))
        .collect();
    use Member::{Group, Witness};
    assert_eq!(
        groups,
        [
            (
                &b"X-witnesses"[..],
                Threshold::AtLeast(2),
                &[Witness(0), Witness(1), Witness(2)][..]
            ),
            (
                b"Y-witnesses",
                Threshold::Any,
                &[Witness(3), Witness(4), Witness(5)]
            ),
            (b"X-and-Y", Threshold::All, &[Group(0), Group(1)]),
        ]
    );
    assert_eq!(p.quorum(), Some(Group(2)));
}

#[test]
fn spec_example_quorum() {
    let w = xy_witnesses();
    let p = Policy::parse(spec_example(&w).as_bytes()).unwrap();
    let note = note_1000();
    let (x1, x2, x3, y1, y2, y3) = (&w[0], &w[1], &w[2], &w[3], &w[4], &w[5]);
    // (cosigners, satisfied?, witnesses reported)
    let cases: Vec<(Vec<&Cosigner>, bool, &[&str])> = vec![
        (vec![x1, x2, y3], true, &["X1", "X2", "Y3"]),
        (vec![y1, x3, x1], true, &["X1", "X3", "Y1"]),
        (
            vec![x1, x2, x3, y1, y2, y3],
            true,
            &["X1", "X2", "X3", "Y1", "Y2", "Y3"],
        ),
        (vec![x1, x2, x3], false, &["X1", "X2", "X3"]),
        (vec![x1, y1, y2, y3], false, &["X1", "Y1", "Y2", "Y3"]),
        (vec![x2, x2, y1], false, &["X2", "Y1"]),
        (vec![], false, &[]),
    ];
    for (signers, ok, reported) in cases {
        let with_ts: Vec<(&Cosigner, u64)> = signers
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, 1700000000 + i as u64))
            .collect();
        let bytes = cosigned(&note, &with_ts);
        match p.verify_checkpoint(&bytes, ORIGIN) {
            Ok(outcome) => {
                assert!(ok, "accepted {reported:?}");
                let names: Vec<String> = outcome
                    .witnesses()
                    .iter()
                    .map(|c| String::from_utf8(c.name().to_vec()).unwrap())
                    .collect();
                assert_eq!(names, reported);
                assert_eq!(outcome.checkpoint().checkpoint().size(), 1000);
            }
            Err(PolicyError::QuorumNotMet { quorum, cosigned }) => {
                assert!(!ok, "rejected {reported:?}");
                assert_eq!(quorum, "X-and-Y");
                assert_eq!(cosigned, reported);
            }
            Err(e) => panic!("{e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax: whitespace, comments, character set, URLs.

#[test]
fn whitespace_comments_and_urls() {
    let a = cosigner("a.example", 1);
    let b = cosigner("b.example", 2);
    let text = format!(
        "# a policy\n\
         \x20\x20# indented comment\n\
         \t#tab-indented comment\n\
         \n\
         \x20\t \n\
         \tlog\t{log}   https://log.example/\x20\n\
         witness  #a {a}  https://a.example/witness \t\n\
         witness \u{212a} {b}\n\
         group\tg\t1\t#a\t\u{212a}\n\
         \x20quorum g\n\
         #\n",
        log = log_vkey(),
        a = vkey(&a),
        b = vkey(&b),
    );
    let p = Policy::parse(text.as_bytes()).unwrap();
    assert_eq!(p.logs()[0].url(), Some(&b"https://log.example/"[..]));
    // `#` after the first field is an ordinary byte: the witness is named "#a".
    assert_eq!(p.witnesses()[0].name(), b"#a");
    assert_eq!(
        p.witnesses()[0].url(),
        Some(&b"https://a.example/witness"[..])
    );
    assert_eq!(p.witnesses()[1].name(), "\u{212a}".as_bytes());
    assert_eq!(p.witnesses()[1].url(), None);
    assert_eq!(p.quorum(), Some(Member::Group(0)));
    let expected = format!(
        "log {log} https://log.example/\n\
         witness #a {a} https://a.example/witness\n\
         witness \u{212a} {b}\n\
         group g 1 #a \u{212a}\n\
         quorum g\n",
        log = log_vkey(),
        a = vkey(&a),
        b = vkey(&b),
    );
    assert_eq!(String::from_utf8(p.to_text()).unwrap(), expected);
    assert_eq!(Policy::parse(expected.as_bytes()).unwrap(), p);
}

#[test]
fn names_are_opaque_octets() {
    let a = cosigner("a.example", 1);
    let b = cosigner("b.example", 2);
    let c = cosigner("c.example", 3);
    // "K", the Kelvin sign (E2 84 AA) and a non-UTF-8 name are three different names.
    let mut text = format!("witness K {}\n", vkey(&a)).into_bytes();
    text.extend_from_slice(format!("witness \u{212a} {}\n", vkey(&b)).as_bytes());
    text.extend_from_slice(b"witness \xff\xfe ");
    text.extend_from_slice(vkey(&c).as_bytes());
    text.extend_from_slice(b" https://\xe9.example/\n# comment \x80\xff\ngroup all all K \xe2\x84\xaa \xff\xfe\nquorum all\n");
    let p = Policy::parse(&text).unwrap();
    assert_eq!(p.witnesses()[2].name(), b"\xff\xfe");
    assert_eq!(p.witnesses()[2].url(), Some(&b"https://\xe9.example/"[..]));
    assert_eq!(p.groups()[0].name(), b"all");
    assert_eq!(p.groups()[0].threshold(), Threshold::All);
    assert_eq!(p.groups()[0].members().len(), 3);
    let round = Policy::parse(&p.to_text()).unwrap();
    assert_eq!(round, p);
    // Only K cosigned: the group named "all" needs all three.
    let bytes = cosigned(&note_1000(), &[(&a, 1)]);
    let err = p.verify_checkpoint(&bytes, ORIGIN).unwrap_err();
    assert_eq!(err, PolicyError::UnknownLog(ORIGIN.into()), "no log lines");
    let log = Policy::parse(
        [format!("log {}\n", log_vkey()).as_bytes(), &text]
            .concat()
            .as_slice(),
    )
    .unwrap();
    let err = log.verify_checkpoint(&bytes, ORIGIN).unwrap_err();
    assert_eq!(
        err,
        PolicyError::QuorumNotMet {
            quorum: "all".into(),
            cosigned: vec!["K".into()]
        }
    );
    let all = cosigned(&note_1000(), &[(&a, 1), (&b, 2), (&c, 3)]);
    let names: Vec<Vec<u8>> = log
        .verify_checkpoint(&all, ORIGIN)
        .unwrap()
        .witnesses()
        .iter()
        .map(|w| w.name().to_vec())
        .collect();
    assert_eq!(
        names,
        [b"K".to_vec(), "\u{212a}".into(), b"\xff\xfe".to_vec()]
    );
}

#[test]
fn quorum_none() {
    let p = Policy::parse(b"quorum none\n").unwrap();
    assert!(p.logs().is_empty() && p.witnesses().is_empty() && p.groups().is_empty());
    assert_eq!(p.quorum(), None);
    assert_eq!(p.to_text(), b"quorum none\n");
    // With a log: its signature alone is enough; cosignatures from unknown keys are ignored.
    let a = cosigner("a.example", 1);
    let p = Policy::parse(format!("log {}\nquorum none\n", log_vkey()).as_bytes()).unwrap();
    let outcome = p
        .verify_checkpoint(&cosigned(&note_1000(), &[(&a, 9)]), ORIGIN)
        .unwrap();
    assert!(outcome.witnesses().is_empty());
    // Witnesses may be listed with quorum none: they are reported, not required.
    let p = Policy::parse(
        format!("log {}\nwitness a {}\nquorum none\n", log_vkey(), vkey(&a)).as_bytes(),
    )
    .unwrap();
    let outcome = p
        .verify_checkpoint(&cosigned(&note_1000(), &[(&a, 9)]), ORIGIN)
        .unwrap();
    assert_eq!(outcome.witnesses()[0].timestamp(), 9);
    assert!(p.verify_checkpoint(note_1000().as_bytes(), ORIGIN).is_ok());
}

#[test]
fn character_set() {
    let good = "quorum none\n";
    assert!(Policy::parse(good.as_bytes()).is_ok());
    for b in [0x00u8, 0x01, 0x08, 0x0b, 0x0c, 0x0d, 0x1b, 0x1f, 0x7f] {
        // In a keyword line, and in a comment line.
        let text = [b"quorum".as_slice(), &[b], b" none\n"].concat();
        let want = Err(PolicyError::At {
            at: line(1),
            error: RuleError::Byte(b),
        });
        assert_eq!(Policy::parse(&text), want, "byte {b:#04x}");
        let text = [b"# x".as_slice(), &[b], b"\nquorum none\n"].concat();
        assert_eq!(Policy::parse(&text), want, "byte {b:#04x} in a comment");
    }
    // The error message names the byte and the line.
    assert_eq!(
        Policy::parse(b"quorum none\n#\x7f\n")
            .unwrap_err()
            .to_string(),
        "policy line 2: byte 0x7f is not allowed in a policy file"
    );
    // CRLF line ends.
    assert_eq!(
        rule_error("quorum none\r\n"),
        (line(1), RuleError::Byte(0x0d))
    );
    // Every line ends in LF, the last included.
    assert_eq!(
        Policy::parse(b"quorum none"),
        Err(PolicyError::NoFinalNewline)
    );
    assert_eq!(
        Policy::parse(b"quorum none\n# end"),
        Err(PolicyError::NoFinalNewline)
    );
    assert_eq!(Policy::parse(b""), Err(PolicyError::NoQuorum));
    assert_eq!(
        Policy::parse(b"\n# only comments\n  \n"),
        Err(PolicyError::NoQuorum)
    );
    // Unicode whitespace is not a separator: NBSP inside a name makes one field.
    assert_eq!(
        rule_error("quorum\u{a0}none\n"),
        (line(1), RuleError::Keyword("quorum\\xc2\\xa0none".into()))
    );
    let huge = vec![b'#'; MAX_POLICY_SIZE + 1];
    assert_eq!(
        Policy::parse(&huge),
        Err(PolicyError::TooLarge(MAX_POLICY_SIZE + 1))
    );
}

#[test]
fn keywords_and_field_counts() {
    let a = vkey(&cosigner("a.example", 1));
    let log = log_vkey();
    let fields = |s: &'static str| RuleError::Fields(s);
    let cases: Vec<(String, RuleError)> = vec![
        ("Log x\n".into(), RuleError::Keyword("Log".into())),
        ("logs x\n".into(), RuleError::Keyword("logs".into())),
        ("QUORUM none\n".into(), RuleError::Keyword("QUORUM".into())),
        ("x\n".into(), RuleError::Keyword("x".into())),
        ("log\n".into(), fields("log <vkey> [<url>]")),
        (format!("log {log} u extra\n"), fields("log <vkey> [<url>]")),
        // Comments are whole lines: a trailing "# ..." is two more fields.
        (
            format!("log {log} # comment\n"),
            fields("log <vkey> [<url>]"),
        ),
        ("witness\n".into(), fields("witness <name> <vkey> [<url>]")),
        (
            format!("witness {a}\n"),
            fields("witness <name> <vkey> [<url>]"),
        ),
        (
            format!("witness w {a} u extra\n"),
            fields("witness <name> <vkey> [<url>]"),
        ),
        (
            "group\n".into(),
            fields("group <name> all|any|<k> <member>..."),
        ),
        (
            "group g\n".into(),
            fields("group <name> all|any|<k> <member>..."),
        ),
        (
            "group g any\n".into(),
            fields("group <name> all|any|<k> <member>..."),
        ),
        ("quorum\n".into(), fields("quorum <name>|none")),
        ("quorum none none\n".into(), fields("quorum <name>|none")),
        (
            "quorum NONE\n".into(),
            RuleError::UndefinedName("NONE".into()),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(rule_error(&text), (line(1), want), "{text:?}");
    }
    // The error message names the line.
    let err = Policy::parse(b"quorum none\n\n# c\nlog\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy line 4: wrong number of fields, expected \"log <vkey> [<url>]\""
    );
    assert_eq!(err.category(), "malformed");
}

// ---------------------------------------------------------------------------------------------
// Keys.

/// A vkey of any type, with the ID computed by the signed-note formula.
fn typed_vkey(name: &str, key_type: u8, key: &[u8]) -> String {
    let mut material = vec![key_type];
    material.extend_from_slice(key);
    format!(
        "{name}+{:08x}+{}",
        key_id(name, &material),
        B64.encode(&material)
    )
}

#[test]
fn key_types() {
    let w = cosigner("w.example", 4);
    let plain = Ed25519Signer::from_seed("w.example", [4; 32]).unwrap();
    // A type-0x01 witness vkey is converted to the cosignature key of the same name and key.
    let p = Policy::parse(
        format!(
            "log {}\nwitness w {}\nquorum w\n",
            log_vkey(),
            plain.verifier().to_vkey()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(p.witnesses()[0].verifier(), &w.verifier());
    assert_eq!(p.witnesses()[0].vkey(), plain.verifier().to_vkey());
    p.verify_checkpoint(&cosigned(&note_1000(), &[(&w, 1)]), ORIGIN)
        .unwrap();
    // A plain Ed25519 signature from that key is not a cosignature: it has the 0x01 key ID and
    // is ignored.
    let mut n = Note::parse(note_1000().as_bytes()).unwrap();
    n.add_signatures(&[&plain]).unwrap();
    assert!(matches!(
        p.verify_checkpoint(&n.to_bytes(), ORIGIN),
        Err(PolicyError::QuorumNotMet { .. })
    ));

    // A log may sign with a type-0x04 key: its signature is a cosignature.
    let log04 = cosigner(ORIGIN, 5);
    let text = Note::parse(note_1000().as_bytes())
        .unwrap()
        .text()
        .to_owned();
    let note = Note::new(&text, vec![log04.cosign(&text, 7).unwrap()])
        .unwrap()
        .to_bytes();
    let p = Policy::parse(format!("log {}\nquorum none\n", vkey(&log04)).as_bytes()).unwrap();
    p.verify_checkpoint(&note, ORIGIN).unwrap();

    // Other types are refused, with the role named.
    let key = [9u8; 32];
    for t in [0x02u8, 0x03, 0x05, 0x06, 0xff] {
        let v = typed_vkey("k.example", t, &key);
        assert_eq!(
            rule_error(&format!("log {v}\nquorum none\n")),
            (
                line(1),
                RuleError::KeyType {
                    role: "log",
                    key_type: t
                }
            )
        );
        assert_eq!(
            rule_error(&format!("witness w {v}\nquorum none\n")),
            (
                line(1),
                RuleError::KeyType {
                    role: "witness",
                    key_type: t
                }
            )
        );
    }
}

#[test]
fn malformed_vkeys() {
    let good = vkey(&cosigner("w.example", 4));
    let (name_id, b64) = good.rsplit_once('+').unwrap();
    let (name, rest) = good.split_once('+').unwrap();
    let wrong_id = format!("{name}+00000000+{}", rest.split_once('+').unwrap().1);
    let bad = [
        "garbage".to_owned(),
        format!("{name_id}+{}", &b64[..43]),
        good.to_uppercase(),
        good.replacen("+", "+0", 1),
        format!("{good}="),
        wrong_id,
        // Not a point on the curve.
        typed_vkey("w.example", 0x04, &{
            let mut k = [0u8; 32];
            k[0] = 2;
            k
        }),
        // 31 bytes.
        typed_vkey("w.example", 0x04, &[4; 31]),
    ];
    for v in bad {
        for text in [
            format!("log {v}\nquorum none\n"),
            format!("witness w {v}\nquorum none\n"),
        ] {
            let (at, error) = rule_error(&text);
            assert_eq!(at, line(1));
            assert!(matches!(error, RuleError::Key(_)), "{text:?}: {error}");
        }
    }
    // A type-0x01 vkey written with the type-0x04 ID (or the reverse) is refused.
    let plain = Ed25519Signer::from_seed("w.example", [4; 32]).unwrap();
    let w = cosigner("w.example", 4);
    let swapped = plain.verifier().to_vkey().replace(
        &format!("{:08x}", plain.key_id()),
        &format!("{:08x}", w.key_id()),
    );
    assert!(matches!(
        rule_error(&format!("witness w {swapped}\nquorum none\n")).1,
        RuleError::Key(_)
    ));
}

#[test]
fn duplicate_keys() {
    let a = cosigner("a.example", 1);
    let log = log_vkey();
    let seed = hex::decode(load("notes.json")[0]["ed25519_seed_hex"].as_str().unwrap()).unwrap();
    let seed: [u8; 32] = seed.try_into().unwrap();
    // The log's key under another name, and as a cosignature key.
    let log_renamed = Ed25519Signer::from_seed("example.test/other", seed)
        .unwrap()
        .verifier()
        .to_vkey();
    let log_as_witness = Cosigner::from_seed("example.test/w", seed).unwrap();
    let a_plain = Ed25519Signer::from_seed("a.example", [1; 32]).unwrap();
    let a_renamed = cosigner("other.example", 1);
    let cases: Vec<(String, Location, Location)> = vec![
        (format!("log {log}\nlog {log}\n"), line(2), line(1)),
        (
            format!("log {log}\n\nlog {log_renamed}\n"),
            line(3),
            line(1),
        ),
        (
            format!("witness a {}\nwitness b {}\n", vkey(&a), vkey(&a)),
            line(2),
            line(1),
        ),
        (
            format!("witness a {}\nwitness b {}\n", vkey(&a), vkey(&a_renamed)),
            line(2),
            line(1),
        ),
        (
            format!(
                "witness a {}\nwitness b {}\n",
                vkey(&a),
                a_plain.verifier().to_vkey()
            ),
            line(2),
            line(1),
        ),
        // Our addition: one key as both a log and a witness.
        (
            format!("log {log}\nwitness w {}\n", vkey(&log_as_witness)),
            line(2),
            line(1),
        ),
        (
            format!("witness w {}\nlog {log}\n", vkey(&log_as_witness)),
            line(2),
            line(1),
        ),
    ];
    for (text, at, first) in cases {
        let text = format!("{text}quorum none\n");
        assert_eq!(
            rule_error(&text),
            (at, RuleError::DuplicateKey(first)),
            "{text}"
        );
    }
    let err = Policy::parse(format!("log {log}\nlog {log}\nquorum none\n").as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy line 2: the same public key is already listed at line 1"
    );
    // Two different logs with the same origin (a key rotation) are fine.
    let next = Ed25519Signer::from_seed(ORIGIN, [3; 32]).unwrap();
    let p = Policy::parse(
        format!(
            "log {log}\nlog {}\nquorum none\n",
            next.verifier().to_vkey()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(p.log_verifiers(ORIGIN).len(), 2);
    assert!(p.log_verifiers("example.test/other").is_empty());
    // Either key's signature is accepted.
    let text = Note::parse(note_1000().as_bytes())
        .unwrap()
        .text()
        .to_owned();
    let by_next = Note::sign(&text, &[&next]).unwrap().to_bytes();
    p.verify_checkpoint(&by_next, ORIGIN).unwrap();
    p.verify_checkpoint(note_1000().as_bytes(), ORIGIN).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Names, groups, the quorum.

#[test]
fn names_and_groups() {
    let k: Vec<String> = (1..=4u8)
        .map(|i| vkey(&cosigner(&format!("w{i}.example"), i)))
        .collect();
    let w = format!(
        "witness a {}\nwitness b {}\nwitness c {}\n",
        k[0], k[1], k[2]
    );
    let name = |s: &str| s.to_owned();
    let cases: Vec<(String, usize, RuleError)> = vec![
        // Names: one namespace for witnesses and groups; `none` is predefined.
        (
            format!("{w}witness a {}\n", k[3]),
            4,
            RuleError::DuplicateName(name("a")),
        ),
        (
            format!("{w}group a any b\n"),
            4,
            RuleError::DuplicateName(name("a")),
        ),
        (
            format!("{w}group g any a\ngroup g any b\n"),
            5,
            RuleError::DuplicateName(name("g")),
        ),
        (
            format!("{w}group g any a\nwitness g {}\n", k[3]),
            5,
            RuleError::DuplicateName(name("g")),
        ),
        (
            format!("witness none {}\n", k[0]),
            1,
            RuleError::DuplicateName(name("none")),
        ),
        (
            format!("{w}group none any a\n"),
            4,
            RuleError::DuplicateName(name("none")),
        ),
        // Members and the quorum must be defined on earlier lines.
        (
            format!("{w}group g any a d\n"),
            4,
            RuleError::UndefinedName(name("d")),
        ),
        (
            format!("group g any a\n{w}"),
            1,
            RuleError::UndefinedName(name("a")),
        ),
        (
            format!("{w}group g any g\n"),
            4,
            RuleError::UndefinedName(name("g")),
        ),
        (
            format!("quorum a\n{w}"),
            1,
            RuleError::UndefinedName(name("a")),
        ),
        (
            format!("{w}quorum g\ngroup g any a\n"),
            4,
            RuleError::UndefinedName(name("g")),
        ),
        (
            format!("{w}quorum A\n"),
            4,
            RuleError::UndefinedName(name("A")),
        ),
        // `none` is not a member; a member is listed at most once.
        (format!("{w}group g any a none\n"), 4, RuleError::NoneMember),
        (
            format!("{w}group g any a b a\n"),
            4,
            RuleError::DuplicateMember(name("a")),
        ),
        (
            format!("{w}group g any a\ngroup h all g g\n"),
            5,
            RuleError::DuplicateMember(name("g")),
        ),
        // Thresholds: all, any or a canonical decimal k with 1 <= k <= n.
        (
            format!("{w}group g 0 a b\n"),
            4,
            RuleError::ThresholdRange { k: 0, n: 2 },
        ),
        (
            format!("{w}group g 3 a b\n"),
            4,
            RuleError::ThresholdRange { k: 3, n: 2 },
        ),
        (
            format!("{w}group g 18446744073709551615 a\n"),
            4,
            RuleError::ThresholdRange { k: u64::MAX, n: 1 },
        ),
        (
            format!("{w}group g 01 a b\n"),
            4,
            RuleError::Threshold(name("01")),
        ),
        (
            format!("{w}group g +1 a b\n"),
            4,
            RuleError::Threshold(name("+1")),
        ),
        (
            format!("{w}group g -1 a b\n"),
            4,
            RuleError::Threshold(name("-1")),
        ),
        (
            format!("{w}group g ALL a b\n"),
            4,
            RuleError::Threshold(name("ALL")),
        ),
        (
            format!("{w}group g Any a b\n"),
            4,
            RuleError::Threshold(name("Any")),
        ),
        (
            format!("{w}group g 1.0 a b\n"),
            4,
            RuleError::Threshold(name("1.0")),
        ),
        (
            format!("{w}group g 18446744073709551616 a\n"),
            4,
            RuleError::Threshold(name("18446744073709551616")),
        ),
        // Exactly one quorum.
        (
            format!("{w}quorum a\nquorum a\n"),
            5,
            RuleError::SecondQuorum(line(4)),
        ),
        (
            format!("quorum none\n{w}\nquorum b\n"),
            6,
            RuleError::SecondQuorum(line(1)),
        ),
    ];
    for (text, at, want) in cases {
        let text = if text.contains("quorum") {
            text
        } else {
            format!("{text}quorum none\n")
        };
        assert_eq!(rule_error(&text), (line(at), want), "{text}");
    }
    // The k = n and k = 1 edges are fine, as is a group of one.
    for g in [
        "group g 2 a b",
        "group g 1 a b",
        "group g 1 a",
        "group g all a",
        "group g any a",
    ] {
        Policy::parse(format!("{w}{g}\nquorum g\n").as_bytes()).unwrap();
    }
    // Names may be keywords; positions decide.
    let p = Policy::parse(
        format!(
            "witness group {}\nwitness quorum {}\ngroup any all group quorum\nquorum any\n",
            k[0], k[1]
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(p.groups()[0].name(), b"any");
    assert_eq!(p.groups()[0].threshold(), Threshold::All);
    assert_eq!(p.quorum(), Some(Member::Group(0)));
}

#[test]
fn nested_groups() {
    let w: Vec<Cosigner> = (1..=5u8)
        .map(|i| cosigner(&format!("w{i}.example"), i))
        .collect();
    let text = format!(
        "log {}\n\
         witness a {}\nwitness b {}\nwitness c {}\nwitness d {}\nwitness e {}\n\
         group abc 2 a b c\n\
         group abc-or-d any abc d\n\
         group top all abc-or-d e\n\
         quorum top\n",
        log_vkey(),
        vkey(&w[0]),
        vkey(&w[1]),
        vkey(&w[2]),
        vkey(&w[3]),
        vkey(&w[4]),
    );
    let p = Policy::parse(text.as_bytes()).unwrap();
    let note = note_1000();
    let ok = |idx: &[usize]| {
        let signers: Vec<(&Cosigner, u64)> = idx.iter().map(|&i| (&w[i], 100 + i as u64)).collect();
        match p.verify_checkpoint(&cosigned(&note, &signers), ORIGIN) {
            Ok(_) => true,
            Err(PolicyError::QuorumNotMet { .. }) => false,
            Err(e) => panic!("{e}"),
        }
    };
    // top = (2 of a,b,c OR d) AND e.
    assert!(ok(&[0, 1, 4]));
    assert!(ok(&[3, 4]));
    assert!(ok(&[2, 0, 4]));
    assert!(ok(&[0, 1, 2, 3, 4]));
    assert!(!ok(&[0, 1]));
    assert!(!ok(&[0, 4]));
    assert!(!ok(&[3]));
    assert!(!ok(&[4]));
    assert!(!ok(&[0, 1, 2, 3]));
    assert!(!ok(&[]));
    // A witness that cosigned twice counts once: a twice is not 2 of a,b,c.
    assert!(!ok(&[0, 0, 4]));
}

// ---------------------------------------------------------------------------------------------
// Cosignature handling.

#[test]
fn cosignature_lines_counted_and_ignored() {
    let w: Vec<Cosigner> = (1..=3u8)
        .map(|i| cosigner(&format!("w{i}.example"), i))
        .collect();
    let vkeys: Vec<String> = w.iter().map(vkey).collect();
    let p = Policy::k_of_n(&[log_vkey()], &vkeys, 2).unwrap();
    let note = note_1000();

    // The same witness twice (same or other timestamps) is one witness; the first line's
    // timestamp is reported.
    let err = p
        .verify_checkpoint(&cosigned(&note, &[(&w[0], 5), (&w[0], 5)]), ORIGIN)
        .unwrap_err();
    assert_eq!(
        err,
        PolicyError::QuorumNotMet {
            quorum: K_OF_N_GROUP.into(),
            cosigned: vec!["w1.example".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        "quorum \"+quorum\" is not satisfied; valid cosignatures from: w1.example"
    );
    let out = p
        .verify_checkpoint(
            &cosigned(&note, &[(&w[1], 9), (&w[0], 5), (&w[1], 3)]),
            ORIGIN,
        )
        .unwrap();
    let got: Vec<(String, u64)> = out
        .witnesses()
        .iter()
        .map(|c| (c.verifier().to_vkey(), c.timestamp()))
        .collect();
    assert_eq!(got, [(vkeys[0].clone(), 5), (vkeys[1].clone(), 9)]);

    // Valid cosignatures from unlisted keys do not count, whatever their name.
    let outsider = cosigner("outsider.example", 50);
    let impostor = cosigner("w2.example", 51); // w2's name, another key: another key ID
    let err = p
        .verify_checkpoint(
            &cosigned(&note, &[(&w[0], 1), (&outsider, 2), (&impostor, 3)]),
            ORIGIN,
        )
        .unwrap_err();
    assert!(matches!(err, PolicyError::QuorumNotMet { ref cosigned, .. } if cosigned.len() == 1));
    // The log's own signature is not a cosignature.
    let err = p.verify_checkpoint(note.as_bytes(), ORIGIN).unwrap_err();
    assert_eq!(
        err.to_string(),
        "quorum \"+quorum\" is not satisfied; valid cosignatures from: nobody"
    );
}

#[test]
fn bad_cosignature_from_a_listed_witness_is_an_error() {
    let w: Vec<Cosigner> = (1..=3u8)
        .map(|i| cosigner(&format!("w{i}.example"), i))
        .collect();
    let vkeys: Vec<String> = w.iter().map(vkey).collect();
    let p = Policy::k_of_n(&[log_vkey()], &vkeys, 2).unwrap();
    let note = note_1000();
    let text = Note::parse(note.as_bytes()).unwrap().text().to_owned();

    // w3 signed another checkpoint (a valid signature over the wrong text), and w3's line has
    // a flipped bit: both are errors, even though w1 and w2 meet the quorum.
    let other_text = text.replace("\n1000\n", "\n1001\n");
    let wrong_text = w[2].cosign(&other_text, 3).unwrap();
    let good = w[2].cosign(&text, 3).unwrap();
    let mut flipped = good.signature().to_vec();
    flipped[20] ^= 0x10;
    let flipped = NoteSignature::new(good.name(), good.key_id(), flipped).unwrap();
    let short = NoteSignature::new(good.name(), good.key_id(), vec![1; 68]).unwrap();
    for (bad, source) in [
        (
            wrong_text,
            CosignatureError::InvalidSignature {
                name: "w3.example".into(),
                key_id: w[2].key_id(),
            },
        ),
        (
            flipped,
            CosignatureError::InvalidSignature {
                name: "w3.example".into(),
                key_id: w[2].key_id(),
            },
        ),
        (short, CosignatureError::Length(68)),
    ] {
        let mut n = Note::parse(&cosigned(&note, &[(&w[0], 1), (&w[1], 2)])).unwrap();
        n.push_signature(bad).unwrap();
        let err = p.verify_checkpoint(&n.to_bytes(), ORIGIN).unwrap_err();
        assert_eq!(
            err,
            PolicyError::InvalidCosignature {
                witness: "w3.example".into(),
                source
            }
        );
        assert_eq!(err.category(), "invalid_cosignature");
        assert!(
            err.to_string()
                .starts_with("cosignature of witness \"w3.example\": "),
            "{err}"
        );
    }
}

#[test]
fn verify_checkpoint_log_checks() {
    let p = Policy::parse(format!("log {}\nquorum none\n", log_vkey()).as_bytes()).unwrap();
    let note = note_1000();
    assert_eq!(
        p.verify_checkpoint(note.as_bytes(), "example.test/other")
            .unwrap_err(),
        PolicyError::UnknownLog("example.test/other".into())
    );
    assert_eq!(
        p.verify_checkpoint(note.as_bytes(), "example.test/other")
            .unwrap_err()
            .category(),
        "unknown_log"
    );
    // A checkpoint signed by another key with the log's name.
    let text = Note::parse(note.as_bytes()).unwrap().text().to_owned();
    let forged = Note::sign(
        &text,
        &[&Ed25519Signer::from_seed(ORIGIN, [8; 32]).unwrap()],
    )
    .unwrap()
    .to_bytes();
    let err = p.verify_checkpoint(&forged, ORIGIN).unwrap_err();
    assert_eq!(
        err,
        PolicyError::Checkpoint(CheckpointError::Note(NoteError::Unverified))
    );
    assert_eq!(err.category(), "unverified");
    // Malformed bytes.
    assert!(matches!(
        p.verify_checkpoint(b"not a note", ORIGIN),
        Err(PolicyError::Checkpoint(_))
    ));
    // A log line whose name is not the checkpoint's origin does not apply to it.
    let key = Ed25519Signer::from_seed("example.test/vector-log2", [8; 32]).unwrap();
    assert_eq!(key.name(), "example.test/vector-log2");
    let p2 = Policy::parse(format!("log {}\nquorum none\n", key.verifier().to_vkey()).as_bytes())
        .unwrap();
    assert_eq!(
        p2.verify_checkpoint(note.as_bytes(), ORIGIN).unwrap_err(),
        PolicyError::UnknownLog(ORIGIN.into())
    );
}

// ---------------------------------------------------------------------------------------------
// k-of-n, limits, to_text.

#[test]
fn k_of_n() {
    let w: Vec<Cosigner> = (1..=3u8)
        .map(|i| cosigner(&format!("w{i}.example"), i))
        .collect();
    let vkeys: Vec<String> = w.iter().map(vkey).collect();
    let log = log_vkey();
    let p = Policy::k_of_n(&[log.as_str()], &vkeys, 2).unwrap();
    let expected = format!(
        "log {log}\nwitness w1.example {}\nwitness w2.example {}\nwitness w3.example {}\n\
         group +quorum 2 w1.example w2.example w3.example\nquorum +quorum\n",
        vkeys[0], vkeys[1], vkeys[2]
    );
    assert_eq!(String::from_utf8(p.to_text()).unwrap(), expected);
    assert_eq!(Policy::parse(expected.as_bytes()).unwrap(), p);

    let none = Policy::k_of_n(&[log.as_str()], &vkeys, 0).unwrap();
    assert_eq!(none.quorum(), None);
    assert!(none.to_text().ends_with(b"\nquorum none\n"));
    let no_witnesses = Policy::k_of_n(&[log.as_str()], &[] as &[&str], 0).unwrap();
    assert_eq!(
        no_witnesses.to_text(),
        format!("log {log}\nquorum none\n").as_bytes()
    );

    assert_eq!(
        Policy::k_of_n(&[log.as_str()], &vkeys, 4),
        Err(PolicyError::At {
            at: Location::Quorum,
            error: RuleError::ThresholdRange { k: 4, n: 3 }
        })
    );
    let err = Policy::k_of_n(&[log.as_str()], &[&vkeys[0], &vkeys[1], &vkeys[0]], 1).unwrap_err();
    assert_eq!(
        err,
        PolicyError::At {
            at: Location::WitnessKey(3),
            error: RuleError::DuplicateName("w1.example".into())
        }
    );
    let err = Policy::k_of_n(&["bad"], &vkeys, 1).unwrap_err();
    assert!(
        err.to_string().starts_with("policy log key 1: bad vkey: "),
        "{err}"
    );
    let err = Policy::k_of_n(&[log.as_str()], &[vkeys[0].as_str(), "w+bad"], 1).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("policy witness key 2: bad vkey: "),
        "{err}"
    );
    // The same key under two names.
    let again = vkey(&cosigner("w9.example", 1));
    let err = Policy::k_of_n(&[log.as_str()], &[vkeys[0].as_str(), &again], 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy witness key 2: the same public key is already listed at witness key 1"
    );
    // A witness named "none" is refused (the name is predefined).
    let none_key = vkey(&cosigner("none", 7));
    assert!(Policy::k_of_n(&[log.as_str()], &[none_key], 1).is_err());
}

#[test]
fn limits() {
    let n = MAX_WITNESSES.max(MAX_LOGS).max(MAX_GROUPS) + 1;
    let keys: Vec<String> = (0..2 * n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Ed25519Signer::from_seed(&format!("k{i}.example"), seed)
                .unwrap()
                .verifier()
                .to_vkey()
        })
        .collect();
    let logs = |k: usize| -> String { keys[..k].iter().map(|v| format!("log {v}\n")).collect() };
    let witnesses = |k: usize| -> String {
        keys[n..n + k]
            .iter()
            .enumerate()
            .map(|(i, v)| format!("witness w{i} {v}\n"))
            .collect()
    };
    let groups = |k: usize| -> String { (0..k).map(|i| format!("group g{i} any w0\n")).collect() };
    // At the limits (and so at the spec's 32): fine.
    let full = format!(
        "{}{}{}quorum g0\n",
        logs(MAX_LOGS),
        witnesses(MAX_WITNESSES),
        groups(MAX_GROUPS)
    );
    let p = Policy::parse(full.as_bytes()).unwrap();
    assert_eq!(
        (p.logs().len(), p.witnesses().len(), p.groups().len()),
        (MAX_LOGS, MAX_WITNESSES, MAX_GROUPS)
    );
    const { assert!(MAX_LOGS >= 32 && MAX_WITNESSES >= 32 && MAX_GROUPS >= 32) };
    // One more of each: refused on the extra line.
    let over = [
        (
            format!("{}quorum none\n", logs(MAX_LOGS + 1)),
            MAX_LOGS + 1,
            "logs",
            MAX_LOGS,
        ),
        (
            format!("{}quorum none\n", witnesses(MAX_WITNESSES + 1)),
            MAX_WITNESSES + 1,
            "witnesses",
            MAX_WITNESSES,
        ),
        (
            format!("{}{}quorum none\n", witnesses(1), groups(MAX_GROUPS + 1)),
            MAX_GROUPS + 2,
            "groups",
            MAX_GROUPS,
        ),
    ];
    for (text, at, what, max) in over {
        assert_eq!(
            rule_error(&text),
            (line(at), RuleError::TooMany { what, max })
        );
    }
}

#[test]
fn to_text_drops_comments_and_orders_by_kind() {
    let a = vkey(&cosigner("a.example", 1));
    let b = vkey(&cosigner("b.example", 2));
    let log = log_vkey();
    let input = format!(
        "# witnesses first\nwitness a {a}\n  group g   1 a\nwitness b {b} https://b/\nquorum g\nlog {log} https://log/\n"
    );
    let p = Policy::parse(input.as_bytes()).unwrap();
    let expected = format!(
        "log {log} https://log/\nwitness a {a}\nwitness b {b} https://b/\ngroup g 1 a\nquorum g\n"
    );
    assert_eq!(String::from_utf8(p.to_text()).unwrap(), expected);
    assert_eq!(Policy::parse(expected.as_bytes()).unwrap(), p);
}
